"""Calibration: the candidate curve, and precision/recall on planted pairs of known Jaccard;
images: on emoji and their planted copies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from weft.cli import app
from weft.curate.calibrate import (
    calibrate,
    calibrate_images,
    candidate_probability,
    image_reader,
    load_pairs,
)
from weft.curate.spec import NearDedupSpec
from weft.data.imagepairs import make_corpus, write_corpus
from weft.demo.corpus import NEAR_JACCARDS, near_copy, vocabulary

SPEC = NearDedupSpec()


def test_candidate_curve_matches_the_formula() -> None:
    assert candidate_probability(0.8, 16, 8) == pytest.approx(1 - (1 - 0.8**8) ** 16)
    assert candidate_probability(1.0, 3, 5) == 1.0
    assert candidate_probability(0.0, 3, 5) == 0.0


def test_bad_pair_lines_are_named() -> None:
    with pytest.raises(ValueError, match="line 2: needs 'jaccard' or 'duplicate'"):
        load_pairs(['{"a": "x", "b": "y", "duplicate": true}', '{"a": "x", "b": "y"}'])
    with pytest.raises(ValueError, match="line 1: expected"):
        load_pairs(["not json"])


def test_planted_pairs_are_separated_at_the_default_threshold() -> None:
    rng = np.random.default_rng(5)
    vocab = vocabulary()
    lines = []
    for j in range(160):
        base = [vocab[i] for i in rng.integers(len(vocab), size=200)]
        copy, similarity = near_copy(base, NEAR_JACCARDS[j % len(NEAR_JACCARDS)], vocab, rng)
        lines.append(json.dumps({"a": " ".join(base), "b": " ".join(copy), "jaccard": similarity}))
    rows = {r.threshold: r for r in calibrate(load_pairs(lines), NearDedupSpec())}
    at = rows[0.8]
    assert (at.bands, at.rows) == (18, 7) and at.candidate_at_threshold > 0.98
    assert at.recall >= 0.9 and at.precision >= 0.9, at
    assert rows[0.5].recall >= 0.9


@pytest.fixture(scope="module")
def image_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labelled image pairs (emoji and their planted copies, and hard non-duplicates)."""
    out = tmp_path_factory.mktemp("emoji")
    write_corpus(out, *make_corpus(distinct=60, copies=60, seed=2))
    return out / "image_pairs.jsonl"


def test_image_pairs_are_calibrated_per_similarity_threshold_and_hash_distance(
    image_pairs: Path,
) -> None:
    pairs = load_pairs(image_pairs.read_text().splitlines())
    by_threshold, by_distance = calibrate_images(pairs, SPEC, image_reader(str(image_pairs)))
    at = next(r for r in by_threshold if r.threshold == SPEC.image_threshold)
    assert at.true_positives + at.false_negatives == 60
    assert at.recall >= 0.85 and at.precision >= 0.95, at
    recalls = [r.recall for r in by_distance]
    assert recalls == sorted(recalls) and recalls[0] < at.recall
    assert by_distance[SPEC.image_max_distance] == at


def test_image_pairs_need_duplicate_labels_and_readable_images(tmp_path: Path) -> None:
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not an image")
    read = image_reader(str(tmp_path / "pairs.jsonl"))
    with pytest.raises(ValueError, match="need 'duplicate'"):
        calibrate_images(load_pairs(['{"a": "a.png", "b": "a.png", "jaccard": 1}']), SPEC, read)
    with pytest.raises(ValueError, match=r"b\.png: not a readable image"):
        calibrate_images(load_pairs(['{"a": "a.png", "b": "b.png", "duplicate": 1}']), SPEC, read)


def test_weft_calibrate_images_prints_both_tables(image_pairs: Path, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(f"name: t\ninputs:\n  - uri: x\n    format: webdataset\noutput: {tmp_path}\n")
    result = CliRunner().invoke(
        app, ["calibrate", str(spec), "--pairs", str(image_pairs), "--images"]
    )
    assert result.exit_code == 0, result.output
    assert "image near dedup on 120 labelled pairs" in result.output
    assert "by hash distance, at similarity threshold 0.92" in result.output
