"""The `weft` command: parse, load the spec, call the stage, print a summary. Nothing more."""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar, cast

import typer
from rich.console import Console
from rich.table import Table

from weft.curate.spec import CurateSpec, NearDedupSpec
from weft.specs import SpecError, load_spec, parse_spec
from weft.storage import StorageError
from weft.train.spec import TrainSpec

if TYPE_CHECKING:
    from weft.curate.calibrate import Counts, ImageRow
    from weft.tune.sweep import SweepResult

app = typer.Typer(
    help="Weft: curate image-text data, pretrain, sweep and serve multimodal models on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")
DEMO_JOBS = (Path("jobs/clip.yaml"), Path("jobs/diffusion.yaml"), Path("jobs/captioner.yaml"))
# The demo's sweeps, each followed by the promotion of its model; the runs promoted as trained.
DEMO_SWEEPS = (
    (Path("jobs/sweep-clip.yaml"), Path("jobs/promote-clip.yaml")),
    (Path("jobs/sweep-cfg.yaml"), Path("jobs/promote-diffusion.yaml")),
)
DEMO_PROMOTIONS = {Path("jobs/captioner.yaml"): Path("jobs/promote-captioner.yaml")}
DEMO_APP = Path("serve/weft.yaml")
# `weft quality`: the emoji models, each trained then promoted by its run.
QUALITY_JOBS = {
    Path(f"jobs/emoji-{kind}.yaml"): Path(f"jobs/promote-emoji-{kind}.yaml")
    for kind in ("clip", "captioner", "diffusion")
}


@contextmanager
def _user_errors() -> Iterator[None]:
    """Bad input ends in one clear line and a non-zero exit, never a traceback."""
    from weft.curate.report import AccountingError

    try:
        yield
    except (SpecError, StorageError, AccountingError) as err:
        for line in str(err).splitlines():
            err_console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


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


Dashboard = Annotated[
    bool,
    typer.Option(
        "--dashboard",
        help="Start the dashboard of the local Ray this command starts, to watch the run "
        "(its address is logged; also WEFT_DASHBOARD=1; a cluster at RAY_ADDRESS has its "
        "own). Off by default: it adds about a second to a short run's start.",
    ),
]


def _ask_for_dashboard(dashboard: bool) -> None:
    """`--dashboard`: the local Ray that the command starts runs its dashboard."""
    if dashboard:
        from weft.cluster import DASHBOARD

        os.environ[DASHBOARD] = "1"


def _run_curation(spec_path: Path, dry_run: bool = False) -> str:
    """Curate and print the report; the output's URI."""
    with _user_errors():
        spec = load_spec(CurateSpec, spec_path)
        from weft.curate.pipeline import curate

        console.print(f"curating [bold]{spec.name}[/] from {spec_path}", highlight=False)
        report = curate(spec, dry_run=dry_run)
    _print_report(report)
    return report.output


@app.command()
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
    _ask_for_dashboard(dashboard)
    _run_curation(spec, dry_run)
    if ours:
        # Stop the Ray this command started (or leave the cluster) now: at exit Ray first
        # sleeps 0.5 s for log lines still on their way (measured: returns 0.3-0.5 s sooner).
        cluster.stop()


@app.command()
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

    with _user_errors():
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


@app.command()
def train(
    spec: Annotated[Path, typer.Argument(help="Training spec (YAML), e.g. jobs/clip.yaml.")],
    dashboard: Dashboard = False,
) -> None:
    """Train (or resume) a model on curated data with Ray Train; tracked in MLflow."""
    _ask_for_dashboard(dashboard)
    _run_training(spec)


def _run_training(spec_path: Path) -> str | None:
    """Train and print the result; the MLflow run's id."""
    with _user_errors():
        job = load_spec(TrainSpec, spec_path)
        from weft.train.run import train as run_training

        console.print(
            f"training [bold]{job.name}[/] ({job.model.name}) from {spec_path}", highlight=False
        )
        result = run_training(job)
    _print_training(result)
    return result.run_id


