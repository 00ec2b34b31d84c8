"""Gold-set scoring on known hits: precision and recall in items (a character's drawings in
either style are one), an image query's own item left out, and a gold file that asks one
thing twice refused."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from weft.data.corpus import Manifest
from weft.data.emoji import base_of, catalogue, key
from weft.data.items import item_of
from weft.data.openclipart import catalogue as clipart_catalogue
from weft.data.openclipart import key as clipart_key
from weft.data.symbola import symbols
from weft.quality.gold import GoldQuery, GoldSet
from weft.quality.retrieval import score
from weft.serve.search import Hit
from weft.specs import SpecError, load_spec, parse_spec


def _hit(chars: str, record_key: str | None = None) -> Hit:
    found = record_key or key(chars, "en")
    return Hit(found, 1.0, 1.0, 0.0, chars, "en", False, "s3://corpus/test/shard.tar", found)


CAT = GoldQuery(kind="short", half="dev", text="cat", relevant=["😺", "🐈", "🐱"])
PRESENT = {"😺", "🐈", "🐱", "🐶", "🚗"}


def test_precision_counts_relevant_hits_and_recall_the_relevant_bases_found() -> None:
    scored = score(
        CAT, "vector", [_hit("😺"), _hit("🐶"), _hit("🐈"), _hit("🚗"), _hit("😺")], PRESENT, 5
    )
    assert scored.precision == 3 / 5
    assert scored.recall == 2 / 3  # 😺 twice is one base found
    assert scored.found == ["😺", "🐶", "🐈", "🚗", "😺"]


def test_a_variant_counts_as_its_base_and_absent_relevant_emoji_are_not_counted() -> None:
    swim = GoldQuery(kind="short", half="test", text="swimmer", relevant=["🏊", "🤽"])
    scored = score(swim, "hybrid", [_hit("🏊🏽\u200d♀️")], {"🏊"}, 5)
    assert scored.precision == 1 / 5 and scored.recall == 1.0  # 🤽 is not in the index


def test_an_image_query_is_scored_on_the_other_relevant_items() -> None:
    scored = score(CAT, "image", [_hit("🐈"), _hit("🐶")], PRESENT, 2, own="😺")
    assert scored.precision == 1 / 2 and scored.recall == 1 / 2  # 😺 (the query) is not counted


def test_both_drawing_styles_of_a_character_and_a_clipart_drawing_count_as_items() -> None:
    bear = "openclipart/animals/mammals/bears/orso_architetto_francesc_01"
    query = GoldQuery(kind="short", half="dev", text="bear", relevant=["🐻", bear])
    hits = [_hit("🐻"), _hit("🐻", "symbola/1f43b/en"), _hit("", f"{bear}/name"), _hit("🐶")]
    scored = score(query, "vector", hits, {"🐻", "🐶", bear}, 4)
    assert scored.found == ["🐻", "🐻", bear, "🐶"]
    assert scored.precision == 3 / 4 and scored.recall == 1.0


def test_a_gold_file_that_asks_a_query_twice_is_refused() -> None:
    body = {"queries": [CAT.model_dump(), CAT.model_dump()]}
    with pytest.raises(SpecError, match="queries: asked twice: cat"):
        parse_spec(GoldSet, body, "gold.yaml")


def test_the_gold_queries_name_only_emoji_the_corpus_holds() -> None:
    gold = load_spec(GoldSet, Path(__file__).parents[2] / "jobs/gold/emoji-search.yaml")
    bases = {e.base for e in catalogue()}
    assert len(gold.queries) >= 30 and {q.kind for q in gold.queries} == {"short", "descriptive"}
    assert {q.half for q in gold.queries} == {"dev", "test"}
    for query in gold.queries:
        assert set(query.items) <= bases, query.text


def test_the_drawings_gold_queries_name_only_items_the_corpora_hold() -> None:
    gold = load_spec(GoldSet, Path(__file__).parents[2] / "jobs/gold/drawings-search.yaml")
    drawn = {e.base for e in catalogue()} | {base_of(s.char) for s in symbols()}
    drawings = {
        item_of(clipart_key(d.path, "name")) for d in clipart_catalogue(Manifest("openclipart"))
    }
    assert len(gold.queries) >= 80
    halves = Counter((q.half, q.kind) for q in gold.queries)
    assert halves[("dev", "short")] == halves[("test", "short")]
    assert halves[("dev", "descriptive")] == halves[("test", "descriptive")]
    for query in gold.queries:
        assert set(query.items) <= drawn | drawings, query.text
