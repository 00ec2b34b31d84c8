"""Views of a caption: each view is the part of the caption it names, sentences only for
English rows, and every asked-for view is drawn."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from weft.captions import parts
from weft.specs import SpecError, parse_spec
from weft.train.spec import DataSpec
from weft.train.views import SENTENCES, view

CAT = "cat face: animal, cat, face, pet"


def test_a_caption_splits_into_its_name_and_keywords() -> None:
    assert parts(CAT) == ("cat face", ["animal", "cat", "face", "pet"])
    assert parts("a simple map of extremadura, enjoy it!") == (
        "a simple map of extremadura, enjoy it!",
        [],
    )


def test_each_view_is_the_part_it_names() -> None:
    rng = np.random.default_rng(0)
    assert view(CAT, "en", ["caption"], rng) == CAT
    assert view(CAT, "en", ["name"], rng) == "cat face"
    assert {view(CAT, "en", ["keyword"], rng) for _ in range(50)} == {
        "animal",
        "cat",
        "face",
        "pet",
    }
    assert view("a sentence alone", "en", ["keyword"], rng) == "a sentence alone"
    sentences = {view(CAT, "en", ["sentence"], rng) for _ in range(200)}
    assert "a drawing of cat face" in sentences and len(sentences) > len(SENTENCES)
    assert all("cat face" in s for s in sentences)


def test_sentences_are_english_only() -> None:
    rng = np.random.default_rng(0)
    german = "Katzengesicht: Gesicht, Katze, Tier"
    assert {view(german, "de", ["sentence"], rng) for _ in range(20)} == {german}


def test_a_wordnet_view_is_a_broader_or_other_word_of_the_name_or_a_keyword() -> None:
    rng = np.random.default_rng(0)
    drawn = {view("parrot: tropical", "en", ["wordnet"], rng) for _ in range(100)}
    assert drawn == {"bird", "vertebrate", "chordate"}  # WordNet knows no noun "tropical"
    assert {view("parrot: animal", "en", ["wordnet"], rng) for _ in range(100)} >= {"organism"}
    assert view("xqzzy", "en", ["wordnet"], rng) == "xqzzy"  # unknown to WordNet: the name
    german = "Papagei: Vogel"
    assert view(german, "de", ["wordnet"], rng) == german


def test_every_view_asked_for_is_drawn() -> None:
    rng = np.random.default_rng(1)
    drawn = Counter(view(CAT, "en", ["caption", "name", "keyword"], rng) for _ in range(600))
    assert drawn[CAT] > 150 and drawn["cat face"] > 150
    assert sum(drawn[k] for k in ("animal", "cat", "face", "pet")) > 150


def test_an_unknown_view_is_named() -> None:
    with pytest.raises(SpecError, match="text_views"):
        parse_spec(DataSpec, {"uri": "x", "text_views": ["caption", "poem"]}, "job.yaml")
    with pytest.raises(SpecError, match="text_views"):
        parse_spec(DataSpec, {"uri": "x", "text_views": []}, "job.yaml")
