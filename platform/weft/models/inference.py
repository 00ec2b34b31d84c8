"""One inference API for every kind of Weft model, in plain calls.

`load(directory)` gives the saved model's `Predictor`: an `Embedder` (CLIP: texts and images
to unit vectors), a `CaptionWriter` (captioner: images to captions by beam search) or an
`ImageGenerator` (diffusion: prompts to PNG images, with negative prompts, guidance scale,
steps and seed). They take and return strings, encoded image bytes and numpy arrays; every
knob defaults to the model's own config, where a sweep stores its choice.

`predict_columns` is the same calls over columns of a table, with the knobs as `params`:
what MLflow's pyfunc and Serve call. `inputs`, `outputs`, `params` and `example` describe
it, so a wrapper needs no knowledge of the kind.
"""

from __future__ import annotations

import copy
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torch import nn

from weft.models import images, registry
from weft.models.captioner import Captioner
from weft.models.clip import CLIP
from weft.models.diffusion import DDIMScheduler, GenerationConfig, TextToImage, sample
from weft.models.inspector import (
    NO_DEFECT,
    PROMPT_END,
    Box,
    Finding,
    Inspector,
    Look,
    merge,
    tiles,
    view,
)
from weft.models.metrics import image_features
from weft.models.text import PAD_ID
from weft.models.tokenizer import Tokenizer

Columns = dict[str, list[Any]]
# Column types, as MLflow names them: "string", "binary", "float_array".
Schema = list[tuple[str, str]]
# Rows per forward pass: bounds memory whatever a caller sends.
BATCH = 64


