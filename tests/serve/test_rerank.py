"""Reranking orders the first stage's candidates by the captioner's likelihood of the query,
keeps k, and is a no-op on nothing."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from weft.models import inference, registry
from weft.models.tokenizer import Tokenizer
from weft.serve.rerank import rerank
from weft.serve.search import Hit


def writer(tmp_path: Path) -> inference.CaptionWriter:
    torch.manual_seed(0)
    kind, config = registry.config("captioner-tiny")
    model = registry.KINDS[kind].build(config)
    tokenizer = Tokenizer.train(["a red circle", "a blue square"] * 5, vocab_size=280)
    loaded = inference.load(registry.save(model, tmp_path / "captioner", tokenizer))
    assert isinstance(loaded, inference.CaptionWriter)
    return loaded


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(out, format="PNG")
    return out.getvalue()


def hit(n: int) -> Hit:
    return Hit(f"id-{n}", 1.0 - n / 10, 0.5, 0.0, f"caption {n}", "en", False, "s3://x", f"k{n}")


def test_candidates_are_ordered_by_the_likelihood_of_the_query(tmp_path: Path) -> None:
    captioner = writer(tmp_path)
    colours = [(255, 0, 0), (0, 0, 255), (0, 255, 0), (200, 200, 200), (0, 0, 0)]
    images = [png(c) for c in colours]
    hits = [hit(n) for n in range(len(images))]
    scores = captioner.likelihood(images, "a red circle")
    best = rerank(hits, list(scores), k=3, share=1.0)
    assert [r.hit.id for r in best] == [f"id-{n}" for n in np.argsort(-scores, kind="stable")[:3]]
    assert [r.likelihood for r in best] == sorted(scores.tolist(), reverse=True)[:3]
    assert rerank([], [], k=3) == []
    tied = rerank(hits[:3], [-1.0, -1.0, -1.0], k=3, share=1.0)
    assert [r.hit.id for r in tied] == ["id-0", "id-1", "id-2"]  # ties keep the first order


def test_the_fused_order_moves_from_the_first_stages_to_the_likelihoods_with_the_share() -> None:
    hits = [hit(n) for n in range(4)]
    likelihoods = [-4.0, -3.0, -1.0, -2.0]  # the likelihood's order: 2, 3, 1, 0

    def order(share: float) -> list[str]:
        return [r.hit.id for r in rerank(hits, likelihoods, k=4, share=share)]

    assert order(0.0) == ["id-0", "id-1", "id-2", "id-3"]
    assert order(1.0) == ["id-2", "id-3", "id-1", "id-0"]
    # halfway, (1/(60 + first rank) + 1/(60 + likelihood rank)) / 2: id-2 (3rd, 1st), then
    # id-0 (1st, 4th) just ahead of id-1 (2nd, 3rd), and id-3 (4th, 2nd) last
    assert order(0.5) == ["id-2", "id-0", "id-1", "id-3"]
    assert [r.likelihood for r in rerank(hits, likelihoods, k=2, share=0.5)] == [-1.0, -4.0]
