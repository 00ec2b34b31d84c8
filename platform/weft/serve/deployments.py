"""The model and search deployments behind the ingress.

`LoadedModel` answers with any registered Weft model version through the model library's
inference API (`predict_columns`), batching concurrent requests that share their params into
one call; `ModelServer` is it as a deployment of its own, and the ingress holds one in its
own replica for the small CLIP (`args.clip_in_ingress`). `SearchServer` holds the index of
the served CLIP version and refuses any other; `SafetyChecker` runs the curation's NSFW check
on generated images. Each loads what it serves once, from a version pinned by number.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve

from weft import storage
from weft.models import inference
from weft.models.inference import Columns
from weft.registry.artifacts import fetch_model
from weft.registry.versions import ModelVersion
from weft.safety import bgr, load_detector, verdict
from weft.serve.fusion import Fusion
from weft.serve.search import Filters, Hit, Manifest, SearchIndex, index_location
from weft.serve.spec import Batching
from weft.specs import NsfwSpec, SpecError, StorageSpec

Call = tuple[Columns, dict[str, Any]]


@dataclass(frozen=True)
class Refused:
    """An input the model could not use, and why (`image 2: cannot be decoded ...`)."""

    reason: str


class LoadedModel:
    """One model version in this process, answering columns with params (the pyfunc's
    contract). With `batching`, rows of concurrent calls that share their columns and params
    go through one forward pass (not for seeded generation, whose images depend on their
    batch)."""

    def __init__(self, version: ModelVersion, batching: Batching | None) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            directory, _ = fetch_model(version.uri, StorageSpec(), Path(tmp))
            self.predictor = inference.load(directory)
        self.version = version
        self.batched = batching is not None
        if batching is not None:
            batcher: Any = self._batched  # @serve.batch gives it these setters at run time
            batcher.set_max_batch_size(batching.max_size)
            batcher.set_batch_wait_timeout_s(batching.wait_ms / 1e3)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.version.name,
            "version": self.version.version,
            "kind": self.predictor.kind,
            "params": self.predictor.params,
        }

    async def likelihood(self, images: list[bytes], text: str) -> list[float] | Refused:
        """How well each image explains `text` (a captioner's; see weft.serve.rerank), or
        why the input was refused."""
        writer = self.predictor
        if not isinstance(writer, inference.CaptionWriter):
            return Refused(f"{self.version} is a {writer.kind} model, not a captioner")
        try:
            return (await asyncio.to_thread(writer.likelihood, images, text)).tolist()
        except ValueError as err:
            return Refused(str(err))

    async def predict(self, columns: Columns, params: dict[str, Any]) -> Columns | Refused:
        """The answer for each row of `columns`, or why the input was refused (returned, not
        raised: a bad input is the caller's 4xx, not the replica's error)."""
        if self.batched:
            answer = await self._batched((columns, params))
        else:
            answer = await asyncio.to_thread(self._alone, (columns, params))
        return Refused(str(answer)) if isinstance(answer, Exception) else answer

    @serve.batch(max_batch_size=256)  # each replica sets its own size and wait
    async def _batched(self, calls: list[Call]) -> list[Columns | Exception]:
        return await asyncio.to_thread(self._answer, calls)

    def _answer(self, calls: list[Call]) -> list[Columns | Exception]:
        """Each call's answer, or its error: calls alike are answered together, and if that
        fails on a bad input, one by one, so the error stays with the call that caused it."""
        groups: dict[str, list[int]] = {}
        for i, (columns, params) in enumerate(calls):
            groups.setdefault(repr((sorted(columns), sorted(params.items()))), []).append(i)
        out: list[Columns | Exception] = [{} for _ in calls]
        for members in groups.values():
            try:
                answers = self._together([calls[i] for i in members])
            except ValueError:
                answers = [self._alone(calls[i]) for i in members]
            for i, answer in zip(members, answers, strict=True):
                out[i] = answer
        return out

    def _together(self, calls: list[Call]) -> list[Columns | Exception]:
        names, params = list(calls[0][0]), calls[0][1]
        merged = {n: [v for columns, _ in calls for v in columns[n]] for n in names}
        answer = self.predictor.predict_columns(merged, params)
        out: list[Columns | Exception] = []
        start = 0
        for columns, _ in calls:
            size = len(next(iter(columns.values()), []))
            out.append({n: values[start : start + size] for n, values in answer.items()})
            start += size
        return out

    def _alone(self, call: Call) -> Columns | Exception:
        try:
            return self.predictor.predict_columns(*call)
        except ValueError as err:
            return err


ModelServer = serve.deployment(max_ongoing_requests=32)(LoadedModel)


@serve.deployment(name="search", max_ongoing_requests=64)
class SearchServer:
    """The index of one CLIP version; a query arrives as that CLIP's vector."""

    def __init__(self, root: str, version: ModelVersion, spec: StorageSpec | None = None) -> None:
        location = index_location(root, version, spec or StorageSpec())
        # The replica's own copy, kept as long as it lives: the BM25 index reads its files
        # while it serves (removing them under it failed a start, "Directory not empty").
        self.folder = tempfile.TemporaryDirectory(prefix="weft-index-", ignore_cleanup_errors=True)
        try:
            storage.copy_dir(location, storage.resolve(self.folder.name))
        except storage.StorageError as err:
            if not err.missing:  # the store is down or refuses
                raise SpecError(f"index: cannot read {err}") from None
            raise SpecError(
                f"index: no index of {version} under {root}: run "
                f"`weft index <curated data> --model {version.name}/{version.version}`"
            ) from None
        self.index = SearchIndex(Path(self.folder.name))
        self.uri = location.uri
        made_by = (self.index.manifest.model, self.index.manifest.version)
        if made_by != (version.name, version.version):
            raise SpecError(
                f"index: {location.uri} was built with {made_by[0]} v{made_by[1]}, "
                f"not {version}: its vectors would not match the queries"
            )

    def describe(self) -> dict[str, Any]:
        m = self.index.manifest
        return {
            "model": m.model,
            "version": m.version,
            "count": m.count,
            "data": m.data,
            "data_version": m.data_version or m.data,
            "built_at": m.built_at,
            "uri": self.uri,
        }

    def item(self, item: str) -> tuple[dict[str, Any] | None, Manifest, str]:
        """The index's row of `item` (None if it holds none), its manifest and where it is."""
        return self.index.item(item), self.index.manifest, self.uri

    def search(
        self,
        vector: np.ndarray,
        text: str | None,
        k: int,
        filters: Filters,
        hybrid: float,
        fusion: Fusion,
    ) -> list[Hit]:
        return self.index.search(vector, text, k, filters, hybrid, fusion)

    def thumbnail(self, item: str) -> bytes | None:
        return self.index.thumbnail(item)

    def thumbnails(self, items: list[str]) -> list[bytes | None]:
        return [self.index.thumbnail(item) for item in items]


@serve.deployment(name="safety", max_ongoing_requests=16)
class SafetyChecker:
    """The curation's NSFW check (NudeNet, the same labels and threshold) on each generated
    image before it is returned; the detector loads once per replica."""

    def __init__(self, spec: NsfwSpec) -> None:
        self.spec = spec
        self.detector = load_detector()

    def check(self, image: bytes) -> tuple[bool, float, list[str]]:
        """(unsafe, score, labels found) of an encoded image."""
        return verdict(self.detector.detect(bgr(image)), self.spec)
