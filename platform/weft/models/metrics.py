"""Evaluation metrics: classification, retrieval, captioning and image-set distance.

BLEU-4 and CIDEr-D are implemented here, following the papers (Papineni et al. 2002;
Vedantam et al. 2015, with the CIDEr-D details of the coco-caption code), not by the official
packages; captions are lower-cased and split on whitespace rather than run through the PTB
tokenizer, so scores are close to, not identical with, published ones.

`clip_score` and `frechet_distance` measure with Weft's own trained models, since no
reference weights (OpenAI CLIP, Inception) can be fetched here: their numbers compare Weft
models scored by the same CLIP or image encoder, not results in the literature.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import Tensor

from weft.models.clip import CLIP, ImageEncoder

NGRAMS = 4
CIDER_SIGMA = 6.0
NGram = tuple[str, ...]


def topk_accuracy(logits: Tensor, labels: Tensor, k: int) -> float:
    """Fraction of rows of (N, C) logits whose label (N,) is among their k highest."""
    top = logits.topk(k, dim=-1).indices  # (N, k)
    return (top == labels[:, None]).any(dim=-1).float().mean().item()


def retrieval_metrics(
    image_emb: Tensor, text_emb: Tensor, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Recall@K and mean reciprocal rank, image → text and text → image, by cosine
    similarity; image i matches text i. Keys are MLflow-safe: `image_to_text/recall_at_1`,
    `image_to_text/mrr`, `text_to_image/...`. Ties count in the match's favour."""
    similarity = F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T  # (N, N)
    metrics = {}
    for direction, sim in (("image_to_text", similarity), ("text_to_image", similarity.T)):
        rank = (sim > sim.diagonal()[:, None]).sum(dim=1)  # (N,) 0 = the match is first
        for k in ks:
            metrics[f"{direction}/recall_at_{k}"] = (rank < k).float().mean().item()
        metrics[f"{direction}/mrr"] = (1 / (rank + 1)).float().mean().item()
    return metrics


def _words(text: str) -> list[str]:
    return text.lower().split()


def _ngrams(words: list[str], n: int) -> Counter[NGram]:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def bleu4(references: list[list[str]], hypotheses: list[str]) -> float:
    """Corpus BLEU-4 in [0, 1]: n-gram precisions (n = 1..4) clipped by each n-gram's most
    frequent count in any one reference, pooled over the corpus, geometric mean, times the
    brevity penalty against the reference lengths closest to each hypothesis (the shorter
    on a tie). No smoothing: a corpus with no matching 4-gram scores 0."""
    matched, total = [0] * NGRAMS, [0] * NGRAMS
    hypothesis_length = reference_length = 0
    for refs, hypothesis in zip(references, hypotheses, strict=True):
        words, ref_words = _words(hypothesis), [_words(r) for r in refs]
        hypothesis_length += len(words)
        reference_length += min((abs(len(r) - len(words)), len(r)) for r in ref_words)[1]
        for n in range(1, NGRAMS + 1):
            counts = _ngrams(words, n)
            most: Counter[NGram] = Counter()  # each n-gram's max count in one ref
            for r in ref_words:
                most |= _ngrams(r, n)
            matched[n - 1] += sum((counts & most).values())
            total[n - 1] += sum(counts.values())
    if min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matched, total, strict=True)) / NGRAMS
    log_brevity = min(0.0, 1 - reference_length / hypothesis_length)
    return math.exp(log_brevity + log_precision)


def cider(references: list[list[str]], hypotheses: list[str]) -> float:
    """CIDEr-D: per n = 1..4, the cosine of tf-idf n-gram vectors of the hypothesis and each
    reference, the hypothesis's weights clipped at the reference's; averaged over n, times a
    Gaussian penalty exp(-(length difference)² / (2 sigma²)), sigma = 6, averaged over references,
    times 10, averaged over images. Document frequency counts the images whose references
    hold an n-gram, over the evaluated set, so it needs at least two images to be nonzero."""
    refs = [[_words(r) for r in rs] for rs in references]
    frequency: Counter[NGram] = Counter()  # n-gram → images whose refs hold it
    for rs in refs:
        frequency.update({g for r in rs for n in range(1, NGRAMS + 1) for g in _ngrams(r, n)})
    log_images = math.log(len(refs))

    def tfidf(words: list[str]) -> list[dict[NGram, float]]:
        """Per n = 1..4, each n-gram's count times its idf, log(images / max(1, df))."""
        return [
            {g: tf * (log_images - math.log(max(1, frequency[g]))) for g, tf in grams.items()}
            for grams in (_ngrams(words, n) for n in range(1, NGRAMS + 1))
        ]

    scores = []
    for rs, hypothesis in zip(refs, hypotheses, strict=True):
        words = _words(hypothesis)
        vectors = tfidf(words)
        per_ref = []
        for r in rs:
            penalty = math.exp(-((len(words) - len(r)) ** 2) / (2 * CIDER_SIGMA**2))
            cosines = [_clipped_cosine(h, v) for h, v in zip(vectors, tfidf(r), strict=True)]
            per_ref.append(penalty * sum(cosines) / NGRAMS)
        scores.append(10 * sum(per_ref) / len(per_ref))
    return sum(scores) / len(scores)


def _clipped_cosine(hyp: dict[NGram, float], ref: dict[NGram, float]) -> float:
    """hyp · ref with each hypothesis weight clipped at the reference's, over both norms."""
    norms = math.hypot(*hyp.values()) * math.hypot(*ref.values())
    if norms == 0:
        return 0.0
    return sum(min(v, ref.get(g, 0.0)) * ref.get(g, 0.0) for g, v in hyp.items()) / norms


@torch.no_grad()
def clip_score(model: CLIP, images: Tensor, ids: Tensor) -> float:
    """Weft-CLIP score: 100 * mean(max(cos(image, its caption), 0)) under Weft's own trained
    CLIP — not the CLIPScore of the literature (which uses OpenAI's ViT-B/32 weights), so
    only comparable between Weft models scored by the same CLIP."""
    image_emb, text_emb = model.encode_image(images), model.encode_text(ids)
    return clip_score_of(image_emb.float().cpu().numpy(), text_emb.float().cpu().numpy())


def clip_score_of(image_emb: np.ndarray, text_emb: np.ndarray) -> float:
    """`clip_score` from unit embeddings, row i of each a pair: 100 * mean(max(cos, 0))."""
    cosine = (image_emb * text_emb).sum(axis=-1)
    return float(100 * np.clip(cosine, 0, None).mean())


@torch.no_grad()
def image_features(encoder: ImageEncoder, images: Tensor, batch_size: int = 256) -> np.ndarray:
    """(N, width) pooled features of (N, C, H, W) images, computed in batches."""
    device = next(encoder.parameters()).device
    chunks = [encoder.pooled(chunk.to(device)).cpu() for chunk in images.split(batch_size)]
    return torch.cat(chunks).double().numpy()


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets:
    |μa - μb|² + tr(Σa + Σb - 2 (Σa Σb)^½).

    With `image_features` this is a Fréchet distance in the feature space of Weft's own image
    encoder, not FID: FID needs Inception weights, which cannot be fetched here, so the
    number compares image sets under the same encoder only.
    """
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real  # sqrtm may add tiny imaginary parts
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))
