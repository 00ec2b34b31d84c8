"""`weft demo-data` (the demo's synthetic corpus) and `weft demo` (the end-to-end demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weft.cli.common import ask_for_dashboard, console, err_console, user_errors
from weft.cli.curate import run_curation
from weft.cli.index import run_index
from weft.cli.registry import models, run_promotion
from weft.cli.train import run_training
from weft.cli.tune import print_sweep, run_sweep

DEMO_JOBS = (Path("jobs/clip.yaml"), Path("jobs/diffusion.yaml"), Path("jobs/captioner.yaml"))
# The demo's sweeps, each followed by the promotion of its model; the runs promoted as trained.
DEMO_SWEEPS = (
    (Path("jobs/sweep-clip.yaml"), Path("jobs/promote-clip.yaml")),
    (Path("jobs/sweep-cfg.yaml"), Path("jobs/promote-diffusion.yaml")),
)
DEMO_PROMOTIONS = {Path("jobs/captioner.yaml"): Path("jobs/promote-captioner.yaml")}
DEMO_APP = Path("serve/weft.yaml")


def demo_data(
    out: Annotated[str, typer.Argument(help="Local folder or s3://bucket/prefix.")],
    pairs: int = typer.Option(2000, help="Image-text pairs to draw."),
    shards: int = typer.Option(8, help="WebDataset tar shards."),
    documents: int = typer.Option(400, help="Text-only JSONL documents."),
    seed: int = typer.Option(0),
) -> None:
    """Write a synthetic corpus with planted duplicates and broken records."""
    from weft.demo.corpus import generate

    with user_errors():
        manifest = generate(out, pairs=pairs, shards=shards, documents=documents, seed=seed)
    console.print(f"wrote demo corpus to {out}: {manifest}", highlight=False)


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

    with user_errors():
        manifest = generate(raw, pairs=pairs)
    console.print(
        f"demo corpus: {manifest.pairs} pairs, {manifest.documents} documents, "
        f"{manifest.exact_duplicates} planted exact duplicates, {sum(manifest.flaws.values())} "
        f"broken records, {len(manifest.truncated_shards)} truncated shard, "
        f"{len(manifest.bad_schema_files)} file with the wrong schema → {raw}",
        highlight=False,
    )
    ask_for_dashboard(True)  # the sweep's Ray Train needs it to free a stopped trial's CPUs
    curated = run_curation(spec)
    runs = {job: run_training(job) for job in train or DEMO_JOBS}
    for sweep_spec, promotion in DEMO_SWEEPS:
        result = run_sweep(sweep_spec)
        print_sweep(result)
        if result.run_id:  # a refused promotion is shown, and the demo goes on
            run_promotion(promotion, sweep=result.run_id)
    for job, promotion in DEMO_PROMOTIONS.items():
        if runs.get(job):
            run_promotion(promotion, run=runs[job])
    models()
    run_index(curated, "weft-clip@champion", ".weft/index", actors=2)
    _tour(DEMO_APP, Path(raw).parent)


def _tour(config_path: Path, home: Path) -> None:
    """Deploy a Serve config's app with a fresh key, visit each endpoint once, print what
    came back, and shut the app down."""
    from weft.demo.tour import TourError, tour
    from weft.serve import keys, local

    with user_errors():
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
