"""The curation pipeline on Ray Data (with `runner.py`, the only Ray-aware curate modules).

read → validate → hash → MinHash signatures (streamed, then materialised once) → exact and
near duplicates (one hash-partitioned grouping; verified and clustered in the driver) →
removal of the duplicates, language ID and NSFW (streamed, materialised once) → Parquet out
(`data/`, `removed/`, `quarantine/`, or `dry-run/decisions/`) → report, checked and logged to
MLflow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import ray
from ray.data import Dataset
from ray.data.expressions import col

from weft import cluster, storage
from weft.curate.dedup import (
    EDGES,
    KEYS,
    MarkDuplicates,
    exact_duplicates,
    near_edges,
    pairs_in_block,
    rows_with_ids,
)
from weft.curate.exact import ContentHash, exact_keys
from weft.curate.langid import LanguageID
from weft.curate.minhash import Signatures, band_keys, bands_and_rows, clusters
from weft.curate.nsfw import NsfwFilter
from weft.curate.read import STAGE as STAGE_READ
from weft.curate.read import SUFFIXES, read_file
from weft.curate.report import Counts, FileError, Report, StageTiming, summarise_block
from weft.curate.runner import StageClock, apply, timed
from weft.curate.schema import (
    CURATED_COLUMNS,
    DECISION_COLUMNS,
    KEPT,
    QUARANTINED,
    REMOVED,
    ROW_SCHEMA,
)
from weft.curate.validate import Validate
from weft.sources import ItemSource
from weft.specs import CurateSpec, InputSpec

log = logging.getLogger(__name__)
# Rows of the narrow (id, source_uri, key, dedup_key) table per hash partition (~50 MB).
ROWS_PER_PARTITION = 500_000
OUTPUT_PARTS: dict[str, str | None] = {"data": KEPT, "removed": REMOVED, "quarantine": QUARANTINED}
# A dry run writes every row's decision (no image bytes) instead of the curated output.
DRY_RUN_PARTS: dict[str, str | None] = {"decisions": None}


InputFile = tuple[storage.Location, InputSpec]


def list_inputs(spec: CurateSpec) -> list[InputFile]:
    """Every input file of the spec with its input's settings; fails fast, naming the URI."""
    return [
        (f, i)
        for i in spec.inputs
        for f in storage.list_files(storage.resolve(i.uri, spec.storage), SUFFIXES[i.format])
    ]


def input_source(files: list[InputFile], batch_size: int, clock: Any) -> ItemSource[InputFile]:
    """The input files as a Ray Data source, each read timed as the read stage."""
    return ItemSource("InputFiles", files, partial(_timed_read, batch_size=batch_size, clock=clock))


def _timed_read(file: InputFile, batch_size: int, clock: Any) -> Iterator[pa.Table]:
    loc, spec = file
    yield from timed(STAGE_READ, partial(read_file, loc, spec, batch_size), clock)


