"""`weft curate` (curate a corpus, print the checked report) and `weft calibrate` (precision
and recall of near-dedup per threshold on labelled pairs)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from weft.cli.common import Dashboard, ask_for_dashboard, console, user_errors
from weft.curate.spec import CurateSpec, NearDedupSpec
from weft.specs import SpecError, load_spec

if TYPE_CHECKING:
    from weft.curate.calibrate import Counts, ImageRow


def curate(
    spec: Annotated[Path, typer.Argument(help="Curation spec (YAML), e.g. pipelines/demo.yaml.")],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Run every stage; write only the report and each row's decision and scores "
            "(<output>/dry-run/), to tune thresholds.",
        ),
    ] = False,
    dashboard: Dashboard = False,
) -> None:
    """Curate image-text data: read, validate, dedup, filter; write Parquet and a report."""
    import ray

    from weft import cluster

    ours = not ray.is_initialized()
    ask_for_dashboard(dashboard)
    run_curation(spec, dry_run)
    if ours:
        # Stop the Ray this command started (or leave the cluster) now: at exit Ray first
        # sleeps 0.5 s for log lines still on their way (measured: returns 0.3-0.5 s sooner).
        cluster.stop()


def calibrate(
    spec: Annotated[
        Path, typer.Argument(help="Curation spec whose near_dedup settings to calibrate.")
    ],
    pairs: Annotated[
        str,
        typer.Option(help="Labelled pairs (JSONL: a, b, jaccard|duplicate), local or s3://."),
    ] = ".weft/demo/raw/near_pairs.jsonl",
    images: Annotated[
        bool,
        typer.Option(
            "--images",
            help="The pairs name images (paths or URIs; relative paths from the pairs file's "
            "folder): calibrate image near-dedup.",
        ),
    ] = False,
) -> None:
    """Precision and recall of near-duplicate detection per threshold on labelled pairs."""
    from weft import storage
    from weft.curate.calibrate import calibrate as run
    from weft.curate.calibrate import (
        calibrate_images,
        candidate_probability,
        image_reader,
        load_pairs,
    )
    from weft.curate.minhash import bands_and_rows

    with user_errors():
        curate_spec = load_spec(CurateSpec, spec)
        near = curate_spec.near_dedup
        loc = storage.resolve(pairs, curate_spec.storage)
        try:
            labelled = load_pairs(storage.read_bytes(loc).splitlines())
            by_image = (
                calibrate_images(labelled, near, image_reader(loc.uri, curate_spec.storage))
                if images
                else None
            )
        except ValueError as err:
            raise SpecError(f"{loc.uri}: {err}") from None
    if by_image:
        _print_image_calibration(near, len(labelled), *by_image)
        return
    rows = run(labelled, near)
    table = Table(
        title=f"near dedup on {len(labelled)} labelled pairs ({near.engine}, "
        f"{near.num_perm} permutations, {near.shingle} {near.ngram}-grams)"
    )
    for col in ("threshold", "bands x rows", "P(candidate) at t", *_COUNT_COLUMNS):
        table.add_column(col, justify="right")
    for r in rows:
        mark = "[bold]" if abs(r.threshold - near.threshold) < 1e-9 else ""
        table.add_row(
            f"{mark}{r.threshold:.2f}",
            f"{r.bands} x {r.rows}",
            f"{r.candidate_at_threshold:.3f}",
            *_count_cells(r),
        )
    console.print(table)
    bands, per_band = bands_and_rows(near)
    curve = Table(title=f"candidate probability 1-(1-s^r)^b at the spec's b={bands}, r={per_band}")
    curve.add_column("Jaccard s", justify="right")
    curve.add_column("P(candidate)", justify="right")
    for s in (0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0):
        curve.add_row(f"{s:.2f}", f"{float(candidate_probability(s, bands, per_band)):.3f}")
    console.print(curve)


_COUNT_COLUMNS = ("precision", "recall", "TP", "FP", "FN")


def _count_cells(r: Counts) -> list[str]:
    return [
        f"{r.precision:.3f}",
        f"{r.recall:.3f}",
        str(r.true_positives),
        str(r.false_positives),
        str(r.false_negatives),
    ]


def _print_image_calibration(
    near: NearDedupSpec, pairs: int, by_threshold: list[ImageRow], by_distance: list[ImageRow]
) -> None:
    """The image side: per thumbnail-similarity threshold, then per hash distance."""
    table = Table(
        title=f"image near dedup on {pairs} labelled pairs (hashes within "
        f"{near.image_max_distance} bits: {by_threshold[0].candidates:.3f} of the duplicates)"
    )
    for col in ("similarity threshold", *_COUNT_COLUMNS):
        table.add_column(col, justify="right")
    for r in by_threshold:
        mark = "[bold]" if abs(r.threshold - near.image_threshold) < 1e-9 else ""
        table.add_row(f"{mark}{r.threshold:.2f}", *_count_cells(r))
    console.print(table)
    curve = Table(title=f"by hash distance, at similarity threshold {near.image_threshold:.2f}")
    for col in ("max distance", "duplicates within", *_COUNT_COLUMNS):
        curve.add_column(col, justify="right")
    for r in by_distance:
        mark = "[bold]" if r.max_distance == near.image_max_distance else ""
        curve.add_row(f"{mark}{r.max_distance}", f"{r.candidates:.3f}", *_count_cells(r))
    console.print(curve)


def run_curation(spec_path: Path, dry_run: bool = False) -> str:
    """Curate and print the report; the output's URI."""
    with user_errors():
        spec = load_spec(CurateSpec, spec_path)
        from weft.curate.pipeline import curate

        console.print(f"curating [bold]{spec.name}[/] from {spec_path}", highlight=False)
        report = curate(spec, dry_run=dry_run)
    _print_report(report)
    return report.output


