"""The lineage of an indexed item: from the answer back to its source object.

    source object → curation's decisions → curated dataset version (and its report) →
    the training run → the registered version (and its aliases now) → the index version

Each link is read from where the stage that made it recorded it: the index's manifest and
row (`weft.serve.search`), the curated dataset's row and report (`weft.curate.dataset`), the
registry and the run (`weft.registry.versions`). A link that cannot be read (a curated
version since replaced, a run deleted) is left out and named in `gaps`, never guessed.
`GET /v1/items/{id}/lineage` and `weft lineage <id>` both answer with `trace`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, Field

from weft import storage
from weft.curate import dataset
from weft.registry.versions import resolve, training_run
from weft.serve.search import Manifest
from weft.specs import SpecError, StorageSpec


class Source(BaseModel):
    uri: str = Field(description="The input file (object) the record was read from.")
    key: str = Field(description="Its key there: a shard member's name, a row's key.")
    ordinal: int | None = Field(description="Its number among the file's records, from 0.")
    text_hash: str | None
    image_hash: str | None


class Duplicate(BaseModel):
    id: str
    source_uri: str
    key: str
    stage: str
    similarity: float | None


class Curation(BaseModel):
    status: str = Field(description="kept, removed or quarantined.")
    lang: str | None
    lang_score: float | None
    nsfw_score: float | None
    nsfw_labels: list[str] | None
    image: str | None = Field(description="format width x height, as curation decoded it.")
    duplicates: list[Duplicate] = Field(
        default=[], description="Rows removed as its duplicates, most similar first."
    )


class CuratedDataset(BaseModel):
    uri: str
    version: str = Field(description="The published version the index read.")
    current: bool = Field(description="Whether that version is still the one published.")
    name: str
    run: str
    content_hash: str
    counts: dict[str, int] = Field(description="input, kept, removed, quarantined rows.")
    curation_mlflow_run: str | None


class Training(BaseModel):
    run_id: str
    name: str
    experiment: str
    status: str
    started: str
    dataset_uri: str
    dataset_content_hash: str
    same_dataset: bool = Field(description="Trained on the very dataset the index holds.")
    datasets: list[str] = Field(description="The run's MLflow dataset inputs.")
    job: str
    user: str
    git_commit: str


class Registered(BaseModel):
    name: str
    version: str
    aliases: list[str] = Field(description="The aliases that name this version now.")
    gate: str
    run_id: str


class IndexVersion(BaseModel):
    uri: str
    model: str
    version: str
    count: int
    built_at: str


class Lineage(BaseModel):
    item: str
    caption: str
    source: Source
    curation: Curation | None
    dataset: CuratedDataset | None
    training: Training | None
    model: Registered | None
    index: IndexVersion
    gaps: list[str] = Field(description="Links that could not be read, and why.")


def trace(item: dict[str, Any], manifest: Manifest, index_uri: str) -> Lineage:
    """The whole chain of the index row `item` (an index's `item()`), from its source
    object to the index version that holds it."""
    gaps: list[str] = []
    data = manifest.data_version or manifest.data
    row, report = _curated(item["id"], data, gaps)
    model, training = _model(manifest, gaps)
    curated = None
    if report is not None:
        counts = report.get("counts", {})
        curated = CuratedDataset(
            uri=manifest.data,
            version=data,
            current=_current(manifest.data) == data,
            name=report.get("name", ""),
            run=report.get("run", ""),
            content_hash=counts.get("content_hash", ""),
            counts={
                "input": counts.get("input_rows", 0),
                "kept": counts.get("kept", 0),
                "removed": _total(counts.get("removed", {})),
                "quarantined": _total(counts.get("quarantined", {})),
            },
            curation_mlflow_run=report.get("mlflow_run_id"),
        )
    if training is not None and curated is not None:
        training.same_dataset = training.dataset_content_hash == curated.content_hash
    origin = row or item  # the index's row holds no ordinal or text hash: curation's does
    return Lineage(
        item=item["id"],
        caption=item.get("caption") or "",
        source=Source(
            uri=origin["source_uri"],
            key=origin["key"],
            ordinal=origin.get("ordinal"),
            text_hash=origin.get("text_hash"),
            image_hash=origin.get("image_hash"),
        ),
        curation=None if row is None else _curation(row),
        dataset=curated,
        training=training,
        model=model,
        index=IndexVersion(
            uri=index_uri,
            model=manifest.model,
            version=manifest.version,
            count=manifest.count,
            built_at=manifest.built_at,
        ),
        gaps=gaps,
    )


def _total(by_stage: dict[str, dict[str, int]]) -> int:
    return sum(n for reasons in by_stage.values() for n in reasons.values())


def _current(uri: str) -> str | None:
    try:
        return dataset.version_uri(uri, StorageSpec())
    except storage.StorageError:
        return None


def _curated(
    item: str, data: str, gaps: list[str]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The curated row of `item` and the report of the version `data`, where readable."""
    try:
        report = dataset.report(data, StorageSpec())
        row = dataset.row(data, StorageSpec(), item)
    except (SpecError, storage.StorageError) as err:
        gaps.append(f"curation: the curated version the index read cannot be read ({err})")
        return None, None
    if row is None:
        gaps.append(f"curation: {data} holds no row {item}")
    return row, report


def _curation(row: dict[str, Any]) -> Curation:
    image = None
    if row.get("image_format"):
        image = f"{row['image_format']} {row['image_width']} x {row['image_height']}"
    return Curation(
        status=row["status"],
        lang=row.get("lang"),
        lang_score=row.get("lang_score"),
        nsfw_score=row.get("nsfw_score"),
        nsfw_labels=row.get("nsfw_labels"),
        image=image,
        duplicates=[Duplicate(**d) for d in row.get("duplicates", [])],
    )


def _model(manifest: Manifest, gaps: list[str]) -> tuple[Registered | None, Training | None]:
    """The registered version the index's vectors came from, and the run that trained it."""
    try:
        version = resolve(f"{manifest.model}/{manifest.version}")
    except SpecError as err:
        gaps.append(f"registry: {err}")
        return None, None
    model = Registered(
        name=version.name,
        version=version.version,
        aliases=sorted(version.aliases),
        gate=version.gate,
        run_id=version.run_id,
    )
    if not version.run_id:
        gaps.append(f"training: {version} records no run")
        return model, None
    try:
        run = training_run(version.run_id)
    except SpecError as err:
        gaps.append(f"training: {err}")
        return model, None
    fields = asdict(run) | {"datasets": list(run.datasets), "same_dataset": False}
    return model, Training(**fields)
