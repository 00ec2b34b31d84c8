"""The inspector: a prompted captioner that answers after its prompt, looks at crops, merges
their answers and abstains below a calibrated threshold."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from weft.models import inference, registry
from weft.models.inspector import (
    NO_DEFECT,
    UNCERTAIN,
    Inspector,
    Look,
    answer_loss,
    calibrate,
    cell,
    merge,
    parsed,
    place,
    tiles,
)
from weft.models.text import PAD_ID
from weft.models.tokenizer import Tokenizer

TEXTS = [
    "is anything wrong? no defect",
    "is anything wrong? scratch at top left",
    "where is the defect? stain at middle",
] * 5


def inspector(tmp_path: Path, **config: object) -> inference.DefectInspector:
    torch.manual_seed(0)
    kind, cfg = registry.config("inspector-tiny")
    model = registry.KINDS[kind].build(cfg.model_copy(update=config))
    saved = registry.save(model, tmp_path / "inspector", Tokenizer.train(TEXTS, vocab_size=300))
    loaded = inference.load(saved)
    assert isinstance(loaded, inference.DefectInspector)
    return loaded


def png(size: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_loss_scores_the_answer_and_not_the_prompt() -> None:
    torch.manual_seed(0)
    model = registry.build("inspector-tiny")
    assert isinstance(model, Inspector)
    end, bos, eos = 9, 1, 2
    ids = torch.tensor([[bos, 5, 6, end, 7, 8, eos, PAD_ID], [bos, 5, end, 11, eos, PAD_ID, 0, 0]])
    images = torch.randn(2, 3, 32, 32)
    logits = model(images, ids[:, :-1])
    answer = [(0, p) for p in (3, 4, 5)] + [(1, p) for p in (2, 3)]  # positions predicting it
    expected = torch.stack(
        [F.cross_entropy(logits[r, p][None], ids[r, p + 1][None]) for r, p in answer]
    ).mean()
    assert torch.allclose(answer_loss(model, images, ids, end), expected, atol=1e-6)


def test_an_answers_probability_is_the_one_teacher_forcing_gives(tmp_path: Path) -> None:
    found = inspector(tmp_path)
    prompt = found.prompt_ids("is anything wrong")
    images = torch.randn(3, 3, 32, 32)
    answers, confidence, looked = found.model.answer(images, prompt, found.tokenizer.eos_id)
    assert looked.shape == (3, 4, 4)  # the 32-pixel image's 4 x 4 patches
    for i, answer in enumerate(answers):
        ids = torch.tensor([*answer, found.tokenizer.eos_id])
        if len(answer) + 1 < found.model.config.answer_length:  # it ended with <eos>
            again = found.model.probability(images[i : i + 1], prompt, ids)
            assert torch.allclose(again, confidence[i : i + 1], atol=1e-5)


def test_tiles_cover_the_image_with_overlapping_zoomed_views() -> None:
    boxes = tiles((128, 128), 3, 2.0)
    assert len(boxes) == 9 and all(b[2] - b[0] == 64 and b[3] - b[1] == 64 for b in boxes)
    assert sorted({b[0] for b in boxes}) == [0, 32, 64]
    covered = np.zeros((128, 128), bool)
    for x0, y0, x1, y1 in boxes:
        covered[y0:y1, x0:x1] = True
    assert covered.all()


def test_places_name_the_grid_cell_of_a_boxs_centre() -> None:
    assert place((0, 0, 10, 10), (128, 128)) == "top left"
    assert place((60, 60, 70, 70), (128, 128)) == "middle"
    assert place((120, 100, 128, 128), (128, 128)) == "bottom right"
    assert cell("middle", (0, 0, 90, 90)) == (30, 30, 60, 60)
    assert parsed("scratch at top left") == ("scratch", "top left")
    assert parsed(NO_DEFECT) == (None, None)
    assert parsed("a dent somewhere") == ("a dent somewhere", None)


def look(box: tuple[int, int, int, int], answer: str, confidence: float, clear: float) -> Look:
    return Look(box, answer, confidence, clear, np.ones((4, 4), np.float32))


def test_a_tile_that_finds_a_defect_answers_in_the_whole_images_places() -> None:
    looks = [
        look((0, 0, 128, 128), NO_DEFECT, 0.8, 0.8),
        look((64, 64, 128, 128), "speck at top left", 0.9, 0.05),  # the tile's top left
        look((0, 0, 64, 64), NO_DEFECT, 0.95, 0.95),
    ]
    found = merge(looks, (128, 128), threshold=0.5)
    assert found.answer == "speck at middle" and found.confidence == 0.9
    assert found.attention.shape == (128, 128)
    assert found.attention[:64, :64].max() == 0 and found.attention[64:, 64:].max() == 1


def test_no_defect_is_as_sure_as_the_least_sure_view_and_low_confidence_abstains() -> None:
    looks = [look((0, 0, 128, 128), NO_DEFECT, 0.9, 0.9), look((0, 0, 64, 64), NO_DEFECT, 0.6, 0.6)]
    assert merge(looks, (128, 128), 0.5).answer == NO_DEFECT
    unsure = merge(looks, (128, 128), 0.7)
    assert unsure.answer == UNCERTAIN and unsure.guess == NO_DEFECT and unsure.abstained
    assert unsure.confidence == 0.6


def test_calibration_finds_the_lowest_threshold_that_reaches_the_target() -> None:
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([True, True, False, True, False])
    assert calibrate(confidence, correct, 0.75) == 0.6  # top 4: 3 of 4 right
    assert calibrate(confidence, correct, 1.0) == 0.8
    never = calibrate(confidence, np.zeros(5, bool), 0.9)
    assert never > confidence.max()  # nothing is right: every answer abstains


def test_the_inspector_answers_whole_and_by_crops_with_an_attention_map(tmp_path: Path) -> None:
    found = inspector(tmp_path)
    assert found.params == {"crops": False}
    whole = found.inspect([png(48), png(40)], "is anything wrong?")
    crops = found.inspect([png(48)], "is anything wrong?", crops=True)
    assert [f.attention.shape for f in whole] == [(48, 48), (40, 40)]
    assert crops[0].attention.shape == (48, 48)
    for f in whole + crops:
        assert 0 <= f.confidence <= 1 and (f.answer == f.guess or f.abstained)
    columns = {"image": [png(48)], "prompt": ["is anything wrong?"]}
    answer = found.predict_columns(columns, {"crops": True})
    assert list(answer) == [name for name, _ in found.outputs]
    assert answer["guess"] == [crops[0].guess]
    assert Image.open(io.BytesIO(answer["attention"][0])).size == (48, 48)


def test_a_bad_prompt_or_image_is_named(tmp_path: Path) -> None:
    found = inspector(tmp_path)
    with pytest.raises(ValueError, match="the prompt is empty"):
        found.inspect([png()], " ? ")
    with pytest.raises(ValueError, match=r"the prompt is \d+ tokens; this model reads 16"):
        found.inspect([png()], "is anything at all wrong with this very long prompt?")
    with pytest.raises(ValueError, match="image 1: cannot be decoded"):
        found.inspect([png(), b"not an image"], "is anything wrong?")
