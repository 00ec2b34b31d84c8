"""Curated Parquet → training batches, on Ray Data workers: image-text pairs are read from the
curated dataset (`weft.curate.dataset`), split into train and held-out rows by a hash of their id,
shuffled, and decoded, resized, augmented and tokenised in `map_batches`. No worker holds the
dataset.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache, partial
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ray.data import Dataset, RandomSeedConfig

from weft import storage
from weft.cluster import DATA_CPUS
from weft.curate.dataset import curated, under
from weft.models.images import to_array
from weft.models.tokenizer import Tokenizer
from weft.specs import SpecError, StorageSpec
from weft.train.spec import DataSpec, TrainSpec
from weft.train.views import View, view

COLUMNS = ["id", "text", "image", "lang"]


def _held_out(ids: list[str], percent: float) -> np.ndarray:
    """Which rows are held out: a stable hash of the id, so every run splits alike."""
    buckets = [int.from_bytes(hashlib.blake2b(i.encode(), digest_size=4).digest()) for i in ids]
    return np.array(buckets) % 10_000 < percent * 100


def split_side(
    batch: pa.Table,
    percent: float,
    held_out: bool,
    sources: list[str] | None = None,
    val_sources: list[str] | None = None,
) -> pa.Table:
    """The image-text pairs of `batch` on one side of the split (text-only rows dropped): the
    rows from under `val_sources` are held out if given, else a hash share of the rows; rows
    outside `sources` (when given) are on neither side."""
    uris = batch["source_uri"].to_pylist() if sources or val_sources else []
    in_sources = under(uris, sources) if sources else np.ones(batch.num_rows, dtype=bool)
    if val_sources:
        held = under(uris, val_sources)
    else:
        held = _held_out(batch["id"].to_pylist(), percent) & in_sources
    side = held if held_out else in_sources & ~held
    mask = side & pc.is_valid(batch["image"]).to_numpy(zero_copy_only=False)
    return batch.filter(pa.array(mask))


def selected(batch: pa.Table, keys: str | None, text_pattern: str | None) -> pa.Table:
    """The rows whose key contains a match of `keys`, each with its text cut to what
    `text_pattern` finds (its first group, if it has one); rows either misses are left out."""
    if keys:
        batch = batch.filter(pc.match_substring_regex(batch["key"], keys))
    if text_pattern:
        pattern = re.compile(text_pattern)
        found = [pattern.search(t) if t else None for t in batch["text"].to_pylist()]
        parts = [m.group(1 if pattern.groups else 0).strip() for m in found if m]
        batch = batch.filter(pa.array([m is not None for m in found], pa.bool_()))
        batch = batch.set_column(
            batch.schema.get_field_index("text"), "text", pa.array(parts, pa.string())
        )
    return batch


def pairs(spec: DataSpec, storage_spec: StorageSpec) -> tuple[Dataset, Dataset]:
    """(train, held-out) datasets of the curated image-text pairs (text-only rows skipped)."""
    ds = curated(spec.uri, storage_spec, [*COLUMNS, "source_uri", "key"])
    split = partial(
        split_side,
        percent=spec.val_percent,
        sources=[storage.resolve(u, storage_spec).uri for u in spec.sources],
        val_sources=[storage.resolve(u, storage_spec).uri for u in spec.val_sources],
    )
    select = partial(selected, keys=spec.keys, text_pattern=spec.text_pattern)

    def side(held_out: bool) -> Dataset:
        return ds.map_batches(
            lambda batch: select(split(batch, held_out=held_out)),
            batch_format="pyarrow",
            num_cpus=DATA_CPUS,
        )

    return side(False), side(True)


def check_enough(spec: TrainSpec, train: Dataset, held_out: Dataset) -> None:
    """Refuse, before any worker starts, too few pairs for one batch on every worker, or none
    held out for evaluation; reads only as far as it takes to tell."""
    need = spec.workers.count * spec.optim.batch_size
    # materialised, not counted: a count adds an operator that takes a whole CPU, which a
    # sweep's concurrent trainers may not leave free
    if (found := train.limit(need).materialize().count()) < need:
        where = f" under {', '.join(spec.data.sources)}" if spec.data.sources else ""
        raise SpecError(
            f"data.uri: {spec.data.uri} holds {found} image-text pairs{where} to train on (rows "
            "without an image, such as text documents, are skipped), fewer than one batch for "
            f"each worker: workers.count {spec.workers.count} x optim.batch_size "
            f"{spec.optim.batch_size} = {need}"
        )
    if not (spec.data.val_percent or spec.data.val_sources):
        return
    if held_out.limit(1).materialize().count() == 0:
        if spec.data.val_sources:
            raise SpecError(
                f"data.val_sources: no pair of {spec.data.uri} was read from under "
                f"{', '.join(spec.data.val_sources)}"
            )
        raise SpecError(
            f"data.val_percent: no pair of {spec.data.uri} falls in the held-out "
            f"{spec.data.val_percent:g}% that evaluation reads; raise it, or set it to 0 to "
            "train without evaluation"
        )


def captions(ds: Dataset) -> Iterator[str]:
    """Every caption of `ds`, streamed (for training the tokenizer)."""
    for batch in ds.select_columns(["text"]).iter_batches(batch_format="pyarrow"):
        yield from cast(pa.Table, batch)["text"].to_pylist()


@lru_cache(maxsize=4)
def _tokenizer(serialised: str) -> Tokenizer:
    """Parsed once per Ray worker process, which runs many preprocessing tasks."""
    return Tokenizer.from_str(serialised)


def preprocess(
    batch: pa.Table,
    tokenizer: str,
    size: int,
    length: int,
    augment: bool,
    word_dropout: float,
    views: Sequence[View] = ("caption",),
) -> dict[str, np.ndarray]:
    """Ray Data stage: rows → {"image": (B, 3, S, S) float32, "ids": (B, L) int64}.

    Augmentation draws fresh randomness in every task, so every epoch sees new crops and new
    text views (`weft.train.views`).
    """
    rng = np.random.default_rng()
    images = [
        to_array(b, size, rng if augment else None, formats=None)
        for b in batch["image"].to_pylist()
    ]
    texts = batch["text"].to_pylist()
    if list(views) != ["caption"]:
        langs = batch["lang"].to_pylist() if "lang" in batch.column_names else [None] * len(texts)
        texts = [view(t, lang, views, rng) for t, lang in zip(texts, langs, strict=True)]
    if word_dropout:
        texts = [drop_words(t, word_dropout, rng) for t in texts]
    ids = _tokenizer(tokenizer).encode(texts, length).numpy()
    empty = np.zeros((0, 3, size, size), np.float32)
    return {"image": np.stack(images) if images else empty, "ids": ids}


def drop_words(text: str, p: float, rng: np.random.Generator) -> str:
    """`text` with each word left out with probability `p`; one word is always kept."""
    words = text.split()
    if not words:
        return text
    kept = [w for w, drop in zip(words, rng.uniform(size=len(words)) < p, strict=True) if not drop]
    return " ".join(kept or [words[rng.integers(len(words))]])


def batches(
    ds: Dataset, tokenizer: Tokenizer, spec: TrainSpec, size: int, length: int, train: bool
) -> Dataset:
    """`ds` preprocessed into model inputs (`size` pixels square, `length` tokens);
    shuffling (`data.shuffle`) and augmentation only for training. Tasks, not an actor pool:
    every epoch re-runs the pipeline, and starting actors would stall each epoch's first batch
    for seconds. A global shuffle draws a new order at each run of the pipeline (each epoch),
    from the job's seed."""
    if train and spec.data.shuffle == "global":
        seed = RandomSeedConfig(seed=spec.seed, reseed_after_execution=True)
        ds = ds.random_shuffle(seed=seed, num_cpus=DATA_CPUS)  # not Ray's 1 CPU: see DATA_CPUS
    return ds.map_batches(
        partial(
            preprocess,
            tokenizer=tokenizer.to_str(),
            size=size,
            length=length,
            augment=train and spec.data.augment,
            word_dropout=spec.data.word_dropout if train else 0.0,
            views=spec.data.text_views if train else ("caption",),
        ),
        batch_format="pyarrow",
        num_cpus=DATA_CPUS,
    )
