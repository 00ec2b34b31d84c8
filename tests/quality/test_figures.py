"""The quality figures on known inputs: hits in the top k, variants as their base, bars met
above or below, and MLflow-safe names."""

from __future__ import annotations

import numpy as np
import pytest

from weft.data.emoji import emoji_of, key
from weft.data.items import item_of
from weft.quality.figures import Figure, chance_of_hit, hits_at, matched_among, sampled
from weft.quality.sets import Row, same_item
from weft.quality.spec import ZeroShotSpec
from weft.quality.table import BEGIN, END, markdown, replace_block
from weft.specs import SpecError


def test_hits_at_k_finds_a_relevant_item_among_each_querys_k_most_similar() -> None:
    similarity = np.array([[0.9, 0.5, 0.1], [0.9, 0.5, 0.1], [0.2, 0.3, 0.4]])
    relevant = np.array([[True, False, False], [False, False, True], [False, True, True]])
    assert hits_at(similarity, relevant, 1) == [True, False, True]
    assert hits_at(similarity, relevant, 2) == [True, False, True]
    assert hits_at(similarity, relevant, 3) == [True, True, True]


def test_the_chance_of_a_hit_is_that_of_k_random_draws_without_replacement() -> None:
    assert chance_of_hit(10, 1, 1) == pytest.approx(0.1)
    assert chance_of_hit(10, 2, 5) == pytest.approx(1 - (8 * 7 * 6 * 5 * 4) / (10 * 9 * 8 * 7 * 6))
    assert chance_of_hit(3, 1, 5) == 1.0


def test_hits_at_k_breaks_ties_by_item_order_not_in_the_querys_favour() -> None:
    similarity = np.array([[0.5, 0.5]])
    assert hits_at(similarity, np.array([[False, True]]), 1) == [False]


def _row(record_key: str) -> Row:
    return Row(record_key, "", "en", b"", record_key, item_of(record_key), "", ())


def test_a_variant_or_the_other_style_of_a_character_is_relevant_to_it_and_nothing_else() -> None:
    swimmer, surfer = _row(key("🏊", "en")), _row(key("🏄", "en"))
    swimmer_woman_dark, swimmer_symbola = _row(key("🏊🏿\u200d♀️", "de")), _row("symbola/1f3ca/en")
    found = same_item([swimmer], [swimmer_woman_dark, surfer, swimmer_symbola])
    assert found.tolist() == [[True, False, True]]


def test_a_corpus_key_gives_its_emoji_and_caption_language() -> None:
    assert emoji_of("1f44b-1f3fd_de") == ("👋🏽", "de")
    assert key("👋🏽", "de") == "1f44b-1f3fd_de"
    with pytest.raises(SpecError, match="'cat_en' is not an emoji corpus key"):
        emoji_of("cat_en")


def test_a_figure_is_met_on_the_right_side_of_its_bar_and_the_table_says_which() -> None:
    recall = Figure("clip", "text→image recall@10", "test, de captions", 0.42, 0.5, 50)
    frechet = Figure(
        "diffusion", "Fréchet distance", "test", 31.0, 50, 200, below=True, percent=False
    )
    assert recall.met is False and frechet.met is True
    assert recall.key == "clip/text_to_image_recall_at_10/test_de_captions"
    tried = {"clip": "1,500 steps; crops and flips", "diffusion": "never shown: its bar is met"}
    table = markdown([recall, frechet], "t", tried)
    assert "- **clip** misses a bar. Tried: 1,500 steps; crops and flips" in table
    assert "diffusion** misses" not in table
    assert (
        "| clip | text→image recall@10 | test, de captions | 42.0% |  | 50 | > 50.0% | NOT MET |"
        in table
    )
    assert "| diffusion | Fréchet distance | test | 31 |  | 200 | < 50 | yes |" in table


def test_the_quality_block_of_a_document_is_replaced_and_the_rest_kept() -> None:
    document = f"intro\n{BEGIN}\nold table\n{END}\nafter\n"
    assert replace_block(document, "new table\n") == f"intro\n{BEGIN}\nnew table\n{END}\nafter\n"
    with pytest.raises(ValueError, match="no <!-- weft quality: begin -->"):
        replace_block("no markers", "t")


def test_a_held_out_group_takes_the_label_of_the_class_that_holds_it() -> None:
    spec = ZeroShotSpec.model_validate(
        {
            "classes": {
                "bird": {
                    "groups": ["animal-bird", "openclipart/animals/birds"],
                    "names": {"en": "bird"},
                },
                "tool": {"groups": ["tool"], "names": {"en": "tool"}},
            }
        }
    )
    assert spec.class_of("openclipart/animals/birds/parrots") == "bird"
    assert spec.class_of("animal-bird") == "bird" and spec.class_of("tool") == "tool"
    assert spec.class_of("openclipart/animals") is None


def test_a_drawing_matches_its_prompt_only_when_closer_to_it_than_to_every_other_drawn() -> None:
    texts = np.eye(4)  # four prompts, each its own direction
    images = np.array([[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0.2, 0.9], [0, 0, 0, 1.0]])
    prompts = ["cat", "dog", "owl", "bee"]
    # 0 and 3 are nearest their own; 1 ties with "cat" (a miss); 2 is nearer "bee"
    assert matched_among(images, texts, prompts, among=4, seed=0) == [True, False, False, True]


def test_the_other_prompts_never_repeat_the_drawings_own() -> None:
    texts = np.array([[1.0, 0], [1.0, 0], [0, 1.0]])  # prompts 0 and 1 are the same words
    images = np.array([[1.0, 0], [1.0, 0], [0, 1.0]])
    assert matched_among(images, texts, ["cat", "cat", "dog"], among=10, seed=0) == [True] * 3


def test_a_sample_of_the_drawings_keeps_their_order_and_is_the_same_for_a_seed() -> None:
    rows = [_row(key(chr(0x1F600 + i), "en")) for i in range(10)]
    picked = sampled(rows, 4, seed=3)
    assert len(picked) == 4 and picked == sorted(picked, key=rows.index)
    assert picked == sampled(rows, 4, seed=3) and sampled(rows, None, 0) == rows
    assert sampled(rows, 20, seed=3) == rows