@app.command()
def tune(
    spec: Annotated[
        Path, typer.Argument(help="Sweep spec (YAML): jobs/sweep-clip.yaml, jobs/sweep-cfg.yaml.")
    ],
) -> None:
    """Sweep on Ray Tune, tracked in MLflow: a training spec's values (ASHA stops trailing
    trials; a local Ray runs its dashboard, which Ray Train needs to free a stopped trial's
    CPUs), or a trained diffusion model's guidance (CFG scale, negative prompt, steps),
    judged by a trained CLIP; the chosen setting is saved with the model."""

    _print_sweep(_run_sweep(spec))


def _run_sweep(spec_path: Path) -> SweepResult:
    from weft.tune.spec import GuidanceSpec, load_sweep

    with _user_errors():
        job = load_sweep(spec_path)
        from weft.tune.guidance import guidance_sweep
        from weft.tune.sweep import sweep

        console.print(f"sweeping [bold]{job.name}[/] from {spec_path}", highlight=False)
        return guidance_sweep(job) if isinstance(job, GuidanceSpec) else sweep(job)


def _cell(value: object, quoted: bool = False) -> str:
    """A table cell: floats to 4 significant digits, swept strings quoted (so '' shows)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if quoted and isinstance(value, str) else str(value)


def _print_sweep(result: SweepResult) -> None:
    from weft.tracking import ui_command
    from weft.tune.sweep import table

    spec = result.spec
    frame = table(result.trials).drop(columns="run_id")  # in MLflow, and below for the best
    shown = Table(title=f"sweep {spec.name}: {spec.metric} ({spec.mode})")
    for column in frame.columns:  # a swept path by its last part: the title names the sweep
        shown.add_column(str(column).rsplit(".", 1)[-1], no_wrap=column == "trial")
    for row in frame.to_dict("records"):
        shown.add_row(*(_cell(v, quoted=k in spec.space) for k, v in row.items()))
    console.print(shown)
    best = result.best
    if best is None:
        err_console.print("[bold red]no trial completed[/]")
        raise typer.Exit(1)
    values = ", ".join(f"{k}={_cell(v, quoted=True)}" for k, v in best.values.items())
    console.print(
        f"best trial {best.id}: {spec.metric} {best.metrics[spec.metric]:.4g} with {values}\n"
        f"run {best.run_id}, model {result.model}",
        highlight=False,
    )
    if result.run_id:
        console.print(
            f"MLflow sweep run: {result.run_id}; to browse: {ui_command()}\n"
            f"to register its model: weft promote <spec> --sweep {result.run_id}",
            highlight=False,
        )


@app.command()
def promote(
    spec: Annotated[
        Path, typer.Argument(help="Promotion spec (YAML), e.g. jobs/promote-clip.yaml.")
    ],
    run: Annotated[
        str | None, typer.Option(help="The training run whose model to register.")
    ] = None,
    sweep: Annotated[
        str | None, typer.Option(help="A sweep's MLflow run: register its best trial's model.")
    ] = None,
) -> None:
    """Register a run's model in MLflow's registry; move the alias only if it passes the gate."""
    if (run is None) == (sweep is None):
        err_console.print("[bold red]error:[/] give exactly one of --run and --sweep")
        raise typer.Exit(2)
    if not _run_promotion(spec, run=run, sweep=sweep):
        raise typer.Exit(1)


def _run_promotion(spec_path: Path, run: str | None = None, sweep: str | None = None) -> bool:
    """Promote and print the gate's table; whether the version passed."""
    from weft.registry.spec import PromoteSpec

    with _user_errors():
        job = load_spec(PromoteSpec, spec_path)
        from weft.registry.promote import best_of_sweep
        from weft.registry.promote import promote as run_promotion

        decision = run_promotion(job, run or best_of_sweep(str(sweep)))
    _print_decision(decision)
    return decision.passed


