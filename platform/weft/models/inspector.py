"""Inspector: a prompted image-to-text model for visual inspection (VQA-style).

It is the captioner's encoder-decoder (a ViT, and a causal text decoder with
cross-attention to the image tokens) that reads a prompt as the start of its text and writes
the answer after it: `<bos> is anything wrong with this product? scratch at top left <eos>`.
Training scores only the answer (the prompt is given, not predicted; it ends at its last
`?`). An answer names a defect kind and where it is on a 3 x 3 grid, or `no defect`.

Crop-based inspection looks at the whole image and at overlapping zoomed tiles (`tiles`), so
a defect of a few pixels, lost when the whole image is shrunk to the model's input, is seen
at twice the size; `merge` turns the views' answers into one. An answer less confident than
the calibrated threshold (`calibrate`, on a validation split) is an abstention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import Field
from torch import Tensor

from weft.models.captioner import Captioner, CaptionerConfig
from weft.models.text import PAD_ID

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1, y1 exclusive
NO_DEFECT = "no defect"
UNCERTAIN = "uncertain"
PROMPT_END = "?"  # a prompt ends at its last question mark; the answer follows
# Where a defect is, in words: the cell of a 3 x 3 grid holding its centre.
PLACES = (
    ("top left", "top", "top right"),
    ("left", "middle", "right"),
    ("bottom left", "bottom", "bottom right"),
)


class InspectorConfig(CaptionerConfig):
    threshold: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Whole-image answers less confident than this are abstentions "
        "(`uncertain`); calibrated on a validation split when training ends.",
    )
    crop_threshold: float = Field(
        default=0.5, ge=0, le=1, description="The same, for answers merged over crops."
    )
    grid: int = Field(default=3, ge=2, le=6, description="Tiles per side in crop inspection.")
    zoom: float = Field(default=2.0, ge=1.0, le=4.0, description="How much a tile magnifies.")
    answer_length: int = Field(default=8, ge=2, description="Answer tokens at most, <eos> too.")


class Inspector(Captioner):
    """The captioner's network, answering after a prompt (see the module's docstring)."""

    config: InspectorConfig

    @torch.no_grad()
    def answer(
        self, images: Tensor, prompt: Tensor, eos_id: int
    ) -> tuple[list[list[int]], Tensor, Tensor]:
        """Greedy answers to one prompt for each image.

        `prompt` is (P,) ids `<bos> ... ?`. Returns each answer's ids (without `<eos>`),
        the probability of each whole answer (its tokens and `<eos>`), and (B, G, G) where
        the answer looked: the last block's cross-attention from the answer's positions,
        averaged over heads and positions, on the patch grid.
        """
        b, device = len(images), images.device
        context = self.visual(images)
        ids = prompt.to(device)[None].expand(b, -1)
        logp = torch.zeros(b, device=device)
        done = torch.zeros(b, dtype=torch.bool, device=device)
        limit = min(self.config.answer_length, self.config.text.context_length - len(prompt))
        for _ in range(limit):
            step = self.decode(context, ids)[:, -1].log_softmax(dim=-1)
            step[:, PAD_ID] = float("-inf")
            best, token = step.max(dim=-1)
            token = torch.where(done, torch.full_like(token, PAD_ID), token)
            logp += torch.where(done, torch.zeros_like(best), best)
            ids = torch.cat([ids, token[:, None]], dim=1)
            done |= token == eos_id
            if done.all():
                break
        answers = [
            [t for t in row[len(prompt) :].tolist() if t not in (PAD_ID, eos_id)] for row in ids
        ]
        return answers, logp.exp(), self._looked(images, ids, len(prompt))

    @torch.no_grad()
    def probability(self, images: Tensor, prompt: Tensor, answer: Tensor) -> Tensor:
        """(B,) the probability of one given answer (`answer`: its ids and `<eos>`) after
        `prompt` for each image, by teacher forcing."""
        ids = torch.cat([prompt, answer]).to(images.device)[None].expand(len(images), -1)
        logp = self(images, ids[:, :-1]).log_softmax(dim=-1)
        start = len(prompt) - 1  # the position whose next token is the answer's first
        picked = logp[:, start:].gather(-1, ids[:, start + 1 :, None])[..., 0]
        return picked.sum(dim=1).exp()

    def _looked(self, images: Tensor, ids: Tensor, start: int) -> Tensor:
        maps = self.cross_attention_maps(images, ids[:, :-1])[-1]  # (B, heads, L-1, 1 + N)
        answered = (ids[:, start:] != PAD_ID).float()  # the queries that predicted the answer
        weights = maps.mean(dim=1)[:, start - 1 :, 1:]  # (B, A, N), CLS column dropped
        looked = (weights * answered[..., None]).sum(1) / answered.sum(1, keepdim=True)
        side = int(looked.shape[-1] ** 0.5)
        return looked.view(-1, side, side)


def answer_loss(model: torch.nn.Module, images: Tensor, ids: Tensor, end_id: int) -> Tensor:
    """Teacher forcing on the answer only: the tokens after each row's last `end_id` (the
    prompt's `?`). `model` is an Inspector or a wrapper that calls its forward."""
    logits = model(images, ids[:, :-1])
    targets = ids[:, 1:].clone()
    positions = torch.arange(targets.shape[1], device=ids.device)
    is_end = targets == end_id
    last_end = torch.where(is_end, positions, torch.full_like(positions, -1)).amax(dim=1)
    targets[positions[None] <= last_end[:, None]] = PAD_ID  # the prompt is given
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD_ID)


