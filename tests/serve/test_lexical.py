"""BM25 with an analyzer per caption language: stopwords stop matching, stems match, Chinese
and Japanese match by characters, and indexes of the earlier plain format still answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tantivy

from weft.serve import lexical
from weft.serve.lexical import Analyzers, Lexical

CAPTIONS = [
    ("Japanese “open for business” button", "en"),  # 0
    ("jack-o-lantern: celebration, halloween, jack, lantern", "en"),  # 1
    ("loudly crying face: cry, face, sad", "en"),  # 2
    ("calendario a spirale: calendario, spirale", "it"),  # 3
    ("cocomero: anguria, frutta", "it"),  # 4
    ("笑哭了: 哭, 笑, 脸", "zh"),  # 5
    ("Wassermelone: Frucht, Melone", "de"),  # 6
    ("kot: zwierzę", "pl"),  # 7: no stemmer
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Lexical:
    path = tmp_path_factory.mktemp("bm25") / "bm25"
    lexical.write([c for c, _ in CAPTIONS], [lang for _, lang in CAPTIONS], path)
    return Lexical(path, Analyzers.PER_LANGUAGE)


def rows(index: Lexical, text: str) -> list[int]:
    return list(index.search(text, 10, None))


def test_stopwords_no_longer_match(index: Lexical) -> None:
    assert rows(index, "a carved pumpkin for halloween") == [1]
    assert rows(index, "a slice of watermelon") == []  # "a" is Italian's, "of" English's


def test_words_match_their_stems(index: Lexical) -> None:
    assert rows(index, "crying") == [2]
    assert rows(index, "someone who cries") == [2]
    assert rows(index, "Wassermelonen") == [6]  # German plural


def test_chinese_matches_by_characters_and_other_languages_by_words(index: Lexical) -> None:
    assert rows(index, "哭脸") == [5]
    assert rows(index, "kot") == [7]


def test_filters_keep_to_the_allowed_rows(index: Lexical) -> None:
    assert list(index.search("face halloween", 10, np.array([1]))) == [1]


def test_an_index_of_the_plain_format_is_read_as_written(tmp_path: Path) -> None:
    writer = tantivy.Index(lexical.schema(Analyzers.PLAIN), path=str(tmp_path)).writer()
    for row, (caption, _) in enumerate(CAPTIONS):
        writer.add_document(tantivy.Document(caption=caption, row=row))
    writer.commit()
    writer.wait_merging_threads()
    plain = Lexical(tmp_path, Analyzers.PLAIN)
    assert list(plain.search("for", 10, None)) == [0]  # no stopwords then
    assert list(plain.search("cries", 10, None)) == []  # nor stems