class Predictor(ABC):
    """A loaded model with its tokenizer, answering plain calls on CPU or a GPU."""

    kind: ClassVar[str]
    inputs: ClassVar[Schema]  # the columns `predict_columns` reads (each optional per row)
    outputs: ClassVar[Schema]

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device

    @property
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The knobs of `predict_columns` with their defaults (from the model's config)."""

    @abstractmethod
    def predict_columns(self, columns: Columns, params: dict[str, Any]) -> Columns:
        """The answer for each row of `columns`, with `params` over the defaults."""

    @abstractmethod
    def example(self) -> Columns:
        """A small valid input."""

    def _params(self, given: dict[str, Any] | None) -> dict[str, Any]:
        unknown = set(given or {}) - set(self.params)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(sorted(unknown))} for a {self.kind} model; "
                f"known: {', '.join(self.params)}"
            )
        return self.params | (given or {})

    @property
    def config(self) -> Any:
        return self.model.config

    def _ids(self, texts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer.encode(list(texts), self.config.text.context_length).to(self.device)

    def _images(self, data: Sequence[bytes]) -> torch.Tensor:
        return images.batch(data, registry.image_size(self.config)).to(self.device)


def _chunks(n: int) -> list[slice]:
    return [slice(lo, lo + BATCH) for lo in range(0, n, BATCH)]


class Embedder(Predictor):
    """CLIP: texts and images into one space, as unit vectors (cosine = dot product)."""

    kind = "clip"
    inputs: ClassVar[Schema] = [("text", "string"), ("image", "binary")]
    outputs: ClassVar[Schema] = [("embedding", "float_array")]
    model: CLIP

    @property
    def dim(self) -> int:
        return self.model.config.embed_dim

    @property
    def params(self) -> dict[str, Any]:
        return {"normalize": True}

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        """(len(texts), dim) float32, unit vectors unless `normalize` is False."""
        encode = self.model.encode_text
        return self._embed(texts, lambda part: encode(self._ids(part), normalize))

    @torch.no_grad()
    def embed_images(self, data: Sequence[bytes], normalize: bool = True) -> np.ndarray:
        """(len(data), dim) float32 from encoded images (PNG, JPEG, ...), unit vectors unless
        `normalize` is False."""
        encode = self.model.encode_image
        return self._embed(data, lambda part: encode(self._images(part), normalize))

    def image_features(self, data: Sequence[bytes]) -> np.ndarray:
        """(len(data), width) float64: the image encoder's CLS features, the space where
        Fréchet distances between image sets are measured."""
        return image_features(self.model.visual, self._images(data))

    def _embed(self, items: Sequence[Any], encode: Any) -> np.ndarray:
        parts = [encode(items[s]).float().cpu().numpy() for s in _chunks(len(items))]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def predict_columns(self, columns: Columns, params: dict[str, Any]) -> Columns:
        """Each row's text, or if it has none its image, embedded."""
        normalize = self._params(params)["normalize"]
        n = len(next(iter(columns.values()), []))
        texts = columns.get("text") or [None] * n
        data = columns.get("image") or [None] * n
        by_text = [i for i in range(n) if isinstance(texts[i], str)]
        by_image = [i for i in range(n) if i not in set(by_text) and isinstance(data[i], bytes)]
        missing = sorted(set(range(n)) - set(by_text) - set(by_image))
        if missing:
            raise ValueError(f"row {missing[0]}: needs a text or an image")
        out = np.zeros((n, self.dim), np.float32)
        out[by_text] = self.embed_texts([texts[i] for i in by_text], normalize)
        out[by_image] = self.embed_images([data[i] for i in by_image], normalize)
        return {"embedding": list(out)}

    def example(self) -> Columns:
        return {"text": ["a red circle", "a blue square"]}


class CaptionWriter(Predictor):
    """The captioner: a caption for each image, by beam search."""

    kind = "captioner"
    inputs: ClassVar[Schema] = [("image", "binary")]
    outputs: ClassVar[Schema] = [("caption", "string")]
    model: Captioner

    @property
    def params(self) -> dict[str, Any]:
        return {"beam_size": self.model.config.beam_size}

    @torch.no_grad()
    def caption(self, data: Sequence[bytes], beam_size: int | None = None) -> list[str]:
        """One caption per encoded image; `beam_size` 1 is greedy decoding."""
        t, beam = self.tokenizer, beam_size or self.model.config.beam_size
        length = self.model.config.text.context_length
        found = [
            ids
            for s in _chunks(len(data))
            for ids in self.model.generate(
                self._images(data[s]), t.bos_id, t.eos_id, length, beam_size=beam
            )
        ]
        return [t.decode(ids) for ids in found]

    @torch.no_grad()
    def likelihood(self, data: Sequence[bytes], text: str) -> np.ndarray:
        """How well each encoded image explains `text`: the mean log-probability per token
        the captioner gives it (higher is better)."""
        ids = self._ids([text])
        return np.concatenate(
            [
                self.model.log_likelihood(batch, ids.expand(len(batch), -1)).cpu().numpy()
                for batch in (self._images(data[s]) for s in _chunks(len(data)))
            ]
        )

    def predict_columns(self, columns: Columns, params: dict[str, Any]) -> Columns:
        return {"caption": self.caption(columns["image"], **self._params(params))}

    def example(self) -> Columns:
        size = self.model.config.vision.image_size
        return {"image": [images.to_png(torch.zeros(3, size, size))]}


class ImageGenerator(Predictor):
    """The text-to-image model: PNG images from prompts, with classifier-free guidance."""

    kind = "diffusion"
    inputs: ClassVar[Schema] = [("prompt", "string"), ("negative_prompt", "string")]
    outputs: ClassVar[Schema] = [("image", "binary")]
    model: TextToImage

    @property
    def params(self) -> dict[str, Any]:
        g = self.model.config.generation
        return {"cfg_scale": g.cfg_scale, "steps": g.steps, "seed": 0}

    def with_generation(self, **settings: Any) -> ImageGenerator:
        """This generator (sharing its weights) with other defaults: `cfg_scale`, `steps`,
        `negative_prompt`, validated by the model's `GenerationConfig`."""
        config = self.model.config
        generation = GenerationConfig.model_validate(config.generation.model_dump() | settings)
        model = copy.copy(self.model)  # the same parameters, its own config
        model.config = config.model_copy(update={"generation": generation})
        return ImageGenerator(model, self.tokenizer, self.device)

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[str],
        negative_prompts: Sequence[str | None] | None = None,
        cfg_scale: float | None = None,
        steps: int | None = None,
        seed: int = 0,
    ) -> list[bytes]:
        """One PNG per prompt. A negative prompt (per prompt; None or empty: the model's
        default, else the learned null text) is what guidance steers away from; `seed`
        fixes the starting noise, so the same call gives the same images."""
        g = self.model.config.generation
        negatives = [n or g.negative_prompt for n in (negative_prompts or [None] * len(prompts))]
        if len(negatives) != len(prompts):
            raise ValueError(f"{len(negatives)} negative prompts for {len(prompts)} prompts")
        generator = torch.Generator(self.device).manual_seed(seed)
        out: list[bytes] = []
        for s in _chunks(len(prompts)):
            part = negatives[s]
            negative = None
            if any(part):  # rows without one: padding only, which stands for the null text
                negative = self._ids([n or "" for n in part])
                negative[torch.tensor([not n for n in part], device=self.device)] = PAD_ID
            x = sample(
                self.model,
                self._ids(prompts[s]),
                DDIMScheduler(self.model.schedule),
                steps or g.steps,
                g.cfg_scale if cfg_scale is None else cfg_scale,
                negative_ids=negative,
                generator=generator,
            )
            out += [images.to_png(image) for image in x]
        return out

    def predict_columns(self, columns: Columns, params: dict[str, Any]) -> Columns:
        p = self._params(params)
        negatives = columns.get("negative_prompt")
        return {"image": self.generate(columns["prompt"], negatives, **p)}

    def example(self) -> Columns:
        return {"prompt": ["a red circle"], "negative_prompt": ["blue"]}


