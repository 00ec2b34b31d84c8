"""Views of a caption for training: the same picture described the ways people search.

The offline corpora caption a drawing "name: keyword, keyword" (CLDR's and openclipart's
habit). A text tower that reads only that shape embeds a one-word query or a sentence far
from any picture. Each epoch, a row's text is one view drawn at random from those a job asks
for (`data.text_views`):

- `caption`: the caption whole;
- `name`: the part before the colon ("cat face");
- `keyword`: one of the keywords after it ("pet"), else the name;
- `sentence`: for an English row, the name (and sometimes a keyword) in a sentence such as
  "a drawing of cat face"; other languages keep the caption, rather than mix languages;
- `wordnet`: for an English row, a word WordNet relates to its name or to one of its
  keywords, a synonym or what it is a kind of ("parrot" → "bird"); else the name. Other
  languages keep the caption.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeVar

import numpy as np

from weft import wordnet
from weft.captions import parts

T = TypeVar("T")

View = Literal["caption", "name", "keyword", "sentence", "wordnet"]
SENTENCES = (
    "a drawing of {name}",
    "a picture of {name}",
    "an image of {name}",
    "a small drawing of {name}",
    "an icon showing {name}",
    "{name}, drawn simply",
    "a drawing of {name}, {keyword}",
    "a picture of {keyword}: {name}",
)


def view(caption: str, lang: str | None, views: Sequence[View], rng: np.random.Generator) -> str:
    """One view of `caption`, drawn uniformly from `views`."""
    chosen = _one(views, rng)
    if chosen == "caption" or not caption:
        return caption
    name, keywords = parts(caption)
    if chosen == "name":
        return name
    if chosen == "keyword":
        return _one(keywords, rng) if keywords else name
    if lang != "en":
        return caption
    keyword = _one(keywords, rng) if keywords else name
    if chosen == "wordnet":
        terms = (keyword, name) if rng.integers(2) else (name,)
        related = next((r for r in map(wordnet.related, terms) if r), ())
        return _one(related, rng) if related else name
    return _one(SENTENCES, rng).format(name=name, keyword=keyword)


def _one(items: Sequence[T], rng: np.random.Generator) -> T:
    return items[int(rng.integers(len(items)))]