def _print_report(report: object) -> None:
    from weft.curate.report import PARTIAL_TIMINGS, Report

    assert isinstance(report, Report)
    c = report.counts
    table = Table(title=f"curation report: {report.name}", show_lines=False)
    for col in ("decision", "stage", "reason", "rows"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    table.add_row("[bold]input[/]", "", "", f"[bold]{c.input_rows}[/]")
    table.add_row("[green]kept[/]", "", "", f"[green]{c.kept}[/]")
    for status, by_stage in (("removed", c.removed), ("quarantined", c.quarantined)):
        for stage, reasons in sorted(by_stage.items()):
            for reason, n in sorted(reasons.items()):
                table.add_row(status, stage, reason, str(n))
    console.print(table)
    stages = Table(
        title="stages (seconds summed over workers)"
        + (f"\n{PARTIAL_TIMINGS}" if report.stages_partial else "")
    )
    for col in ("stage", "rows", "seconds", "rows/s"):
        stages.add_column(col, justify="left" if col == "stage" else "right")
    for s in report.stages:
        stages.add_row(s.stage, str(s.rows), f"{s.seconds:.2f}", f"{s.rows_per_s:,.0f}")
    console.print(stages)
    if c.languages_before:
        langs = Table(title="languages (rows language ID saw, rows kept)")
        for col in ("language", "before", "after"):
            langs.add_column(col, justify="left" if col == "language" else "right")
        for lang, n in sorted(c.languages_before.items(), key=lambda kv: -kv[1])[:15]:
            langs.add_row(lang, str(n), str(c.languages_after.get(lang, 0)))
        console.print(langs)
    if report.file_errors:
        files = Table(title="input files with errors (their readable records are counted)")
        for col in ("file", "reason", "error"):
            files.add_column(col, overflow="fold")
        for e in report.file_errors:
            files.add_row(e.uri, e.reason, e.detail)
        console.print(files)
    console.print(
        f"accounting: {c.input_rows} input = {c.kept} kept + {c.total('removed')} removed + "
        f"{c.total('quarantined')} quarantined [green](checked)[/]\n"
        f"dataset content hash: [bold]{c.content_hash}[/]\n"
        f"output: {report.output} "
        + (
            "(decisions/, report.json, report.md)"
            if report.dry_run
            else "(data/, removed/, quarantine/, report.json, report.md)"
        )
        + f", published as versions/{report.run}/",
        highlight=False,
    )
    if report.mlflow_run_id:
        from weft.tracking import ui_command

        console.print(
            f"MLflow run: {report.mlflow_run_id}; to browse: {ui_command()}", highlight=False
        )
