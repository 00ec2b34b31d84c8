"""The figures of the quality table, one function per model kind, each through the model
library's own inference API (`Embedder`, `CaptionWriter`, `ImageGenerator`)."""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from weft.models.inference import CaptionWriter, Embedder, ImageGenerator
from weft.models.metrics import bleu4, cider, clip_score_of, frechet_distance, topk_accuracy
from weft.quality.sets import Row, images_once, same_item
from weft.quality.spec import ZeroShotSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Figure:
    """One measured figure: what model, what measure, on what, and the bar it must clear
    (above it, or with `below` under it), if the product sets one."""

    model: str
    measure: str
    on: str
    value: float
    bar: float | None = None
    count: int = 0  # the queries or images it averages over
    below: bool = False
    percent: bool = True  # a share, shown as a percentage
    chance: float | None = None  # what a model that ranks at random scores

    @property
    def met(self) -> bool | None:
        if self.bar is None:
            return None
        return self.value < self.bar if self.below else self.value > self.bar

    @property
    def key(self) -> str:
        """The figure's MLflow metric name: `clip/text_to_image_recall_at_10/test_de_captions`."""
        parts = (self.model, self.measure.replace("→", " to ").replace("@", " at "), self.on)
        return "/".join(re.sub(r"[^A-Za-z0-9.-]+", "_", p).strip("_") for p in parts)


MIN_PER_LANGUAGE = 20


def zero_shot(embedder: Embedder, rows: list[Row], spec: ZeroShotSpec) -> list[Figure]:
    """Top-1 and top-5 accuracy of classifying each held-out image into its class (the class
    whose groups hold its group) by the nearest class prompt, in each language of the spec's
    templates."""
    names = list(spec.classes)
    labelled = [(r, spec.class_of(r.group)) for r in images_once(rows)]
    items = [r for r, label in labelled if label is not None]
    labels = torch.tensor([names.index(label) for _, label in labelled if label is not None])
    images = embedder.embed_images([r.image for r in items])
    figures = []
    for language, template in spec.templates.items():
        prompts = [template.format(spec.classes[c].names[language]) for c in names]
        logits = torch.from_numpy(images @ embedder.embed_texts(prompts).T)
        on = f"held-out classes, {language} prompts"
        for k, bar in ((1, None), (5, 0.60 if language == "en" else None)):
            top = min(k, len(names))
            figures.append(
                Figure(
                    "clip",
                    f"zero-shot top-{k}",
                    on,
                    topk_accuracy(logits, labels, top),
                    bar,
                    len(items),
                    chance=top / len(names),
                )
            )
    return figures


def hits_at(similarity: np.ndarray, relevant: np.ndarray, k: int) -> list[bool]:
    """For each query (a row of (queries, items) `similarity`), whether a relevant item is
    among its `k` most similar; ties are broken by item order."""
    top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return [bool(row[top_k].any()) for row, top_k in zip(relevant, top, strict=True)]


def text_to_image(embedder: Embedder, rows: list[Row], k: int) -> list[Figure]:
    """Recall@k of finding a caption's image (any drawing of the same item) among the split's
    distinct images: over every caption, then per caption language that has at least
    MIN_PER_LANGUAGE captions (an openclipart title fastText reads as Occitan is counted in
    the whole only)."""
    items = images_once(rows)
    similarity = (
        embedder.embed_texts([r.text for r in rows])
        @ embedder.embed_images([r.image for r in items]).T
    )
    relevant = same_item(rows, items)
    hits = hits_at(similarity, relevant, k)
    chances = [chance_of_hit(len(items), int(r.sum()), k) for r in relevant]
    by_language: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_language[row.language].append(i)
    measure = f"text→image recall@{k}"
    figures = []
    shown = [code for code, picked in by_language.items() if len(picked) >= MIN_PER_LANGUAGE]
    for language in ["", *sorted(shown, key=lambda code: (code != "en", code))]:
        picked = by_language[language] if language else list(range(len(rows)))
        figures.append(
            Figure(
                "clip",
                measure,
                f"test, {language} captions" if language else "test",
                float(np.mean([hits[i] for i in picked])),
                None if language else 0.50,
                len(picked),
                chance=float(np.mean([chances[i] for i in picked])),
            )
        )
    return figures


def chance_of_hit(items: int, relevant: int, k: int) -> float:
    """The chance that k items drawn at random from `items` hold one of `relevant`."""
    miss = 1.0
    for i in range(min(k, items)):
        miss *= max(0, items - relevant - i) / (items - i)
    return 1 - miss


