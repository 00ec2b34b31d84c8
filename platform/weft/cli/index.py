"""`weft index`: embed a curated dataset with a registered CLIP into a search index."""

from __future__ import annotations

from typing import Annotated

import typer

from weft.cli.common import console, user_errors
from weft.specs import parse_spec


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
    run_index(data, model, output, actors)


def run_index(data: str, model: str, output: str, actors: int) -> None:
    from weft.serve.index import IndexSpec, build

    with user_errors():
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