def _print_decision(decision: object) -> None:
    from weft.registry.promote import Decision

    assert isinstance(decision, Decision)
    shown = Table(
        title=f"gate: {decision.model} version {decision.version} (run {decision.run_id})"
    )
    champion = (
        f"champion (v{decision.champion_version})" if decision.champion_version else "champion"
    )
    for column in ("metric", "value", "threshold", champion, "verdict"):
        shown.add_column(column)
    for c in decision.checks:
        cells = (c.value, c.threshold, c.champion)
        shown.add_row(
            c.metric,
            *("-" if v is None else f"{v:.4g}" for v in cells),
            "[green]ok[/]" if c.passed else f"[red]{c.reason}[/]",
        )
    console.print(shown)
    moved = (
        f"; alias [bold]{decision.alias}[/] → version {decision.version}" if decision.alias else ""
    )
    if decision.passed:
        console.print(f"[green]promoted[/]{moved}: models:/{decision.model}@{decision.alias}")
    else:
        err_console.print(
            f"[bold red]refused:[/] the gate failed{moved}; the champion is unchanged"
        )


@app.command()
def models() -> None:
    """Registered models: versions, aliases, gate results and lineage."""
    from weft.registry.promote import registered

    shown = Table(title="registered models")
    for column in ("model", "version", "aliases", "gate", "dataset hash", "run", "generation"):
        shown.add_column(column)
    for v in registered():
        shown.add_row(
            v.model, v.version, ", ".join(v.aliases), v.gate, v.dataset, v.run_id, v.generation
        )
    console.print(shown)


@app.command("index")
def index_command(
    data: Annotated[str, typer.Argument(help="A curation output (its data/), local or s3://.")],
    model: Annotated[
        str, typer.Option(help="The registered CLIP: name@alias or name/version.")
    ] = "weft-clip@champion",
    output: Annotated[str, typer.Option(help="Indexes go to <output>/<name>/v<n>.")] = (
        ".weft/index"
    ),
    actors: Annotated[int, typer.Option(help="Embedding actors, each holding the model.")] = 2,
) -> None:
    """Embed a curated dataset's images with a registered CLIP on Ray Data; write a search
    index (vectors, HNSW graph, BM25 over captions) tagged with the CLIP's version."""
    _index(data, model, output, actors)


def _index(data: str, model: str, output: str, actors: int) -> None:
    from weft.serve.index import IndexSpec, build

    with _user_errors():
        spec = parse_spec(
            IndexSpec,
            {"data": data, "model": model, "output": output, "actors": actors},
            "weft index",
        )
        manifest, uri = build(spec)
    console.print(
        f"indexed {manifest.count} images of {data} with {manifest.model} v{manifest.version} "
        f"({manifest.dim}-d vectors) in {manifest.seconds:.1f} s → {uri}",
        highlight=False,
    )


keys_app = typer.Typer(help="API keys of the HTTP API (stored hashed).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

KeysFile = Annotated[
    str, typer.Option("--file", help="The keys file an app's args.keys names, local or s3://.")
]


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: search, generate, admin.")
    ] = "search",
    per_minute: Annotated[int, typer.Option(help="Requests a minute (per replica).")] = 600,
    file: KeysFile = ".weft/keys.json",
) -> None:
    """Make an API key; its hash is stored, the key is printed this once."""
    from weft.serve import keys

    with _user_errors():
        given = [s.strip() for s in scopes.split(",") if s.strip()]
        unknown = sorted(set(given) - {"search", "generate", "admin"})
        if unknown or not given:
            raise SpecError(
                f"scopes: {', '.join(unknown) or 'none given'}: use search, generate, admin"
            )
        key = keys.add(file, name, cast(list[keys.Scope], given), per_minute)
    err_console.print(f"key {name} ({', '.join(given)}) stored hashed in {file}; it is shown once:")
    print(key)


