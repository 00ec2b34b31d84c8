"""The curation pipeline on Ray Data (with `runner.py` and `sink.py`, the only Ray-aware
curate modules).

read → validate → hash → MinHash signatures (streamed, then materialised: the run's only
copy of the rows) → exact and near duplicates (one hash-partitioned grouping; verified and
clustered in the driver) → removal of the duplicates, language ID and NSFW, streamed into
one write of every part of a new version of the output (`data/`, `removed/`, `quarantine/`,
or `dry-run/decisions/`, `sink.py`) → report, checked and logged to MLflow → the version
published whole (`publish.py`).
"""

from __future__ import annotations

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

from weft import cluster, metrics, storage
from weft.curate import publish
from weft.curate.dedup import (
    EDGES,
    KEYS,
    MarkDuplicates,
    exact_duplicates,
    first_copies,
    near_edges,
    pairs_in_block,
    partition_keys,
    rows_with_ids,
)
from weft.curate.exact import ContentHash, exact_keys
from weft.curate.langid import LanguageID
from weft.curate.minhash import (
    SCORED,
    SCORED_COLUMNS,
    Signatures,
    band_keys,
    bands_and_rows,
    clusters,
    scored,
)
from weft.curate.nsfw import NsfwFilter
from weft.curate.read import STAGE as STAGE_READ
from weft.curate.read import SUFFIXES, read_file
from weft.curate.report import Counts, FileError, Report, StageTiming
from weft.curate.runner import Clock, apply, one_operator, tell, timed
from weft.curate.schema import (
    CURATED_COLUMNS,
    DECISION_COLUMNS,
    KEPT,
    QUARANTINED,
    REMOVED,
    ROW_SCHEMA,
)
from weft.curate.sink import Part, PartsSink
from weft.curate.spec import CurateSpec, InputSpec, NearDedupSpec
from weft.curate.validate import Validate
from weft.sources import ItemSource
from weft.specs import SpecError, spec_hash

log = logging.getLogger(__name__)
# Rows of the narrow (id, source_uri, key, dedup_key) table per hash partition (~50 MB).
ROWS_PER_PARTITION = 500_000
# Input rows per map task of that grouping (and of gathering the candidates' rows).
ROWS_PER_SPLIT = 50_000
# Candidate pairs per verification task: their ends' texts are shingled in the task.
PAIRS_PER_TASK = 20_000
NAMES = pa.schema([ROW_SCHEMA.field(c) for c in ("id", "source_uri", "key")])
OUTPUT_PARTS: dict[str, str | None] = {"data": KEPT, "removed": REMOVED, "quarantine": QUARANTINED}
# A dry run writes every row's decision (no image bytes) instead of the curated output.
DRY_RUN_PARTS: dict[str, str | None] = {"decisions": None}
REPORT_FILES = ("report.json", "report.md")


InputFile = tuple[storage.Location, InputSpec]


def list_inputs(spec: CurateSpec) -> list[InputFile]:
    """Every input file of the spec with its input's settings; fails fast, naming the URI.
    A file two inputs match is refused: read twice, its records would share their ids."""
    files = [
        (f, i)
        for i in spec.inputs
        for f in storage.list_files(storage.resolve(i.uri, spec.storage), SUFFIXES[i.format])
    ]
    first: dict[str, str] = {}
    for f, i in files:
        if f.uri in first:
            raise SpecError(
                f"{f.uri} is in input {first[f.uri]} and in input {i.uri}: a file is read once"
            )
        first[f.uri] = i.uri
    return files


def input_source(files: list[InputFile], batch_size: int, clock: Any) -> ItemSource[InputFile]:
    """The input files as a Ray Data source, each read timed as the read stage and its
    repeated keys, if any, told to the clock."""
    return ItemSource("InputFiles", files, partial(_timed_read, batch_size=batch_size, clock=clock))


def _timed_read(file: InputFile, batch_size: int, clock: Any) -> Iterator[pa.Table]:
    loc, spec = file
    repeats = partial(tell, clock, "repeated_keys", loc.uri)
    yield from timed(STAGE_READ, partial(read_file, loc, spec, batch_size, repeats), clock)