def answer_text(kind: str | None, where: str | None) -> str:
    return NO_DEFECT if kind is None else f"{kind} at {where}"


def parsed(answer: str) -> tuple[str | None, str | None]:
    """(kind, where) of an answer; (None, None) for `no defect`; where is None when the
    answer names no place."""
    text = " ".join(answer.split())
    if text == NO_DEFECT:
        return None, None
    kind, _, where = text.rpartition(" at ")
    if kind and any(where in row for row in PLACES):
        return kind, where
    return text, None


def place(box: Box | tuple[float, float, float, float], size: tuple[int, int]) -> str:
    """The grid cell of `box`'s centre in an image of `size` (width, height), in words."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    col, row = (min(2, max(0, int(3 * c / s))) for c, s in zip((cx, cy), size, strict=True))
    return PLACES[row][col]


def cell(where: str, box: Box) -> tuple[float, float, float, float]:
    """The region of `box` that the grid cell `where` names, in the box's image's pixels."""
    row = next(r for r, names in enumerate(PLACES) if where in names)
    col = PLACES[row].index(where)
    w, h = (box[2] - box[0]) / 3, (box[3] - box[1]) / 3
    return box[0] + col * w, box[1] + row * h, box[0] + (col + 1) * w, box[1] + (row + 1) * h


def tiles(size: tuple[int, int], grid: int, zoom: float) -> list[Box]:
    """`grid` x `grid` overlapping tiles covering an image of `size` (width, height), each
    1/`zoom` of its sides, row by row."""
    out = []
    w, h = size
    tw, th = round(w / zoom), round(h / zoom)
    for r in range(grid):
        for c in range(grid):
            x, y = round(c * (w - tw) / (grid - 1)), round(r * (h - th) / (grid - 1))
            out.append((x, y, x + tw, y + th))
    return out


def view(image: Image.Image, box: Box, side: int) -> Image.Image:
    """The part of `image` inside `box`, resized to the model's `side` (bicubic)."""
    return image.resize((side, side), Image.Resampling.BICUBIC, box=box)


@dataclass(frozen=True)
class Look:
    """One view's answer: the view's box in the image, the answer and its probability, the
    probability of `no defect`, and where the answer looked (G x G)."""

    box: Box
    answer: str
    confidence: float
    clear: float
    attention: np.ndarray


@dataclass(frozen=True)
class Finding:
    """The inspection of one image: the answer (or `uncertain`), the best guess behind it,
    its confidence, and where it looked, as an (H, W) map over the image in [0, 1]."""

    answer: str
    guess: str
    confidence: float
    attention: np.ndarray

    @property
    def abstained(self) -> bool:
        return self.answer == UNCERTAIN


def merge(looks: Sequence[Look], size: tuple[int, int], threshold: float) -> Finding:
    """One answer from the views of one image (the whole first). The view likeliest to show
    a defect (lowest `no defect` probability) answers, its place mapped to the whole image,
    if it found one more likely than not; else `no defect`, as sure as the least sure view.
    Below `threshold` the answer is `uncertain`."""
    whole = looks[0]
    found = [k for k in looks if parsed(k.answer)[0] is not None]
    best = min(found, key=lambda k: k.clear, default=None)
    if best is not None and best.clear < 0.5:
        kind, where = parsed(best.answer)
        if where is not None:
            where = place(cell(where, best.box), size)
        guess, confidence, chosen = answer_text(kind, where), best.confidence, best
    else:
        guess, confidence, chosen = NO_DEFECT, min(k.clear for k in looks), whole
    return Finding(
        answer=guess if confidence >= threshold else UNCERTAIN,
        guess=guess,
        confidence=confidence,
        attention=_spread(chosen, size),
    )


def _spread(look: Look, size: tuple[int, int]) -> np.ndarray:
    """A view's attention laid over the whole image (zero outside the view), peak 1."""
    w, h = size
    out = np.zeros((h, w), np.float32)
    x0, y0, x1, y1 = look.box
    grid = torch.from_numpy(look.attention.astype(np.float32))[None, None]
    patch = F.interpolate(grid, size=(y1 - y0, x1 - x0), mode="bilinear")[0, 0].numpy()
    out[y0:y1, x0:x1] = patch
    return out / max(float(out.max()), 1e-12)


def calibrate(confidence: np.ndarray, correct: np.ndarray, target: float) -> float:
    """The lowest threshold at which the answers at or above it are right at least `target`
    of the time (selective prediction on a validation split); above every confidence (all
    abstain) if no threshold reaches it."""
    order = np.argsort(-confidence)
    right = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    reached = np.nonzero(right >= target)[0]
    if not len(reached):
        return float(min(1.0, confidence.max() + 1e-6)) if len(confidence) else 1.0
    return float(confidence[order][reached[-1]])