@keys_app.command("list")
def keys_list(file: KeysFile = ".weft/keys.json") -> None:
    """The keys in a keys file: names, scopes and rates (never the keys or their hashes)."""
    from weft.serve import keys

    with _user_errors():
        entries = keys.load(file)
    table = Table(title=f"keys in {file}")
    for column in ("name", "scopes", "per minute"):
        table.add_column(column)
    for e in entries:
        table.add_row(e.name, ", ".join(e.scopes), str(e.per_minute))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    file: KeysFile = ".weft/keys.json",
) -> None:
    """Remove a key; running apps refuse it within seconds, without a redeploy."""
    from weft.serve import keys

    with _user_errors():
        keys.revoke(file, name)
    err_console.print(f"key {name} revoked in {file}; running apps refuse it within seconds")


@app.command("serve")
def serve_command(
    config: Annotated[
        Path, typer.Argument(help="A Ray Serve config (Ray's format), e.g. serve/weft.yaml.")
    ] = Path("serve/weft.yaml"),
    port: Annotated[int | None, typer.Option(help="HTTP port (default: the config's).")] = None,
    follow: Annotated[
        float, typer.Option(help="Seconds between alias checks (0: stay on the first versions).")
    ] = 10.0,
) -> None:
    """Run a Serve config's apps on a local Ray, the HTTP proxy on 127.0.0.1, until Ctrl-C or
    SIGTERM (what Kubernetes sends), which stop the apps and exit 0. When `weft promote`
    moves an alias, the app rolls to the new version without downtime."""
    from weft import cluster
    from weft.serve import local

    with _user_errors():
        deployed = local.load_config(config)
        cluster.connect()
        # after Ray's start, whose C++ core installs a SIGTERM handler that aborts (SIGABRT)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            urls = local.start(deployed, port)
        except KeyboardInterrupt:
            local.stop()
            return
    for url in urls:
        console.print(f"serving {url} (OpenAPI: {url.rstrip('/')}/docs); Ctrl-C stops it")
    try:
        while True:
            time.sleep(follow or 3600)
            if not follow:
                continue
            try:
                for name in local.follow_aliases(deployed):
                    console.print(f"app {name} moved to the versions its aliases name now")
            except SpecError as err:  # the old versions keep serving
                err_console.print(f"[bold red]error:[/] {err}", highlight=False)
    except KeyboardInterrupt:
        console.print("stopping: the apps finish the requests they hold")
        local.stop()


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM handled as Ctrl-C: raised in the main thread, where the command waits."""
    raise KeyboardInterrupt


def _print_training(result: object) -> None:
    from weft.tracking import ui_command
    from weft.train.run import TrainResult

    assert isinstance(result, TrainResult)
    table = Table(title="training")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(result.metrics.items()):
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"model: {result.model} (loads with weft.models.registry.load)", highlight=False)
    console.print(f"last checkpoint: {result.checkpoint}", highlight=False)
    if result.run_id:
        import mlflow

        artifacts = mlflow.get_run(result.run_id).info.artifact_uri
        console.print(
            f"MLflow run {result.run_id} (metrics, images, the model): {ui_command()}",
            highlight=False,
        )
        console.print(f"sample grids and attention maps: {artifacts}/eval", highlight=False)


@app.command("demo-data")
def demo_data(
    out: Annotated[str, typer.Argument(help="Local folder or s3://bucket/prefix.")],
    pairs: int = typer.Option(2000, help="Image-text pairs to draw."),
    shards: int = typer.Option(8, help="WebDataset tar shards."),
    documents: int = typer.Option(400, help="Text-only JSONL documents."),
    seed: int = typer.Option(0),
) -> None:
    """Write a synthetic corpus with planted duplicates and broken records."""
    from weft.demo.corpus import generate

    with _user_errors():
        manifest = generate(out, pairs=pairs, shards=shards, documents=documents, seed=seed)
    console.print(f"wrote demo corpus to {out}: {manifest}", highlight=False)


data_app = typer.Typer(help="Corpora that install offline, written for `weft curate`.")
app.add_typer(data_app, name="data")


@data_app.command("emoji")
def data_emoji(
    out: Annotated[str, typer.Argument(help="Local folder or s3://bucket/prefix.")],
    languages: Annotated[
        str | None,
        typer.Option(
            help="CLDR locales, comma-separated, whose names and keywords each record carries "
            "(default: en, de, fr, es, it, pt, nl, sv, pl, ru, tr, ar, hi, ja, ko, zh)."
        ),
    ] = None,
    per_emoji: Annotated[
        int, typer.Option(help="Records per emoji: English and this many minus one others.")
    ] = 4,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 64,
) -> None:
    """Noto Color Emoji with CLDR's names and keywords in many languages, as WebDataset
    shards per split (train, val, test, and subgroups held out whole for zero-shot), the
    variants of an emoji (skin tones, genders) always in one split."""
    from weft.data.emoji import LANGUAGES, write_corpus

    with _user_errors():
        given = languages.split(",") if languages else LANGUAGES
        wanted = [code.strip() for code in given if code.strip()]
        manifest = write_corpus(out, wanted, per_emoji=per_emoji, size=size)
    table = Table(title=f"emoji corpus → {out}")
    for column in ("split", "emoji", "records"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, count in manifest.records.items():
        table.add_row(split, str(manifest.emoji[split]), str(count))
    console.print(table)
    console.print(
        f"languages: {', '.join(manifest.languages)}; held-out subgroups: "
        f"{', '.join(manifest.held_out)}; skipped: {manifest.skipped or 'none'}",
        highlight=False,
    )


eval_app = typer.Typer(help="Quality figures: the product's bars, and gold-set retrieval.")
app.add_typer(eval_app, name="eval")


@eval_app.command("models")
def eval_models(
    spec: Annotated[Path, typer.Argument(help="Quality spec (YAML), e.g. jobs/quality.yaml.")],
    clip: Annotated[str | None, typer.Option(help="A CLIP to measure instead.")] = None,
    captioner: Annotated[str | None, typer.Option(help="A captioner to measure instead.")] = None,
    diffusion: Annotated[str | None, typer.Option(help="A diffusion model instead.")] = None,
) -> str:
    """The quality table of the spec's models (a registered version, a run's model or a
    folder each) on the emoji corpus's test split and held-out subgroups: written as
    markdown beside figures.json and logged to MLflow. Models given as options are measured
    instead of the spec's, alone (a diffusion model keeps the spec's CLIP as its judge)."""
    from weft.quality.run import evaluate
    from weft.quality.spec import QualitySpec
    from weft.quality.table import COLUMNS, table_rows

    with _user_errors():
        loaded = load_spec(QualitySpec, spec)
        if clip or captioner or diffusion:
            judge = clip or (loaded.clip if diffusion else None)
            update = {
                "clip": judge,
                "captioner": captioner,
                "diffusion": diffusion,
                "vit_epochs": None,
            }
            loaded = parse_spec(QualitySpec, loaded.model_dump() | update, str(spec))
        result = evaluate(loaded)
    table = Table(title=f"quality: {loaded.name}")
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in ("figure", "chance", "n") else "left")
    for row in table_rows(result.figures):
        table.add_row(*row)
    console.print(table)
    console.print(f"table: {result.output}/results.md, MLflow run {result.run_id}", highlight=False)
    return result.table


@eval_app.command("retrieval")
def eval_retrieval(
    gold: Annotated[
        Path, typer.Argument(help="Gold queries (YAML), e.g. jobs/gold/emoji-search.yaml.")
    ],
    model: Annotated[
        str, typer.Option(help="The registered CLIP whose index is searched.")
    ] = "emoji-clip@champion",
    index: Annotated[str, typer.Option(help="Where `weft index` wrote indexes.")] = ".weft/index",
    k: Annotated[int, typer.Option(help="Hits per query: precision@k and recall@k.")] = 5,
    hybrid: Annotated[float, typer.Option(help="BM25's share of the hybrid score.")] = 0.3,
    output: Annotated[Path, typer.Option(help="Where the report and thumbnails go.")] = Path(
        ".weft/quality/gold"
    ),
    experiment: Annotated[str, typer.Option(help="The MLflow experiment.")] = "weft-quality",
) -> str:
    """Precision@k and recall@k of the gold queries against the model's search index:
    vector-only and hybrid text search, and image→image; a report with the worst queries'
    top k as thumbnails."""
    from weft.quality.gold import GoldSet
    from weft.quality.gold_report import REPORT, publish, summary, summary_markdown
    from weft.quality.retrieval import run

    with _user_errors(), tempfile.TemporaryDirectory(prefix="weft-gold-") as workdir:
        result = run(load_spec(GoldSet, gold), model, index, k, hybrid, Path(workdir))
        run_id = publish(result, k, hybrid, output, experiment)
    table = Table(title=f"gold queries against {result.version}")
    for column in ("mode", "queries", "n", f"P@{k}", f"R@{k}"):
        table.add_column(column, justify="left" if column in ("mode", "queries") else "right")
    for mode, kind, n, precision, recall in summary(result, k):
        table.add_row(mode, kind, str(n), f"{precision:.3f}", f"{recall:.3f}")
    console.print(table)
    console.print(f"report: {output / REPORT}, MLflow run {run_id}", highlight=False)
    return summary_markdown(result, k, hybrid)


@app.command()
def demo(
    spec: Annotated[Path, typer.Option(help="Curation spec of the demo.")] = Path(
        "pipelines/demo.yaml"
    ),
    raw: Annotated[str, typer.Option(help="Where the demo corpus is written.")] = ".weft/demo/raw",
    pairs: int = typer.Option(2000, help="Image-text pairs to draw."),
    train: Annotated[
        list[Path] | None, typer.Option(help="Training specs run after the curation.")
    ] = None,
) -> None:
    """The end-to-end demo on embedded defaults: make a corpus, curate it, print the report;
    train a tiny CLIP, text-to-image diffusion model and captioner on the curated pairs;
    sweep CLIP's temperature and the diffusion model's guidance on Ray Tune; promote the
    models in MLflow's registry behind their gates; index the curated images with the
    champion CLIP; serve the champions on Ray Serve, send one request to each endpoint and
    print the answers, then shut the app down."""
    from weft.demo.corpus import generate

    with _user_errors():
        manifest = generate(raw, pairs=pairs)
    console.print(
        f"demo corpus: {manifest.pairs} pairs, {manifest.documents} documents, "
        f"{manifest.exact_duplicates} planted exact duplicates, {sum(manifest.flaws.values())} "
        f"broken records, {len(manifest.truncated_shards)} truncated shard, "
        f"{len(manifest.bad_schema_files)} file with the wrong schema → {raw}",
        highlight=False,
    )
    _ask_for_dashboard(True)  # the sweep's Ray Train needs it to free a stopped trial's CPUs
    curated = _run_curation(spec)
    runs = {job: _run_training(job) for job in train or DEMO_JOBS}
    for sweep_spec, promotion in DEMO_SWEEPS:
        result = _run_sweep(sweep_spec)
        _print_sweep(result)
        if result.run_id:  # a refused promotion is shown, and the demo goes on
            _run_promotion(promotion, sweep=result.run_id)
    for job, promotion in DEMO_PROMOTIONS.items():
        if runs.get(job):
            _run_promotion(promotion, run=runs[job])
    models()
    _index(curated, "weft-clip@champion", ".weft/index", actors=2)
    _tour(DEMO_APP, Path(raw).parent)


@app.command()
def quality(
    raw: Annotated[
        str, typer.Option(help="Where the emoji corpus is written.")
    ] = ".weft/emoji/raw",
    spec: Annotated[Path, typer.Option(help="Its curation spec.")] = Path("pipelines/emoji.yaml"),
    evaluation: Annotated[Path, typer.Option(help="The quality spec.")] = Path("jobs/quality.yaml"),
    gold: Annotated[Path, typer.Option(help="The gold queries.")] = Path(
        "jobs/gold/emoji-search.yaml"
    ),
    readme: Annotated[
        Path, typer.Option(help="A document whose quality block gets the new tables.")
    ] = Path("docs/quality.md"),
) -> None:
    """Every figure of the quality table from nothing: write the emoji corpus and curate it;
    train the emoji models and promote each behind its gate; index the corpus with the
    champion CLIP; then `weft eval models` and `weft eval retrieval`. Each step's time is
    printed as it ends, and all of them at the end."""
    steps: dict[str, float] = {}
    with _timed("corpus", steps):
        data_emoji(raw)
    with _timed("curation", steps):
        curated = _run_curation(spec)
    for job, promotion in QUALITY_JOBS.items():
        with _timed(job.stem, steps):
            run = _run_training(job)
            if not (run and _run_promotion(promotion, run=run)):
                err_console.print(f"[bold red]error:[/] {job}: its model was not promoted")
                raise typer.Exit(1)
    with _timed("index", steps):
        _index(curated, "emoji-clip@champion", ".weft/index", actors=2)
    with _timed("eval models", steps):
        tables = [eval_models(evaluation)]
    with _timed("eval retrieval", steps):
        tables.append(eval_retrieval(gold))
    from weft.quality.table import replace_block

    with _user_errors():
        try:
            readme.write_text(replace_block(readme.read_text(), "\n".join(tables)))
        except (OSError, ValueError) as err:
            raise SpecError(f"--readme {readme}: {err}") from None
    console.print(f"{readme}: its quality tables are the ones above", highlight=False)
    total = sum(steps.values())
    console.print(
        "time: "
        + ", ".join(f"{name} {s:.0f} s" for name, s in steps.items())
        + f"; in all {total / 60:.1f} min",
        highlight=False,
    )


@contextmanager
def _timed(step: str, steps: dict[str, float]) -> Iterator[None]:
    """Record the block's wall time under `step`, and print it when the block ends."""
    started = time.monotonic()
    yield
    steps[step] = time.monotonic() - started
    console.print(f"[bold]{step}[/]: {steps[step]:.0f} s", highlight=False)