def _partitions(rows: int) -> int:
    return -(-rows // ROWS_PER_PARTITION) or 1


def _dedup_keys(batch: pa.Table, spec: CurateSpec) -> pa.Table:
    """The narrow KEYS rows of a batch: exact content keys and LSH band keys, as enabled.
    Rows that exact dedup removes whatever else happens get no band keys (`first_copies`)."""
    parts = [KEYS.empty_table()]
    if spec.exact_dedup.enabled:
        parts.append(exact_keys(batch, spec.exact_dedup.match))
        batch = first_copies(batch, parts[-1])
    if spec.near_dedup.enabled:
        parts.append(band_keys(batch, spec.near_dedup))
    return pa.concat_tables(parts)


def _duplicates(rows: Dataset, spec: CurateSpec) -> pa.Table:
    """Exact and near duplicates of `rows` as one DUPLICATES table.

    One hash-partitioned grouping finds the exact groups and the LSH candidate pairs; the
    pairs are verified in tasks beside the rows they touch, and clustered in the driver,
    which holds ids only: bounded by the number of candidates, not by their texts.
    """
    near = spec.near_dedup
    per_row = int(spec.exact_dedup.enabled) + (bands_and_rows(near)[0] if near.enabled else 0)
    blocks = _splits(rows)
    edges = _group(blocks, spec, _partitions(rows.count() * per_row))
    exact = exact_duplicates(edges, spec.exact_dedup.match)
    candidates = near_edges(edges, exact["id"].combine_chunks())
    if candidates.num_rows == 0:
        return exact
    ends = pc.unique(
        pa.concat_arrays([candidates["a"].combine_chunks(), candidates["b"].combine_chunks()])
    )
    columns = SCORED_COLUMNS + (["text"] if near.verify == "exact" else [])
    gather = ray.remote(_ends).options(num_returns=2)
    refs = [gather.remote(ends, columns, *split) for split in blocks]
    names = pa.concat_tables([NAMES.empty_table(), *ray.get([n for n, _ in refs])])
    score = partial(_scored, rows=[r for _, r in refs], spec=near)
    found = clusters(candidates, names, score, near)
    log.info(
        "curate dedup exact=%d candidates=%d near=%d",
        exact.num_rows,
        candidates.num_rows,
        found.num_rows,
    )
    return pa.concat_tables([exact, found])


def _ends(ids: pa.Array, columns: list[str], *blocks: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The rows of some row blocks whose id is in `ids`: their NAMES, for the driver, and
    their `columns`, which stay in the object store for `_scored`."""
    wanted = list(dict.fromkeys([*NAMES.names, *columns]))
    rows = pa.concat_tables([rows_with_ids(b, ids, wanted) for b in blocks])
    return rows.select(NAMES.names), rows.select(columns)


def _scored(pairs: pa.Table, rows: list[Any], spec: NearDedupSpec) -> pa.Table:
    """`minhash.scored` of the pairs in tasks of up to PAIRS_PER_TASK pairs, at least one per
    CPU, each given every end's row (references to the object store, read in place)."""
    tasks = max(_cpus(), -(-pairs.num_rows // PAIRS_PER_TASK))
    size = -(-pairs.num_rows // tasks) or 1
    score = ray.remote(_scored_pairs)
    chunks = [pairs.slice(lo, size) for lo in range(0, pairs.num_rows, size)]
    return pa.concat_tables(
        [SCORED.empty_table(), *ray.get([score.remote(c, spec, *rows) for c in chunks])]
    )


def _scored_pairs(pairs: pa.Table, spec: NearDedupSpec, *rows: pa.Table) -> pa.Table:
    return scored(pairs, pa.concat_tables(rows), spec)


def _cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))


def _splits(rows: Dataset) -> list[list[Any]]:
    """The materialised rows' blocks (references) in groups of about ROWS_PER_SPLIT rows, at
    least one group per CPU of the cluster while there are blocks for it."""
    blocks = rows.to_arrow_refs()
    n = min(len(blocks), max(_cpus(), -(-rows.count() // ROWS_PER_SPLIT)))
    return [blocks[i::n] for i in range(n)]


def _group(blocks: list[list[Any]], spec: CurateSpec, parts: int) -> pa.Table:
    """The EDGES of every group of the rows' KEYS: the keys of each group of blocks split
    into `parts` hash partitions by `bucket`, and each partition turned into edges.

    A hash shuffle in plain Ray tasks, on the cluster's default workers, which the ingest
    has started. Ray Data's (`repartition(keys=...)`) runs its map and its reduce side in
    worker pools of their own: a run started fresh worker processes for them, and Ray then
    reaped the idle default workers, so the stages after it started fresh ones again
    (measured: 5 worker starts, seconds on a 2-core machine). The map side's outputs, the
    narrow KEYS rows, stay in the object store; the driver holds references and the edges.
    """
    split = ray.remote(_keys_in_parts).options(num_returns=parts)
    mapped = [split.remote(spec, parts, *group) for group in blocks]
    pairs = ray.remote(_pairs_in_parts)
    edges = [pairs.remote(*[m if parts == 1 else m[p] for m in mapped]) for p in range(parts)]
    return pa.concat_tables([EDGES.empty_table(), *ray.get(edges)])


def _keys_in_parts(spec: CurateSpec, parts: int, *blocks: pa.Table) -> pa.Table | list[pa.Table]:
    """Map side of the grouping: the KEYS rows of some row blocks in `parts` hash partitions
    (for one partition its table, not a list: a task's single return value)."""
    keys = partition_keys(pa.concat_tables([_dedup_keys(b, spec) for b in blocks]), parts)
    return keys[0] if parts == 1 else keys


def _pairs_in_parts(*parts: pa.Table) -> pa.Table:
    """Reduce side: the EDGES of one partition, from its share of every map task's keys."""
    return pairs_in_block(pa.concat_tables([KEYS.empty_table(), *parts]))


def _count_rows(loc: storage.Location) -> int:
    with storage.storage_errors(loc.uri):
        try:
            return pads.dataset(loc.path, filesystem=loc.fs, format="parquet").count_rows()
        except FileNotFoundError:
            return 0


@contextmanager
def _phase(phases: dict[str, float], name: str) -> Iterator[None]:
    """Time a phase of the run into `phases` and log it as a structured line."""
    start = time.perf_counter()
    yield
    phases[name] = time.perf_counter() - start
    log.info("curate phase=%s seconds=%.2f", name.replace(" ", "_"), phases[name])


def output_location(spec: CurateSpec, dry_run: bool = False) -> storage.Location:
    """Where a run publishes: the spec's output, or for a dry run its `dry-run/` folder."""
    out = storage.resolve(spec.output, spec.storage)
    return out.join("dry-run") if dry_run else out


def check_locations(spec: CurateSpec) -> None:
    """Refuse an output that overlaps an input, before anything is read or written: the run
    would read its own output back in, or replace (delete) its input."""
    out = storage.resolve(spec.output, spec.storage)
    for i in spec.inputs:
        loc = storage.resolve(i.uri, spec.storage)
        if storage.overlap(loc, out):
            raise SpecError(
                f"output {out.uri} and input {loc.uri} overlap (one lies inside the other): "
                "the output must be outside every input"
            )


def curate(spec: CurateSpec, dry_run: bool = False) -> Report:
    """Run a curation spec end to end; publish its output and return its checked report.

    The run writes a new version of the output and publishes it whole at its end
    (`publish.py`): until then readers see the previous output. A dry run runs every stage
    but publishes, under `<output>/dry-run/`, only the report and every row's decision and
    scores, so thresholds can be tuned before curating for real.
    """
    started = time.perf_counter()
    check_locations(spec)
    files = list_inputs(spec)
    run = publish.begin(output_location(spec, dry_run))
    log.info("curate name=%s files=%d output=%s run=%s", spec.name, len(files), run.out.uri, run.id)
    cluster.connect()
    clock = Clock(f"weft-stage-clock-{run.id}")
    phases: dict[str, float] = {}
    with _phase(phases, "ingest"):
        rows = _ingest(files, spec, clock.actor)
    with _phase(phases, "dedup"):
        duplicates = (
            _duplicates(rows, spec) if spec.exact_dedup.enabled or spec.near_dedup.enabled else None
        )
    with _phase(phases, "filters and write"):
        counts, written, file_errors = _filter_and_write(
            rows, duplicates, run.version, spec, dry_run, clock.actor
        )
    tally = clock.read()
    report = Report(
        name=spec.name,
        run=run.id,
        spec_hash=spec_hash(spec),
        inputs=[storage.resolve(i.uri, spec.storage).uri for i in spec.inputs],
        output=run.out.uri,
        files_read=len(files),
        file_errors=file_errors,
        repeated_keys=tally.repeated_keys,
        counts=counts,
        written=written,
        stages=[
            StageTiming(stage=name, rows=int(n), seconds=s) for name, (n, s) in tally.totals.items()
        ],
        stages_partial=not tally.whole,
        phases=phases,
        seconds=time.perf_counter() - started,
        dry_run=dry_run,
    )
    report.check()
    _log_done(spec, counts)
    if spec.mlflow.enabled:
        _log_to_mlflow(spec, report)
    _write_report(report, run.version)
    publish.commit(run, [*written, *REPORT_FILES])
    return report


def _ingest(files: list[InputFile], spec: CurateSpec, clock: Any) -> Dataset:
    """Every input row read, validated, hashed and (for near dedup) signed; materialised.
    The store failing under a read fails the run with a StorageError naming the file."""
    # One read task per file; the row stages fuse into it and take whole blocks.
    with one_operator():
        ds = ray.data.read_datasource(
            input_source(files, spec.batch_size, clock), override_num_blocks=len(files)
        )
        ds = apply(ds, Validate, (spec.validate_,), clock)
        ds = apply(ds, ContentHash, (), clock)
        if spec.near_dedup.enabled:
            ds = apply(ds, Signatures, (spec.near_dedup,), clock)
    try:
        return ds.materialize()
    except storage.StorageError as err:
        # Ray raises a task's error as itself wrapped in the task's traceback, with Ray Data's
        # retry advice after its message: `cause`'s first line is the error's own message.
        raise storage.StorageError(str(getattr(err, "cause", err)).splitlines()[0]) from err


def _filter_and_write(
    rows: Dataset,
    duplicates: pa.Table | None,
    version: storage.Location,
    spec: CurateSpec,
    dry_run: bool,
    clock: Any,
) -> tuple[Counts, dict[str, int], list[FileError]]:
    """Removal of the duplicates, language ID and NSFW, streamed into one write of every part
    of the output (a dry run's decisions) into the run's version: the counts of every
    decision, the rows each part holds on disk, and the input files not read whole."""
    if duplicates is not None:
        rows = apply(rows, MarkDuplicates, (duplicates,), clock)
    if spec.langid.enabled:
        rows = apply(rows, LanguageID, (spec.langid,), clock)
    if spec.nsfw.enabled:
        rows = apply(rows, NsfwFilter, (spec.nsfw,), clock, actors=spec.nsfw.actors)
    parts = [
        Part(
            name,
            status,
            CURATED_COLUMNS if status == KEPT else DECISION_COLUMNS,
            thumbnails=status == REMOVED,
        )
        for name, status in (DRY_RUN_PARTS if dry_run else OUTPUT_PARTS).items()
    ]
    sink = PartsSink(version, parts, spec.rows_per_file)
    rows.write_datasink(sink)
    counts = Counts.from_summaries([w.summaries for w in sink.written])
    written = {p.name: _count_rows(version.join(p.name)) for p in parts}
    unread = [w.file_errors for w in sink.written]
    errors = [
        FileError(uri=r["source_uri"], reason=r["reason"], detail=r["detail"])
        for table in unread
        for r in table.to_pylist()
    ]
    return counts, written, errors


def _log_done(spec: CurateSpec, counts: Counts) -> None:
    """The run's log line, and its rows on Ray's metrics endpoint."""
    metrics.curation(spec.name, counts.rows())
    log.info(
        "curate done name=%s input=%d kept=%d removed=%d quarantined=%d content_hash=%s",
        spec.name,
        counts.input_rows,
        counts.kept,
        counts.total(REMOVED),
        counts.total(QUARANTINED),
        counts.content_hash,
    )


def _write_report(report: Report, version: storage.Location) -> None:
    as_json, as_markdown = REPORT_FILES
    storage.write_bytes(version.join(as_json), report.model_dump_json(indent=2).encode())
    storage.write_bytes(version.join(as_markdown), report.to_markdown().encode())


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
