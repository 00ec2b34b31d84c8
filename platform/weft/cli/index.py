"""`weft index`: embed a curated dataset with a registered CLIP into a search index."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from weft.cli.common import console, user_errors
from weft.specs import SpecError, load_spec, parse_spec

if TYPE_CHECKING:
    from weft.serve.index import IndexSpec


def index_command(
    data: Annotated[
        str | None, typer.Argument(help="A curation output (its data/), local or s3://.")
    ] = None,
    model: Annotated[
        str, typer.Option(help="The registered CLIP: name@alias or name/version.")
    ] = "weft-clip@champion",
    output: Annotated[str, typer.Option(help="Indexes go to <output>/<name>/v<n>.")] = (
        ".weft/index"
    ),
    actors: Annotated[int, typer.Option(help="Embedding actors, each holding the model.")] = 2,
    spec: Annotated[
        Path | None,
        typer.Option(help="An index spec (YAML: data, model, output, ...) instead of the above."),
    ] = None,
) -> None:
    """Embed a curated dataset's images with a registered CLIP on Ray Data; write a search
    index (vectors, HNSW graph, BM25 over captions) tagged with the CLIP's version."""
    from weft.serve.index import IndexSpec

    with user_errors():
        if spec is not None:
            _index(load_spec(IndexSpec, spec))
            return
        if data is None:
            raise SpecError("data: give a curation output, or --spec")
    run_index(data, model, output, actors)


def run_index(data: str, model: str, output: str, actors: int) -> None:
    from weft.serve.index import IndexSpec

    with user_errors():
        spec = parse_spec(
            IndexSpec,
            {"data": data, "model": model, "output": output, "actors": actors},
            "weft index",
        )
        _index(spec)


def _index(spec: IndexSpec) -> None:
    from weft.serve.index import build

    manifest, uri = build(spec)
    console.print(
        f"indexed {manifest.count} images of {spec.data} with {manifest.model} "
        f"v{manifest.version} ({manifest.dim}-d vectors) in {manifest.seconds:.1f} s → {uri}",
        highlight=False,
    )
