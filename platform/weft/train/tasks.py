"""What each model kind trains on and how it is evaluated: one small task object per kind,
so CLIP, the captioner and the diffusion model share one training loop (DESIGN habit 5).

`loss` runs the forward pass through the wrapped module (DDP / FSDP / DeepSpeed hooks live
there). `weights` gathers the weights to evaluate and export (every rank calls it), and
`evaluate` runs on rank 0 alone, on a plain copy of the model holding them.
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.distributed.tensor import DTensor

from weft.inspection import PROMPTS, GoldSet
from weft.models.captioner import Captioner, teacher_forcing_loss
from weft.models.clip import CLIP, contrastive_loss, zero_shot_classifier, zero_shot_logits
from weft.models.diffusion import EMA, DDIMScheduler, TextToImage, sample
from weft.models.inference import DefectInspector, Embedder
from weft.models.inspector import PROMPT_END, Inspector, answer_loss, calibrate
from weft.models.metrics import (
    bleu4,
    cider,
    clip_score,
    frechet_distance,
    image_features,
    retrieval_metrics,
    topk_accuracy,
)
from weft.models.text import PAD_ID
from weft.models.tokenizer import Tokenizer
from weft.models.vit import ViT
from weft.registry.artifacts import fetch_predictor
from weft.specs import StorageSpec
from weft.train.prepared import Prepared, rank
from weft.train.spec import TrainSpec

Batch = dict[str, Tensor]


class Task(ABC):
    kind: ClassVar[str]

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, spec: TrainSpec) -> None:
        self.tokenizer, self.eval = tokenizer, spec.eval

    @abstractmethod
    def loss(self, module: nn.Module, batch: Batch) -> Tensor: ...

    def after_step(self, model: nn.Module) -> dict[str, float]:
        """Called after each optimiser step; returns metrics worth logging."""
        return {}

    def weights(self, prepared: Prepared) -> dict[str, Tensor] | None:
        """The full weights to evaluate and export, on rank 0 (a collective)."""
        return prepared.full_state_dict()

    def exported(self, model: nn.Module) -> nn.Module:
        """The model as it is saved (rank 0): what the last evaluation learned about it may
        go into its config."""
        return model

    @abstractmethod
    def evaluate(
        self, model: nn.Module, batches: list[Batch]
    ) -> tuple[dict[str, float], dict[str, Image.Image]]:
        """Held-out metrics and images to look at (sample grids, attention maps)."""


class CLIPTask(Task):
    kind = "clip"

    def loss(self, module: nn.Module, batch: Batch) -> Tensor:
        return contrastive_loss(*module(batch["image"], batch["ids"]))

    def after_step(self, model: nn.Module) -> dict[str, float]:
        assert isinstance(model, CLIP)
        model.clamp_temperature()
        return {"temperature": model.temperature}

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, batches: list[Batch]
    ) -> tuple[dict[str, float], dict[str, Image.Image]]:
        assert isinstance(model, CLIP)
        images, ids = _joined(batches)
        image_emb, text_emb, scale = model(images, ids)
        metrics = {"val/loss": contrastive_loss(image_emb, text_emb, scale, gather=False).item()}
        metrics |= {f"val/{k}": v for k, v in retrieval_metrics(image_emb, text_emb).items()}
        if self.eval.classes:
            labels = _labels(self.tokenizer, ids, self.eval.classes)
            known = labels >= 0
            if known.any():
                classifier = zero_shot_classifier(model, self.tokenizer, self.eval.classes)
                logits = zero_shot_logits(model, images[known], classifier)
                k = min(5, len(self.eval.classes))
                metrics["val/zero_shot_top1"] = topk_accuracy(logits, labels[known], 1)
                metrics[f"val/zero_shot_top{k}"] = topk_accuracy(logits, labels[known], k)
        if not isinstance(model.visual, ViT):  # a convnet has no attention to draw
            return metrics, {}
        maps = model.visual.attention_maps(images[:4])  # (depth, B, heads, T, T)
        return metrics, {"attention.png": _attention_grid(images[:4], maps[-1])}


def _joined(batches: list[Batch]) -> tuple[Tensor, Tensor]:
    """The held-out batches as one batch of images and one of token ids."""
    return torch.cat([b["image"] for b in batches]), torch.cat([b["ids"] for b in batches])


def _labels(tokenizer: Tokenizer, ids: Tensor, classes: list[str]) -> Tensor:
    """The index of the (first) class name in each caption, -1 when none is."""
    texts = [tokenizer.decode(row.tolist()).lower() for row in ids]
    return torch.tensor(
        [next((i for i, c in enumerate(classes) if c.lower() in t), -1) for t in texts]
    )


class CaptionTask(Task):
    kind = "captioner"

    def loss(self, module: nn.Module, batch: Batch) -> Tensor:
        return teacher_forcing_loss(module, batch["image"], batch["ids"])

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, batches: list[Batch]
    ) -> tuple[dict[str, float], dict[str, Image.Image]]:
        assert isinstance(model, Captioner)
        images, ids = _joined(batches)
        t = self.tokenizer
        found = model.generate(
            images, t.bos_id, t.eos_id, ids.shape[1], beam_size=model.config.beam_size
        )
        hypotheses = [t.decode(row) for row in found]
        references = [[t.decode(row.tolist())] for row in ids]
        metrics = {
            "val/loss": self.loss(model, {"image": images, "ids": ids}).item(),
            "val/bleu4": bleu4(references, hypotheses),
            "val/cider": cider(references, hypotheses),
        }
        maps = model.cross_attention_maps(images[:4], ids[:4])  # (depth, B, heads, L, T)
        return metrics, {"cross_attention.png": _attention_grid(images[:4], maps[-1])}


class InspectTask(Task):
    """The inspector learns the answer after each prompt. Each evaluation measures exact
    answers on held-out views and, given `eval.calibration`, calibrates the abstention
    thresholds (whole image and crops) on that gold set; the export carries the latest."""

    kind = "inspector"

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, spec: TrainSpec) -> None:
        super().__init__(model, tokenizer, spec)
        end = tokenizer.token_id(PROMPT_END)  # a byte-level alphabet always holds it
        assert end is not None
        self.end_id, self.thresholds = end, dict[str, float]()

    def loss(self, module: nn.Module, batch: Batch) -> Tensor:
        return answer_loss(module, batch["image"], batch["ids"], self.end_id)

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, batches: list[Batch]
    ) -> tuple[dict[str, float], dict[str, Image.Image]]:
        assert isinstance(model, Inspector)
        images, ids = _joined(batches)
        metrics = {"val/loss": self.loss(model, {"image": images, "ids": ids}).item()}
        right, looked = 0, []
        for prompt, rows in _by_prompt(ids, self.end_id):
            answers, _, maps = model.answer(images[rows], prompt, self.tokenizer.eos_id)
            for row, answer in zip(rows, answers, strict=True):
                expected = ids[row, len(prompt) :]
                right += answer == expected[expected != PAD_ID].tolist()[:-1]
            looked.append(maps)
        metrics["val/answer_accuracy"] = right / len(ids)
        if self.eval.calibration:
            inspector = DefectInspector(model, self.tokenizer)
            found = _calibrated(inspector, self.eval.calibration, self.eval.target_accuracy)
            self.thresholds = {k: v for k, v in found.items() if k.endswith("threshold")}
            metrics |= {f"val/{k}": v for k, v in found.items()}
        first = torch.cat(looked)[:4]
        return metrics, {"looked.png": _looked_grid(images[:4], first)}

    def exported(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, Inspector)
        model.config = model.config.model_copy(update=self.thresholds)
        return model


def _by_prompt(ids: Tensor, end_id: int) -> list[tuple[Tensor, list[int]]]:
    """Rows grouped by their prompt: the ids up to and with their last `end_id`."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for row, seq in enumerate(ids.tolist()):
        end = len(seq) - 1 - seq[::-1].index(end_id) if end_id in seq else 0
        groups.setdefault(tuple(seq[: end + 1]), []).append(row)
    return [(torch.tensor(prompt), rows) for prompt, rows in groups.items()]