def captioning(writer: CaptionWriter, rows: list[Row]) -> tuple[list[Figure], list[str]]:
    """BLEU-4 and CIDEr-D of the captions written for the split's distinct images; the
    figures, and the caption of each of `images_once(rows)`."""
    items = images_once(rows)
    refs = [list(r.references) for r in items]
    hypotheses = writer.caption([r.image for r in items])
    n = len(items)
    return [
        Figure("captioner", "BLEU-4", "test", bleu4(refs, hypotheses), 0.30, n, percent=False),
        Figure("captioner", "CIDEr-D", "test", cider(refs, hypotheses), 0.8, n, percent=False),
    ], hypotheses


@dataclass(frozen=True)
class Judge:
    """The CLIP whose spaces the diffusion figures are taken in, and its version (the hash
    of its weights), written beside each figure so that figures compare only under one."""

    embedder: Embedder
    version: str


def generation(
    generator: ImageGenerator,
    judge: Judge,
    rows: list[Row],
    scales: list[float],
    seed: int,
    reference: list[Row] | None = None,
    drawn_at_most: int | None = None,
) -> tuple[list[Figure], list[str], dict[float, list[bytes]]]:
    """For each guidance scale, images drawn from the English names of the split's distinct
    drawings (at most `drawn_at_most` of them, a seeded sample), judged in the judge CLIP's
    spaces: their Fréchet distance to the real images, their CLIP score against their
    prompts, and how often a drawing is closer to its own prompt than to 9 others; then
    whether the CLIP score rises with the scale. With `reference` rows (another real split),
    the Fréchet distance between the real images of both: the floor a perfect generator
    would reach. The figures, the prompts, and the drawings by scale."""
    items = sampled(images_once(rows), drawn_at_most, seed)
    prompts = [r.english_name for r in items]
    real = judge.embedder.image_features([r.image for r in items])
    text = judge.embedder.embed_texts(prompts)
    by = f"judge {judge.version}"
    n = len(items)
    figures, drawn, scores = [], {}, []
    if reference:
        other = judge.embedder.image_features([r.image for r in images_once(reference)])
        floor = frechet_distance(other, real)
        figures.append(
            Figure("diffusion", "Fréchet distance", f"real val vs real test, {by}", floor,
                   count=n, percent=False)
        )  # fmt: skip
    for step, scale in enumerate(scales, 1):
        log.info("eval diffusion scale=%g names=%d step=%d/%d", scale, n, step, len(scales))
        started = time.monotonic()
        drawn[scale] = generator.generate(prompts, cfg_scale=scale, seed=seed)
        log.info("eval diffusion scale=%g seconds=%.1f", scale, time.monotonic() - started)
        on = f"test names, CFG {scale:g}, {by}"
        distance = frechet_distance(judge.embedder.image_features(drawn[scale]), real)
        pictures = judge.embedder.embed_images(drawn[scale])
        scores.append(clip_score_of(pictures, text))
        matched = float(np.mean(matched_among(pictures, text, prompts, MATCH_AMONG, seed)))
        figures += [
            Figure("diffusion", "Fréchet distance", on, distance, 50, n, True, False),
            Figure("diffusion", "CLIP score", on, scores[-1], None, n, percent=False),
            Figure("diffusion", f"own prompt among {MATCH_AMONG}", on, matched, 0.70, n,
                   chance=1 / MATCH_AMONG),
        ]  # fmt: skip
    rises = sum(b > a for a, b in itertools.pairwise(scores)) / max(1, len(scores) - 1)
    figures.append(
        Figure(
            "diffusion",
            "CLIP score rises with CFG",
            f"steps between scales, {by}",
            rises,
            0.99,
            len(scales) - 1,
        )
    )
    return figures, prompts, drawn


def sampled(rows: list[Row], at_most: int | None, seed: int) -> list[Row]:
    """`rows`, or `at_most` of them drawn at random (seeded), in their order."""
    if at_most is None or len(rows) <= at_most:
        return rows
    picked = np.random.default_rng(seed).choice(len(rows), size=at_most, replace=False)
    return [rows[i] for i in sorted(picked)]


MATCH_AMONG = 10  # a drawing against its own prompt and this many minus one others


def matched_among(
    images: np.ndarray, texts: np.ndarray, prompts: list[str], among: int, seed: int
) -> list[bool]:
    """For each drawing (row i of unit `images`, drawn from `prompts[i]`, embedded as row i
    of unit `texts`), whether it is closer to its own prompt than to each of `among - 1`
    other prompts drawn at random (seeded) from those that differ from it; a tie is a miss."""
    rng = np.random.default_rng(seed)
    found = []
    for i, prompt in enumerate(prompts):
        others = [j for j, p in enumerate(prompts) if p != prompt]
        picked = rng.choice(others, size=min(among - 1, len(others)), replace=False)
        own = float(images[i] @ texts[i])
        found.append(bool(all(own > float(images[i] @ texts[j]) for j in picked)))
    return found
