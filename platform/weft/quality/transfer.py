"""The transfer set: pictures none of the drawing corpora holds, named in many languages, to
show whether what CLIP learned from drawings carries over. They are Fashion-MNIST's test
photographs of clothes (`dataset-fashion-mnist`; no other set of real pictures installs
offline), shown as photographed (the set stores them negated: light clothes on black), and
each of its classes that has an emoji is named in every language of the emoji corpus by
CLDR's name of that emoji ("Damenstiefel", "ブーツ")."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from weft.data import emoji
from weft.models.images import png_bytes
from weft.models.inference import Embedder
from weft.models.metrics import topk_accuracy
from weft.quality import fashion
from weft.quality.figures import Figure

# Fashion-MNIST's class → the emoji that draws it; pullover and shirt have none.
EMOJI = {
    "t-shirt": "👕", "trouser": "👖", "dress": "👗", "coat": "🧥",
    "sandal": "👡", "sneaker": "👟", "bag": "👜", "ankle boot": "👢",
}  # fmt: skip


def photographs(per_class: int, seed: int) -> tuple[list[bytes], torch.Tensor]:
    """A seeded sample of `per_class` test photographs of each class of EMOJI, as PNG (dark
    clothes on white), and their indices into EMOJI."""
    images, labels = fashion.load("t10k")
    generator = torch.Generator().manual_seed(seed)
    picked: list[int] = []
    classes: list[int] = []
    for index, name in enumerate(EMOJI):
        rows = torch.nonzero(labels == fashion.CLASSES.index(name)).flatten()
        chosen = rows[torch.randperm(len(rows), generator=generator)[:per_class]]
        picked += chosen.tolist()
        classes += [index] * len(chosen)
    grey = ((1 - images[picked, 0]) * 127.5).round().byte().numpy()  # un-negated
    return [png_bytes(Image.fromarray(pixels, mode="L")) for pixels in grey], torch.tensor(classes)


def names(language: str) -> list[str]:
    """CLDR's names of EMOJI's emoji in `language`, in EMOJI's order."""
    annotations = emoji.cldr_annotations(language)
    return [annotations[chars].name.strip("\u202b\u202c") for chars in EMOJI.values()]


def zero_shot(embedder: Embedder, per_class: int, seed: int) -> list[Figure]:
    """Top-1 accuracy of naming each photograph by the nearest class name, in each language
    of the emoji corpus and over all of them; and by the nearest of the classes' emoji
    drawings, which separates what the image side carries over from what the text side does."""
    data, labels = photographs(per_class, seed)
    images = embedder.embed_images(data)
    on = f"Fashion-MNIST photographs, {len(EMOJI)} classes"
    accuracies = {
        language: _top1(images @ embedder.embed_texts(names(language)).T, labels)
        for language in emoji.LANGUAGES
    }
    drawings = [emoji.picture(chars, 72) or b"" for chars in EMOJI.values()]
    by_drawing = _top1(images @ embedder.embed_images(drawings).T, labels)

    def figure(value: float, what: str) -> Figure:
        return Figure("clip", "transfer top-1", f"{on}, {what}", value, None, len(labels),
                      chance=1 / len(EMOJI))  # fmt: skip

    return [
        figure(float(np.mean(list(accuracies.values()))), f"names in {len(accuracies)} languages"),
        figure(by_drawing, "nearest emoji drawing"),
        *(figure(value, f"{language} names") for language, value in accuracies.items()),
    ]


def _top1(similarity: np.ndarray, labels: torch.Tensor) -> float:
    return topk_accuracy(torch.from_numpy(similarity), labels, 1)