def _calibrated(inspector: DefectInspector, folder: str, target: float) -> dict[str, float]:
    """The abstention thresholds on a gold set, whole image and crops, each over both
    prompt styles, and the share of answers each lets through."""
    gold = GoldSet.read(folder)
    data = gold.images(folder)
    out = {}
    for crops, name in ((False, ""), (True, "crop_")):
        confidence, right = [], []
        for prompts in PROMPTS.values():
            found = inspector.inspect(data, prompts[0], crops)
            confidence += [f.confidence for f in found]
            right += [i.right(f.guess) for i, f in zip(gold.items, found, strict=True)]
        threshold = calibrate(np.array(confidence), np.array(right), target)
        out[f"{name}threshold"] = threshold
        out[f"{name}answered"] = float(np.mean(np.array(confidence) >= threshold))
    return out


def _looked_grid(images: Tensor, looked: Tensor) -> Image.Image:
    """Each image above where its answer looked, upsampled to it."""
    heat = looked[:, None] / looked.amax(dim=(1, 2), keepdim=True)[:, None].clamp(min=1e-12)
    heat = F.interpolate(heat, size=images.shape[-2:])
    return _grid(torch.cat([images, heat.expand(-1, 3, -1, -1) * 2 - 1]), columns=len(images))


class DiffusionTask(Task):
    """Samples and exports use an EMA of the weights, kept beside each rank's parameters
    (whole under DDP and ZeRO-1/2, shards under FSDP). With `eval.clip`, that CLIP scores
    the samples at each guidance scale."""

    kind = "diffusion"

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, spec: TrainSpec) -> None:
        super().__init__(model, tokenizer, spec)
        self.ema = EMA(model, decay=0.999)
        self.storage = spec.storage
        self._judge: tuple[CLIP, Tokenizer] | None = None

    def loss(self, module: nn.Module, batch: Batch) -> Tensor:
        return module(batch["image"], batch["ids"])

    def after_step(self, model: nn.Module) -> dict[str, float]:
        self.ema.update(model)
        return {}

    def weights(self, prepared: Prepared) -> dict[str, Tensor] | None:
        full = {
            k: v.full_tensor() if isinstance(v, DTensor) else v for k, v in self.ema.shadow.items()
        }
        return full if rank() == 0 else None

    def judge(self) -> tuple[CLIP, Tokenizer] | None:
        """The CLIP of `eval.clip` and its tokenizer, loaded on first use."""
        if self._judge is None and self.eval.clip:
            self._judge = load_judge(self.eval.clip, self.storage)
        return self._judge

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, batches: list[Batch]
    ) -> tuple[dict[str, float], dict[str, Image.Image]]:
        assert isinstance(model, TextToImage)
        real, all_ids = _joined(batches)
        n = self.eval.samples
        images, ids = real[:n], all_ids[:n]
        generator = torch.Generator().manual_seed(0)
        metrics = {"val/loss": model.loss(real, all_ids, generator).item()}
        grids, scored = {}, {}
        for scale in self.eval.cfg_scales:
            out = sample(
                model,
                ids,
                DDIMScheduler(model.schedule),
                self.eval.sample_steps,
                scale,
                generator=torch.Generator().manual_seed(0),
            )
            grids[f"samples_cfg{scale:g}.png"] = _grid(torch.cat([images[:8], out[:8]]))
            scored[f"cfg{scale:g}"] = out
        if (judge := self.judge()) is not None:
            metrics |= _judged(judge, self.tokenizer, real, ids, scored)
        return metrics, grids


