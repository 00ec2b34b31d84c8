"""Byte-level BPE tokenizer, trained here on the curated captions (Hugging Face `tokenizers`).

Byte-level: any UTF-8 text encodes, in any script, with no unknown token. Every sequence is
`<bos> tokens <eos>` padded with `<pad>` (id 0) to a fixed length; a text too long is cut
before its `<eos>`, which is always kept, since text towers pool at it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer as _Inner
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers
from torch import Tensor

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
FILE = "tokenizer.json"


class Tokenizer:
    """Text ↔ fixed-length id tensors; saved as one `tokenizer.json` beside a model."""

    def __init__(self, inner: _Inner) -> None:
        self.inner = inner
        self.pad_id, self.bos_id, self.eos_id = (self._id(t) for t in (PAD, BOS, EOS))

    def _id(self, token: str) -> int:
        found = self.inner.token_to_id(token)
        if found is None:
            raise ValueError(f"tokenizer has no {token} token")
        return int(found)

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 4096,
        min_frequency: int = 2,
        lowercase: bool = False,
    ) -> Tokenizer:
        """A tokenizer learned from `texts`; with `lowercase` it folds case, in training and in
        every later encoding (the normaliser is saved with it)."""
        inner = _Inner(models.BPE())
        folds = [normalizers.NFC()] + ([normalizers.Lowercase()] if lowercase else [])
        inner.normalizer = normalizers.Sequence(folds)
        inner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        inner.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=[PAD, BOS, EOS],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        inner.train_from_iterator(texts, trainer=trainer)
        return cls(inner)

    @property
    def vocab_size(self) -> int:
        return int(self.inner.get_vocab_size())

    def encode(self, texts: Sequence[str], length: int) -> Tensor:
        """(B, length) int64: `<bos>` ids `<eos>` then `<pad>`s."""
        if length < 2:
            raise ValueError(f"length {length} leaves no room for <bos> and <eos>")
        out = torch.full((len(texts), length), self.pad_id, dtype=torch.long)
        for row, encoding in enumerate(
            self.inner.encode_batch(list(texts), add_special_tokens=False)
        ):
            ids = [self.bos_id, *encoding.ids[: length - 2], self.eos_id]
            out[row, : len(ids)] = torch.tensor(ids)
        return out

    def prefix(self, text: str) -> list[int]:
        """`<bos>` and the ids of `text`, with no `<eos>`: a start the model continues."""
        return [self.bos_id, *self.inner.encode(text, add_special_tokens=False).ids]

    def token_id(self, token: str) -> int | None:
        """The id of one token (`?`), None if the vocabulary lacks it."""
        found = self.inner.token_to_id(token)
        return None if found is None else int(found)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of the ids up to the first `<eos>`, without special tokens."""
        ids = list(ids)
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return str(
            self.inner.decode([i for i in ids if i not in (self.pad_id, self.bos_id)])
        ).strip()

    def to_str(self) -> str:
        """The whole tokenizer as JSON text (to ship it to workers)."""
        return str(self.inner.to_str())

    @classmethod
    def from_str(cls, text: str) -> Tokenizer:
        return cls(_Inner.from_str(text))

    def save(self, directory: str | Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.inner.save(str(Path(directory) / FILE))

    @classmethod
    def load(cls, directory: str | Path) -> Tokenizer:
        path = Path(directory) / FILE
        if not path.is_file():
            raise FileNotFoundError(f"no {FILE} in {directory}")
        return cls(_Inner.from_file(str(path)))
