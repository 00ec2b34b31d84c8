"""The byte-level BPE tokenizer: fixed-length rows, any script, saved beside a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from weft.models.tokenizer import Tokenizer

CAPTIONS = [
    "a photo of a red circle",
    "a photo of a blue square",
    "a drawing of a green triangle",
    "two red circles on a white background",
] * 10


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(CAPTIONS, vocab_size=300)


def test_rows_are_bos_text_eos_then_padding(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode(["a photo of a red circle", "a"], length=12)
    assert ids.shape == (2, 12)
    for row in ids.tolist():
        assert row[0] == tokenizer.bos_id
        end = row.index(tokenizer.eos_id)
        assert all(i == tokenizer.pad_id for i in row[end + 1 :])
    assert tokenizer.decode(ids[0].tolist()) == "a photo of a red circle"


def test_a_long_text_is_cut_but_keeps_its_eos(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode([" ".join(["circle"] * 50)], length=8)[0].tolist()
    assert ids[-1] == tokenizer.eos_id and tokenizer.pad_id not in ids


def test_any_script_encodes_and_round_trips(tokenizer: Tokenizer) -> None:
    texts = ["नमस्ते दुनिया", "你好，世界", "Ünïcödé ✓ 🙂", ""]  # noqa: RUF001 (CJK comma)
    ids = tokenizer.encode(texts, length=64)
    assert [tokenizer.decode(row.tolist()) for row in ids] == texts


def test_saved_tokenizer_loads_the_same(tokenizer: Tokenizer, tmp_path: Path) -> None:
    tokenizer.save(tmp_path)
    loaded = Tokenizer.load(tmp_path)
    assert loaded.encode(CAPTIONS[:3], 16).equal(tokenizer.encode(CAPTIONS[:3], 16))
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        Tokenizer.load(tmp_path / "missing")


def test_a_lowercasing_tokenizer_folds_case_after_it_is_saved(tmp_path: Path) -> None:
    folding = Tokenizer.train(CAPTIONS, vocab_size=300, lowercase=True)
    folding.save(tmp_path)
    loaded = Tokenizer.load(tmp_path)
    shouted, spoken = ["A RED Circle"], ["a red circle"]
    assert loaded.encode(shouted, 8).tolist() == loaded.encode(spoken, 8).tolist()
    cased = Tokenizer.train(CAPTIONS, vocab_size=300)
    assert cased.encode(shouted, 8).tolist() != cased.encode(spoken, 8).tolist()
