"""`weft index`: a curated dataset's images embedded by a registered CLIP version on Ray Data
(the model loaded once per actor), written as a search index tagged with that version.

An index is a folder, local or on S3, at `<output>/<model name>/v<version>`, in the format
that its reader, `weft.serve.search`, defines. faiss was chosen by measuring
(docs/serving.md, "Why faiss"): at 100k vectors its HNSW had the best recall at the same
speed, its index file loads in one call, and exact search over a filtered subset (numpy)
covers what HNSW filters do badly.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray
from pydantic import Field

from weft import cluster, storage
from weft.curate.dataset import content_hash, curated, version_uri
from weft.models import inference
from weft.registry.artifacts import fetch_model
from weft.registry.versions import resolve
from weft.serve import lexical
from weft.serve.lexical import Analyzers
from weft.serve.search import (
    ANN,
    BM25,
    ITEMS,
    MANIFEST,
    Manifest,
    index_location,
    items_schema,
    read_items,
)
from weft.specs import SpecError, StorageSpec, _Spec
from weft.thumbnails import thumbnail

log = logging.getLogger(__name__)
COLUMNS = [
    "id",
    "text",
    "image",
    "image_hash",
    "image_phash",
    "lang",
    "nsfw_score",
    "source_uri",
    "key",
]


class IndexSpec(_Spec):
    """What `weft index` builds from where, and how."""

    data: str = Field(description="A curation output (its `data/` is read), local or s3://.")
    model: str = Field(description="The registered CLIP: name@alias or name/version.")
    output: str = Field(default=".weft/index", description="Indexes go to <output>/<name>/v<n>.")
    actors: int = Field(default=2, ge=1, description="Embedding actors, each holding the model.")
    actor_cpus: float = Field(default=0.5, gt=0, description="CPUs of each embedding actor.")
    batch_size: int = Field(default=256, ge=1)
    thumbnail: int = Field(default=128, ge=16, description="Longest side of stored thumbnails.")
    nsfw_threshold: float = Field(
        default=0.5, ge=0, le=1, description="An item is flagged NSFW from this nsfw_score."
    )
    hnsw_m: int = Field(default=16, ge=4, description="HNSW neighbours per node.")
    ef_construction: int = Field(default=80, ge=8)
    ef_search: int = Field(default=64, ge=8, description="HNSW candidates per query.")
    storage: StorageSpec = StorageSpec()


def build(spec: IndexSpec) -> tuple[Manifest, str]:
    """Embed, index and publish; the manifest and where the index went."""
    start = time.perf_counter()
    version = resolve(spec.model)
    cluster.connect()
    cluster.check_room(
        "actors",
        f"{spec.actors} actors of {spec.actor_cpus:g} CPU",
        spec.actors * spec.actor_cpus,
        "lower actors or actor_cpus",
        free=True,
    )
    out = index_location(spec.output, version, spec.storage)
    data = version_uri(spec.data, spec.storage)  # read as it is now, whatever publishes next
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, _ = fetch_model(version.uri, spec.storage, Path(tmp, "model"))
        clip = inference.load(model_dir)
        if not isinstance(clip, inference.Embedder):
            raise SpecError(f"model: {version} is a {clip.kind} model, not a CLIP")
        folder = Path(tmp, "index")
        _embedded(spec, data, inference.packed(model_dir)).write_parquet(str(folder / ITEMS))
        vectors, captions, langs = _read_items(folder)
        _write_ann(vectors, folder / ANN, spec)
        lexical.write(captions, langs, folder / BM25)
        manifest = Manifest(
            model=version.name,
            version=version.version,
            dim=clip.dim,
            count=len(vectors),
            data=spec.data,
            data_version=data,
            content_hash=content_hash(data, spec.storage),
            trained_on=version.tags.get("dataset_content_hash", ""),
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            hnsw_m=spec.hnsw_m,
            ef_search=spec.ef_search,
            seconds=round(time.perf_counter() - start, 2),
            analyzers=Analyzers.PER_LANGUAGE,
        )
        (folder / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2))
        storage.copy_dir(storage.resolve(str(folder)), out)
    log.info("index done model=%s count=%d uri=%s", version, manifest.count, out.uri)
    return manifest, out.uri


def _embedded(spec: IndexSpec, data: str, model: dict[str, bytes]) -> ray.data.Dataset:
    """The curated image-text pairs of the version `data` with their vectors and
    thumbnails."""
    return curated(data, spec.storage, COLUMNS).map_batches(
        _Embed,
        fn_constructor_kwargs={
            "model": model,
            "thumbnail": spec.thumbnail,
            "nsfw_threshold": spec.nsfw_threshold,
        },
        batch_size=spec.batch_size,
        batch_format="pyarrow",
        concurrency=spec.actors,
        num_cpus=spec.actor_cpus,
    )


class _Embed:
    """A Ray Data actor: the CLIP loaded once, each batch's images embedded."""

    def __init__(self, model: dict[str, bytes], thumbnail: int, nsfw_threshold: float) -> None:
        clip = inference.unpacked(model)
        assert isinstance(clip, inference.Embedder)  # checked on the driver
        self.clip = clip
        self.thumbnail = thumbnail
        self.nsfw_threshold = nsfw_threshold

    def __call__(self, batch: pa.Table) -> pa.Table:
        batch = batch.filter(pc.is_valid(batch["image"]))  # text documents have no image
        data = batch["image"].to_pylist()
        vectors = np.ascontiguousarray(self.clip.embed_images(data), np.float32)
        return pa.table(
            {
                "id": batch["id"],
                "caption": batch["text"],
                "lang": batch["lang"],
                "nsfw_score": batch["nsfw_score"],
                "nsfw": pc.greater_equal(
                    pc.fill_null(batch["nsfw_score"], 0.0), self.nsfw_threshold
                ),
                "source_uri": batch["source_uri"],
                "key": batch["key"],
                "image_hash": batch["image_hash"],
                "image_phash": batch["image_phash"],
                "vector": pa.FixedSizeListArray.from_arrays(vectors.ravel(), vectors.shape[1]),
                "thumbnail": pa.array([thumbnail(d, self.thumbnail) for d in data], pa.binary()),
            },
            schema=items_schema(self.clip.dim),
        )


def _read_items(folder: Path) -> tuple[np.ndarray, list[str], list[str]]:
    table = read_items(folder, ["vector", "caption", "lang"])
    vectors = table["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    dim = table.schema.field("vector").type.list_size
    vectors = vectors.reshape(-1, dim).astype(np.float32)
    return vectors, table["caption"].to_pylist(), table["lang"].to_pylist()


def _write_ann(vectors: np.ndarray, path: Path, spec: IndexSpec) -> None:
    ann = faiss.IndexHNSWFlat(vectors.shape[1], spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    ann.hnsw.efConstruction = spec.ef_construction
    ann.add(vectors)
    faiss.write_index(ann, str(path))
