"""Metrics against answers worked out by hand, and tiny real models where one is needed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from weft.models.clip import CLIP, CLIPConfig
from weft.models.metrics import (
    bleu4,
    cider,
    clip_score,
    frechet_distance,
    image_features,
    retrieval_metrics,
    topk_accuracy,
)
from weft.models.text import TextConfig
from weft.models.tokenizer import Tokenizer
from weft.models.vit import ViT, ViTConfig

TINY_VISION = ViTConfig(image_size=16, patch_size=4, width=32, depth=1, heads=2)


def test_topk_accuracy_counts_labels_among_the_k_highest() -> None:
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = torch.tensor([2, 0, 0, 1])
    # top-1 hits only row 1; top-2 also rows 0 and 3; top-3 all
    assert topk_accuracy(logits, labels, 1) == 0.25
    assert topk_accuracy(logits, labels, 2) == 0.75
    assert topk_accuracy(logits, labels, 3) == 1.0


def test_retrieval_recall_and_mrr_in_both_directions() -> None:
    texts = torch.eye(4)
    images = torch.tensor(  # unit rows, so the similarity is this matrix; image i ↔ text i
        [
            [0.8, 0.6, 0.0, 0.0],  # its text ranks 1st
            [0.6, 0.48, 0.0, 0.64],  # 3rd
            [0.0, 0.8, 0.6, 0.0],  # 2nd
            [0.0, 0.0, 0.28, 0.96],  # 1st
        ]
    )
    # by column, text → image: texts 0, 2, 3 find their image first, text 1 third
    metrics = retrieval_metrics(images, texts, ks=(1, 2, 3))
    expected = {
        "image_to_text/recall_at_1": 0.5,
        "image_to_text/recall_at_2": 0.75,
        "image_to_text/recall_at_3": 1.0,
        "image_to_text/mrr": (1 + 1 / 3 + 1 / 2 + 1) / 4,
        "text_to_image/recall_at_1": 0.75,
        "text_to_image/recall_at_2": 0.75,
        "text_to_image/recall_at_3": 1.0,
        "text_to_image/mrr": (1 + 1 / 3 + 1 + 1) / 4,
    }
    assert metrics == pytest.approx(expected)


def test_bleu4_of_a_pair_worked_out_by_hand() -> None:
    # unigrams 5/6 ("the" twice in the reference), bigrams 3/5, trigrams 2/4, 4-grams 1/3;
    # equal lengths, so no brevity penalty
    score = bleu4([["The cat sat on the mat"]], ["the cat sat on a mat"])
    assert score == pytest.approx((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)


def test_bleu4_pools_counts_over_the_corpus() -> None:
    references = [["the cat sat on the mat"], ["the cat sat on the mat"]]
    hypotheses = ["the cat sat on a mat", "the cat sat on the"]
    precisions = 10 / 11 * 7 / 9 * 5 / 7 * 3 / 5  # summed matches / summed n-grams, n = 1..4
    expected = math.exp(1 - 12 / 11) * precisions**0.25  # 11 hypothesis words, 12 reference
    assert bleu4(references, hypotheses) == pytest.approx(expected)


def test_bleu4_is_one_for_identical_and_zero_without_overlap() -> None:
    assert bleu4([["a red circle on grey"]], ["a red circle on grey"]) == pytest.approx(1.0)
    assert bleu4([["a red circle on grey"]], ["two blue squares under trees"]) == 0.0


def test_bleu4_brevity_penalty_uses_the_closest_reference_length() -> None:
    # every n-gram of the 5-word hypothesis matches; the 6-word reference costs exp(1 - 6/5)
    assert bleu4([["the cat sat on the mat"]], ["the cat sat on the"]) == pytest.approx(
        math.exp(-0.2)
    )
    # a 5-word reference is closer: no penalty
    two_references = [["the cat sat on the mat", "the cat sat on the"]]
    assert bleu4(two_references, ["the cat sat on the"]) == pytest.approx(1.0)


def test_cider_scores_identical_captions_above_unrelated_ones() -> None:
    references = [["a red circle on grey", "a red ring"], ["two blue squares", "blue squares"]]
    identical = cider(references, ["a red circle on grey", "two blue squares"])
    unrelated = cider(references, ["three green trees", "a dog running on sand"])
    assert identical > unrelated
    assert unrelated == 0.0


def test_cider_of_a_case_worked_out_by_hand() -> None:
    """Two images, so idf = log 2 for an n-gram in one image's references (or in none) and 0
    for one in both ("a"). Image 0: unigram cosine 2 / (2·√2) (weights red, circle, on,
    grey; a is 0), bigrams 2 / (2·√2), trigrams 1 / √3, no 4-grams in the reference; length
    5 vs 3 gives exp(-4 / 72). Image 1 is identical with 1-, 2- and 3-grams: 10 · 3/4."""
    references = [["a red circle"], ["a black ring"]]
    score = cider(references, ["a red circle on grey", "a black ring"])
    first = 10 * math.exp(-4 / 72) * (1 / math.sqrt(2) + 1 / math.sqrt(2) + 1 / math.sqrt(3)) / 4
    assert score == pytest.approx((first + 7.5) / 2)


def test_frechet_distance_of_a_set_with_itself_is_zero() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 8))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_of_shifted_gaussians_is_the_squared_mean_distance() -> None:
    rng = np.random.default_rng(0)
    shift = np.array([1.0, 2.0, 0.0, 0.0])
    a, b = rng.normal(size=(20_000, 4)), rng.normal(size=(20_000, 4)) + shift
    assert frechet_distance(a, b) == pytest.approx(5.0, rel=0.05)


def test_image_features_are_cls_tokens_in_batches() -> None:
    torch.manual_seed(0)
    encoder = ViT(TINY_VISION).eval()
    images = torch.randn(7, 3, 16, 16)
    features = image_features(encoder, images, batch_size=3)
    assert features.shape == (7, TINY_VISION.width)
    with torch.no_grad():
        np.testing.assert_allclose(features, encoder(images)[:, 0].numpy(), atol=1e-5)


def test_clip_score_lies_in_0_100_and_clamps_negative_cosines() -> None:
    captions = [f"a {c} {s}" for c in ("red", "blue", "green") for s in ("circle", "square")]
    tokenizer = Tokenizer.train(captions, vocab_size=300, min_frequency=1)
    torch.manual_seed(0)
    text = TextConfig(vocab_size=tokenizer.vocab_size, context_length=8, width=32, depth=1, heads=2)
    model = CLIP(CLIPConfig(vision=TINY_VISION, text=text, embed_dim=16)).eval()
    images, ids = torch.randn(len(captions), 3, 16, 16), tokenizer.encode(captions, 8)
    score = clip_score(model, images, ids)
    with torch.no_grad():
        cosine = (model.encode_image(images) * model.encode_text(ids)).sum(dim=-1)
        model.text_proj.weight.neg_()  # every cosine changes sign
    flipped = clip_score(model, images, ids)
    assert 0 <= score <= 100 and 0 <= flipped <= 100
    # each pair counts in exactly one of the two scores
    assert score + flipped == pytest.approx(100 * cosine.abs().mean().item(), rel=1e-4)