def _partitions(rows: int) -> int:
    return -(-rows // ROWS_PER_PARTITION) or 1


def _dedup_keys(batch: pa.Table, spec: CurateSpec) -> pa.Table:
    """The narrow KEYS rows of a batch: exact content keys and LSH band keys, as enabled."""
    parts = [KEYS.empty_table()]
    if spec.exact_dedup.enabled:
        parts.append(exact_keys(batch, spec.exact_dedup.match))
    if spec.near_dedup.enabled:
        parts.append(band_keys(batch, spec.near_dedup))
    return pa.concat_tables(parts)


def _duplicates(rows: Dataset, spec: CurateSpec) -> pa.Table:
    """Exact and near duplicates of `rows` as one DUPLICATES table.

    One hash-partitioned grouping finds the exact groups and the LSH candidate edges. The
    edges, and the signatures (and texts, under `verify: exact`) of the rows they touch,
    come to the driver to be verified and clustered: bounded by the number of candidates.
    """
    near = spec.near_dedup
    per_row = int(spec.exact_dedup.enabled) + (bands_and_rows(near)[0] if near.enabled else 0)
    keyed = rows.map_batches(partial(_dedup_keys, spec=spec), batch_format="pyarrow")
    groups = keyed.repartition(_partitions(rows.count() * per_row), keys=["bucket"])
    edges = _gather(
        groups.map_batches(pairs_in_block, batch_size=None, batch_format="pyarrow"), EDGES
    )
    exact = exact_duplicates(edges, spec.exact_dedup.match)
    candidates = near_edges(edges, exact["id"].combine_chunks())
    if candidates.num_rows == 0:
        return exact
    ends = pc.unique(
        pa.concat_arrays([candidates["a"].combine_chunks(), candidates["b"].combine_chunks()])
    )
    columns = ["id", "source_uri", "key", "minhash", "image_phash"]
    if near.verify == "exact":
        columns.append("text")
    signed = rows.map_batches(
        partial(rows_with_ids, ids=ends, columns=columns), batch_format="pyarrow"
    )
    ends_schema = pa.schema([ROW_SCHEMA.field(c) for c in columns])
    found = clusters(candidates, _gather(signed, ends_schema), near)
    log.info(
        "curate dedup exact=%d candidates=%d near=%d",
        exact.num_rows,
        candidates.num_rows,
        found.num_rows,
    )
    return pa.concat_tables([exact, found])


def _gather(ds: Dataset, schema: pa.Schema) -> pa.Table:
    """Bring a small dataset (duplicates, candidate edges) into the driver as one table."""
    return pa.concat_tables([schema.empty_table(), *ray.get(ds.to_arrow_refs())])


def _select(batch: pa.Table, status: str | None, columns: list[str]) -> pa.Table:
    """The rows with `status` (every row if None), in `columns`."""
    if status is not None:
        batch = batch.filter(pc.equal(batch["status"], status))
    return batch.select(columns)


def _count_rows(loc: storage.Location) -> int:
    with storage.storage_errors(loc.uri):
        try:
            return pads.dataset(loc.path, filesystem=loc.fs, format="parquet").count_rows()
        except FileNotFoundError:
            return 0


def spec_hash(spec: CurateSpec) -> str:
    body = json.dumps(spec.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


@contextmanager
def _phase(phases: dict[str, float], name: str) -> Iterator[None]:
    """Time a phase of the run into `phases` and log it as a structured line."""
    start = time.perf_counter()
    yield
    phases[name] = time.perf_counter() - start
    log.info("curate phase=%s seconds=%.2f", name.replace(" ", "_"), phases[name])


def curate(spec: CurateSpec, dry_run: bool = False) -> Report:
    """Run a curation spec end to end and return its checked report (also written and logged).

    A dry run runs every stage but writes, under `<output>/dry-run/`, only the report and
    every row's decision and scores, so thresholds can be tuned before curating for real.
    """
    started = time.perf_counter()
    phases: dict[str, float] = {}
    out = storage.resolve(spec.output, spec.storage)
    if dry_run:
        out = out.join("dry-run")
    files = list_inputs(spec)
    storage.ensure_writable(out)
    log.info("curate name=%s files=%d output=%s", spec.name, len(files), out.uri)
    cluster.connect()
    clock = StageClock.remote()  # type: ignore[attr-defined]

    with _phase(phases, "ingest"):
        # One read task per file; the row stages fuse into it and take whole blocks.
        ds = ray.data.read_datasource(
            input_source(files, spec.batch_size, clock), override_num_blocks=len(files)
        )
        ds = apply(ds, Validate, (spec.validate_,), clock)
        ds = apply(ds, ContentHash, (), clock)
        if spec.near_dedup.enabled:
            ds = apply(ds, Signatures, (spec.near_dedup,), clock)
        rows: Dataset = ds.materialize()

    with _phase(phases, "dedup"):
        duplicates = (
            _duplicates(rows, spec) if spec.exact_dedup.enabled or spec.near_dedup.enabled else None
        )

    with _phase(phases, "filters"):
        # Removal, language ID and NSFW stream through the rows once, then materialise.
        if duplicates is not None:
            rows = apply(rows, MarkDuplicates, (duplicates,), clock)
        if spec.langid.enabled:
            rows = apply(rows, LanguageID, (spec.langid,), clock)
        if spec.nsfw.enabled:
            rows = apply(rows, NsfwFilter, (spec.nsfw,), clock, actors=spec.nsfw.actors)
        rows = rows.materialize()

    with _phase(phases, "write"):
        summaries = rows.map_batches(summarise_block, batch_size=None, batch_format="pyarrow")
        counts = Counts.from_summaries(ray.get(summaries.to_arrow_refs()))
        written = {}
        for part, status in (DRY_RUN_PARTS if dry_run else OUTPUT_PARTS).items():
            loc = out.join(part)
            storage.delete_dir(loc)
            columns = CURATED_COLUMNS if status == KEPT else DECISION_COLUMNS
            rows.map_batches(
                partial(_select, status=status, columns=columns), batch_format="pyarrow"
            ).write_parquet(loc.path, filesystem=loc.fs, min_rows_per_file=spec.rows_per_file)
            written[part] = _count_rows(loc)

    file_errors = [
        FileError(uri=r["source_uri"], reason=r["reason"], detail=r["detail"])
        for r in rows.filter(expr=col("key") == "")
        .select_columns(["source_uri", "reason", "detail"])
        .take_all()
    ]
    totals = ray.get(clock.read.remote())
    report = Report(
        name=spec.name,
        spec_hash=spec_hash(spec),
        inputs=[storage.resolve(i.uri, spec.storage).uri for i in spec.inputs],
        output=out.uri,
        files_read=len(files),
        file_errors=file_errors,
        counts=counts,
        written=written,
        stages=[StageTiming(stage=name, rows=int(n), seconds=s) for name, (n, s) in totals.items()],
        phases=phases,
        seconds=time.perf_counter() - started,
        dry_run=dry_run,
    )
    report.check()
    log.info(
        "curate done name=%s input=%d kept=%d removed=%d quarantined=%d content_hash=%s",
        spec.name,
        counts.input_rows,
        counts.kept,
        counts.total(REMOVED),
        counts.total(QUARANTINED),
        counts.content_hash,
    )
    if spec.mlflow.enabled:
        _log_to_mlflow(spec, report)
    storage.write_bytes(out.join("report.json"), report.model_dump_json(indent=2).encode())
    storage.write_bytes(out.join("report.md"), report.to_markdown().encode())
    return report


def _log_to_mlflow(spec: CurateSpec, report: Report) -> None:
    """One MLflow run per curation: the spec, the counts, and the report as artifacts."""
    import mlflow

    from weft.tracking import use_experiment

    c = report.counts
    with mlflow.start_run(
        experiment_id=use_experiment(spec.mlflow.experiment), run_name=spec.name
    ) as run:
        report.mlflow_run_id = run.info.run_id
        mlflow.set_tags(
            {
                "weft.dry_run": str(report.dry_run).lower(),
                "weft.stage": "curate",
                "weft.dataset.content_hash": c.content_hash,
                "weft.dataset.uri": report.output,
                "weft.spec_hash": report.spec_hash,
            }
        )
        mlflow.log_params(
            {
                "inputs": ", ".join(report.inputs),
                "output": report.output,
                "exact_dedup.match": spec.exact_dedup.match,
                "exact_dedup.enabled": spec.exact_dedup.enabled,
            }
        )
        metrics = {
            "rows.input": c.input_rows,
            "rows.kept": c.kept,
            "rows.removed": c.total(REMOVED),
            "rows.quarantined": c.total(QUARANTINED),
            "files.read": report.files_read,
            "files.errors": len(report.file_errors),
            "seconds": report.seconds,
        }
        metrics |= {f"stage.{s.stage}.rows_per_s": s.rows_per_s for s in report.stages}
        mlflow.log_metrics(metrics)
        mlflow.log_dict(spec.model_dump(mode="json", by_alias=True), "spec.yaml")
        mlflow.log_text(report.model_dump_json(indent=2), "report.json")
        mlflow.log_text(report.to_markdown(), "report.md")