def _tour(config_path: Path, home: Path) -> None:
    """Deploy a Serve config's app with a fresh key, visit each endpoint once, print what
    came back, and shut the app down."""
    from weft.demo.tour import TourError, tour
    from weft.serve import keys, local

    with _user_errors():
        config = local.load_config(config_path)
        keyfile = home / "keys.json"
        keyfile.unlink(missing_ok=True)
        key = keys.add(keyfile, "demo", ["search", "generate"], per_minute=600)
        for served in config.applications:
            served.args = (served.args or {}) | {"keys": str(keyfile)}
        (url, *_) = local.start(config, local.free_port())
    console.print(f"serving {url} (OpenAPI: {url.rstrip('/')}/docs) with a key in {keyfile}")
    try:
        visits = tour(url, key, home / "generated.png")
    except TourError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        local.stop()
    console.print(f"[bold]one request to each endpoint of {url}[/]", highlight=False)
    for v in visits:
        console.print(f"[bold]{v.route}[/] {v.sent} → {v.status} in {v.ms:.0f} ms", highlight=False)
        for line in v.answer:
            console.print(f"    {line}", highlight=False, soft_wrap=True)
    console.print(
        f"generated image: {home / 'generated.png'}; the app is shut down "
        f"(`weft serve {config_path}` keeps it running)",
        highlight=False,
    )


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("weft").setLevel(logging.INFO)
    app()


if __name__ == "__main__":
    main()
