"""Calibration: the candidate curve, and precision/recall on planted pairs of known Jaccard."""

from __future__ import annotations

import json

import numpy as np
import pytest

from weft.curate.calibrate import calibrate, candidate_probability, load_pairs
from weft.curate.demo_data import NEAR_JACCARDS, near_copy, vocabulary
from weft.specs import NearDedupSpec


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
