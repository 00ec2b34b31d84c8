"""The transfer set: Fashion-MNIST's photographs, named by CLDR in every corpus language."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from weft.data import emoji
from weft.quality import transfer


def test_the_photographs_are_a_seeded_balanced_sample_shown_dark_on_white() -> None:
    data, labels = transfer.photographs(4, seed=1)
    assert labels.tolist() == [c for c in range(len(transfer.EMOJI)) for _ in range(4)]
    assert transfer.photographs(4, seed=1)[0] == data
    assert transfer.photographs(4, seed=2)[0] != data
    pixels = np.asarray(Image.open(io.BytesIO(data[0])))
    assert pixels.shape == (28, 28)
    assert pixels[0, 0] == 255 and pixels.min() < 128  # white border, dark clothes


def test_each_language_names_every_class_once_without_bidi_marks() -> None:
    assert transfer.names("en")[:2] == ["t-shirt", "jeans"]
    for language in emoji.LANGUAGES:
        found = transfer.names(language)
        assert len(set(found)) == len(transfer.EMOJI), language
        assert not any(c in name for name in found for c in "\u202a\u202b\u202c"), language


class _Oracle:
    """Embeds each photograph and each name by its class (one-hot), except that it mixes up
    the German names and knows no drawing."""

    def __init__(self) -> None:
        data, labels = transfer.photographs(3, seed=0)
        self.photo = dict(zip(data, labels.tolist(), strict=True))
        self.name = {n: i for lang in emoji.LANGUAGES for i, n in enumerate(transfer.names(lang))}
        for i, n in enumerate(transfer.names("de")):
            self.name[n] = (i + 1) % len(transfer.EMOJI)

    def embed_images(self, data: Sequence[bytes]) -> np.ndarray:
        return np.stack([self._hot(self.photo.get(d)) for d in data])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._hot(self.name[t]) for t in texts])

    def _hot(self, index: int | None) -> np.ndarray:
        out = np.zeros(len(transfer.EMOJI), np.float32)
        if index is not None:
            out[index] = 1
        return out


def test_transfer_accuracy_is_per_language_averaged_and_by_nearest_drawing() -> None:
    found = {f.on.split(", ")[-1]: f for f in transfer.zero_shot(_Oracle(), 3, seed=0)}  # type: ignore[arg-type]
    assert found["en names"].value == 1.0 and found["de names"].value == 0.0
    n = len(emoji.LANGUAGES)
    assert found[f"names in {n} languages"].value == (n - 1) / n
    assert found["nearest emoji drawing"].value == 1 / len(transfer.EMOJI)  # all ties: class 0
    assert all(f.count == 3 * len(transfer.EMOJI) and f.chance == 1 / 8 for f in found.values())