def load_judge(uri: str, spec: StorageSpec) -> tuple[CLIP, Tokenizer]:
    """A trained Weft CLIP, with its tokenizer: a model folder (local or S3) or an MLflow
    model (`runs:/...`, `models:/<name>@<alias>`)."""
    with tempfile.TemporaryDirectory() as tmp:
        judge, _, _ = fetch_predictor(uri, "eval.clip", spec, Path(tmp), Embedder)
    return judge.model, judge.tokenizer


def _judged(
    judge: tuple[CLIP, Tokenizer],
    tokenizer: Tokenizer,
    real: Tensor,
    ids: Tensor,
    samples: dict[str, Tensor],
) -> dict[str, float]:
    """CLIP scores of the real images and of each sample set against their captions, and each
    sample set's Fréchet distance to all real held-out images, in the CLIP's image space."""
    clip, clip_tokenizer = judge
    size = clip.config.vision.image_size
    texts = [tokenizer.decode(row.tolist()) for row in ids]
    clip_ids = clip_tokenizer.encode(texts, clip.config.text.context_length)

    def sized(images: Tensor) -> Tensor:
        if images.shape[-1] == size:
            return images
        return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True)

    real_features = image_features(clip.visual, sized(real))
    metrics = {"val/clip_score_real": clip_score(clip, sized(real[: len(ids)]), clip_ids)}
    for name, images in samples.items():
        metrics[f"val/clip_score_{name}"] = clip_score(clip, sized(images), clip_ids)
        features = image_features(clip.visual, sized(images))
        metrics[f"val/frechet_{name}"] = frechet_distance(real_features, features)
    return metrics


TASKS: dict[str, type[Task]] = {
    t.kind: t for t in (CLIPTask, CaptionTask, DiffusionTask, InspectTask)
}


def _grid(images: Tensor, columns: int = 8) -> Image.Image:
    """(N, 3, H, W) in [-1, 1] → one image, `columns` wide (real rows first where given)."""
    n, _, h, w = images.shape
    rows = -(-n // columns)
    canvas = np.zeros((rows * h, columns * w, 3), np.uint8)
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    for i, img in enumerate(pixels):
        r, c = divmod(i, columns)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = img
    return Image.fromarray(canvas)


def _attention_grid(images: Tensor, maps: Tensor) -> Image.Image:
    """Each image beside where its first query looks (mean over heads), upsampled to it."""
    attention = maps.mean(dim=1)[:, 0, 1:]  # (B, patches): query 0, CLS column dropped
    side = int(attention.shape[1] ** 0.5)
    heat = attention.view(-1, 1, side, side)
    heat = F.interpolate(heat / heat.amax(dim=(2, 3), keepdim=True), size=images.shape[-2:])
    return _grid(torch.cat([images, heat.expand(-1, 3, -1, -1) * 2 - 1]), columns=len(images))