class DefectInspector(Predictor):
    """The inspector: each image's answer to a prompt (a defect's kind and place, `no
    defect`, or `uncertain` below the calibrated threshold), its confidence, and where it
    looked. With `crops`, the whole image and its zoomed tiles are inspected and merged."""

    kind = "inspector"
    inputs: ClassVar[Schema] = [("image", "binary"), ("prompt", "string")]
    outputs: ClassVar[Schema] = [
        ("answer", "string"),
        ("guess", "string"),
        ("confidence", "double"),
        ("attention", "binary"),
    ]
    model: Inspector

    @property
    def params(self) -> dict[str, Any]:
        return {"crops": False}

    def prompt_ids(self, prompt: str) -> torch.Tensor:
        """`<bos>` and the prompt's ids, ending at its question mark (added if missing); a
        ValueError if the prompt is empty or leaves no room for an answer."""
        text = " ".join(prompt.split()).rstrip(f" {PROMPT_END}")
        if not text:
            raise ValueError("the prompt is empty")
        ids = self.tokenizer.prefix(text + PROMPT_END)
        room = self.model.config.text.context_length - self.model.config.answer_length
        if len(ids) > room:
            raise ValueError(f"the prompt is {len(ids)} tokens; this model reads {room} at most")
        return torch.tensor(ids)

    @torch.no_grad()
    def inspect(self, data: Sequence[bytes], prompt: str, crops: bool = False) -> list[Finding]:
        """One finding per encoded image (any size: the whole is shrunk to the model's
        input, and with `crops` each tile of a `grid` x `grid` cover is zoomed to it)."""
        ids = self.prompt_ids(prompt)
        clear = torch.tensor([*self.tokenizer.prefix(NO_DEFECT)[1:], self.tokenizer.eos_id])
        c, side = self.model.config, self.model.config.vision.image_size
        out = []
        for i, blob in enumerate(data):
            try:
                image = images.decode(blob)
            except images.ImageError as err:
                raise images.ImageError(f"image {i}: cannot be decoded ({err})") from None
            whole: Box = (0, 0, *image.size)
            boxes = [whole, *(tiles(image.size, c.grid, c.zoom) if crops else [])]
            batch = torch.from_numpy(
                np.stack(
                    [images.to_array(images.png_bytes(view(image, b, side)), side) for b in boxes]
                )
            ).to(self.device)
            answers, confidence, looked = self.model.answer(batch, ids, self.tokenizer.eos_id)
            p_clear = self.model.probability(batch, ids, clear)
            looks = [
                Look(box, self.tokenizer.decode(a), float(p), float(q), m.cpu().numpy())
                for box, a, p, q, m in zip(boxes, answers, confidence, p_clear, looked, strict=True)
            ]
            out.append(merge(looks, image.size, c.crop_threshold if crops else c.threshold))
        return out

    def predict_columns(self, columns: Columns, params: dict[str, Any]) -> Columns:
        """Each row's image inspected with its prompt (rows sharing a prompt together)."""
        crops = self._params(params)["crops"]
        n = len(columns["image"])
        found: dict[int, Finding] = {}
        for prompt in dict.fromkeys(columns["prompt"]):
            rows = [i for i in range(n) if columns["prompt"][i] == prompt]
            images_of_rows = [columns["image"][i] for i in rows]
            found |= dict(zip(rows, self.inspect(images_of_rows, prompt, crops), strict=True))
        done = [found[i] for i in range(n)]
        return {
            "answer": [f.answer for f in done],
            "guess": [f.guess for f in done],
            "confidence": [f.confidence for f in done],
            "attention": [
                attention_png(images.decode(columns["image"][i]), f.attention)
                for i, f in enumerate(done)
            ],
        }

    def example(self) -> Columns:
        size = self.model.config.vision.image_size
        return {
            "image": [images.to_png(torch.zeros(3, size, size))],
            "prompt": ["any defect?"],
        }


def attention_png(image: Image.Image, attention: np.ndarray) -> bytes:
    """Where the model looked, drawn over the image: red where the map is high."""
    heat = attention[..., None].clip(0, 1) * 0.65
    red = np.array([230, 20, 0], np.float32)
    pixels = np.asarray(image.convert("RGB"), np.float32) * (1 - heat) + red * heat
    return images.png_bytes(Image.fromarray(pixels.round().astype(np.uint8)))


PREDICTORS: dict[str, type[Predictor]] = {
    p.kind: p for p in (Embedder, CaptionWriter, ImageGenerator, DefectInspector)
}


def packed(directory: str | Path) -> dict[str, bytes]:
    """A saved model's files as bytes: what ships it to a Ray actor on any node."""
    return {p.name: p.read_bytes() for p in Path(directory).iterdir() if p.is_file()}


def unpacked(files: dict[str, bytes], device: str = "cpu") -> Predictor:
    """The Predictor of a model shipped by `packed`."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            Path(tmp, name).write_bytes(content)
        return load(tmp, device)


def load(directory: str | Path, device: str = "cpu") -> Predictor:
    """The model saved in `directory` (`registry.save`) as its kind's Predictor."""
    model, tokenizer = registry.load(directory)
    if tokenizer is None:
        raise ValueError(f"{directory} has no tokenizer: it cannot read or write text")
    return PREDICTORS[registry.load_kind(directory)](model, tokenizer, device)
