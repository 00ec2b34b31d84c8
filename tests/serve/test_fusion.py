"""The fusion maths: weighted scores against reciprocal ranks, and one answer per image."""

from __future__ import annotations

import numpy as np
import pytest

from weft.serve.fusion import Fusion, K, fuse


def test_reciprocal_ranks_score_each_side_by_its_order() -> None:
    images = np.array([0, 1, 2])
    cosine = np.array([0.9, 0.5, 0.1])
    bm25 = np.array([0.0, 1.0, 0.5])
    rows, score = fuse(images, cosine, bm25, hybrid=0.5, fusion=Fusion.RRF)
    expected = {
        0: 0.5 / (K + 1),  # first by vector, no caption match
        1: 0.5 / (K + 2) + 0.5 / (K + 1),
        2: 0.5 / (K + 3) + 0.5 / (K + 2),
    }
    assert list(rows) == [1, 2, 0]
    assert score == pytest.approx([expected[1], expected[2], expected[0]])


def test_a_lone_caption_match_survives_rank_fusion_but_not_weighted_scores() -> None:
    """The gold set's "a slice of watermelon": BM25 finds one image, whose cosine is below
    a crowd of images that are merely green."""
    images = np.arange(50)
    cosine = np.linspace(0.95, 0.45, 50)  # the match (image 49) is last by vector
    bm25 = np.zeros(50)
    bm25[49] = 1.0
    weighted, _ = fuse(images, cosine, bm25, hybrid=0.3, fusion=Fusion.WEIGHTED)
    ranked, _ = fuse(images, cosine, bm25, hybrid=0.3, fusion=Fusion.RRF)
    assert list(weighted).index(49) > 5
    assert list(ranked).index(49) < 5  # among the first five: third here


def test_an_image_is_answered_once_by_its_best_row() -> None:
    images = np.array([7, 7, 3])  # image 7 has two captions
    cosine = np.array([0.8, 0.8, 0.7])
    bm25 = np.array([0.0, 1.0, 0.0])
    for fusion in Fusion:
        rows, score = fuse(images, cosine, bm25, hybrid=0.5, fusion=fusion)
        assert list(rows) == [1, 2]  # the caption that matched speaks for image 7
        assert score[0] > score[1]


def test_without_words_both_fusions_rank_by_the_vector() -> None:
    rng = np.random.default_rng(0)
    images, cosine = np.arange(20), rng.random(20)
    for fusion in Fusion:
        rows, _ = fuse(images, cosine, np.zeros(20), hybrid=0.3, fusion=fusion)
        assert list(rows) == list(np.argsort(-cosine))
