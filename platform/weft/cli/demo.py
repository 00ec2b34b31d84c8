"""`weft demo-data` (the demo's synthetic corpus) and `weft demo` (the end-to-end demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weft.cli import registry
from weft.cli.common import console, err_console, user_errors
from weft.cli.curate import run_curation
from weft.cli.index import run_index
from weft.cli.train import run_training
from weft.cli.tune import print_sweep, run_sweep


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
    from weft.demo import flow

    flow.run(_Steps(), spec, raw, pairs, train)


class _Steps:
    """The demo's steps (weft.demo.flow.Steps) as the commands run them, each printing its
    summary."""

    def corpus(self, raw: str, pairs: int) -> None:
        from weft.demo.corpus import generate

        with user_errors():
            manifest = generate(raw, pairs=pairs)
        console.print(
            f"demo corpus: {manifest.pairs} pairs, {manifest.documents} documents, "
            f"{manifest.exact_duplicates} planted exact duplicates, "
            f"{sum(manifest.flaws.values())} broken records, "
            f"{len(manifest.truncated_shards)} truncated shard, "
            f"{len(manifest.bad_schema_files)} file with the wrong schema → {raw}",
            highlight=False,
        )

    def curate(self, spec: Path) -> str:
        return run_curation(spec)

    def train(self, spec: Path) -> str | None:
        return run_training(spec)

    def sweep(self, spec: Path) -> str | None:
        result = run_sweep(spec)
        print_sweep(result)
        return result.run_id

    def promote(self, spec: Path, *, run: str | None = None, sweep: str | None = None) -> bool:
        return registry.run_promotion(spec, run=run, sweep=sweep)

    def models(self) -> None:
        registry.models()

    def index(self, data: str, model: str) -> None:
        run_index(data, model, ".weft/index", actors=2)

    def tour(self, config: Path, home: Path) -> None:
        """Deploy the config's apps with a fresh key, visit each endpoint once, print what
        came back, and shut the apps down."""
        from weft.demo.tour import TourError, deploy, tour
        from weft.serve import local

        with user_errors():
            deployed = deploy(config, home)
        url = deployed.url
        console.print(
            f"serving {url} (OpenAPI: {url.rstrip('/')}/docs) with a key in {deployed.keyfile}"
        )
        try:
            visits = tour(url, deployed.key, home / "generated.png")
        except TourError as err:
            err_console.print(f"[bold red]error:[/] {err}", highlight=False)
            raise typer.Exit(1) from None
        finally:
            local.stop()
        console.print(f"[bold]one request to each endpoint of {url}[/]", highlight=False)
        for v in visits:
            console.print(
                f"[bold]{v.route}[/] {v.sent} → {v.status} in {v.ms:.0f} ms", highlight=False
            )
            for line in v.answer:
                console.print(f"    {line}", highlight=False, soft_wrap=True)
        console.print(
            f"generated image: {home / 'generated.png'}; the app is shut down. To look at the "
            f"search page and the dataset explorer, keep it running with `weft serve {config}`, "
            "open http://127.0.0.1:8000/ and enter a key (`weft keys add me --role viewer` "
            "makes one); `weft lineage <item id>` prints an answer's lineage",
            highlight=False,
            soft_wrap=True,
        )
