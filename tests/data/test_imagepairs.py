"""The emoji corpus with planted copies that image near-dedup is measured on."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from weft.data import imagepairs
from weft.data.imagepairs import COPIES, EDITS, Corpus, make_corpus, score, write_corpus


def test_a_missing_font_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imagepairs, "FONT", tmp_path / "NotoColorEmoji.ttf")
    imagepairs.emoji.cache_clear()
    with pytest.raises(FileNotFoundError, match="apt-get install fonts-noto-color-emoji"):
        imagepairs.emoji()
    imagepairs.emoji.cache_clear()


def test_every_copy_kind_and_caption_edit_is_planted_and_written(tmp_path: Path) -> None:
    samples, corpus = make_corpus(distinct=20, copies=18, edits=tuple(EDITS))
    assert len(imagepairs.emoji()) > 1000
    assert {(p.kind, p.edit) for p in corpus.planted} == {(k, e) for k in COPIES for e in EDITS}
    assert set(corpus.originals) >= {p.original for p in corpus.planted}
    write_corpus(tmp_path, samples, corpus)
    names = set()
    for shard in (tmp_path / "pairs").glob("*.tar"):
        with tarfile.open(shard) as tar:
            names |= set(tar.getnames())
    assert len(names) == 2 * len(samples)
    assert len((tmp_path / "image_pairs.jsonl").read_text().splitlines()) == 2 * 18


def test_score_counts_copies_in_their_originals_cluster_and_merged_drawings() -> None:
    corpus = Corpus(
        originals=["e1", "e2", "e3"],
        planted=[
            imagepairs.Planted("c1", "e1", "jpeg", "appended"),
            imagepairs.Planted("c2", "e2", "jpeg", "recased"),
        ],
    )
    found = score(corpus, {"e1": "c1", "e3": "e2"})  # c2 missed; e3 merged into e2
    assert [hit for _, hit in found.hits] == [True, False]
    assert (found.recall(), found.recall("jpeg"), found.recall(edits=("appended",))) == (
        0.5,
        0.5,
        1.0,
    )
    assert (found.distinct_removed, found.false_positive_rate) == (1, 1 / 3)
