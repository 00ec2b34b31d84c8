"""`weft lineage <id>`: where an indexed item came from, as `GET /v1/items/{id}/lineage`
answers it (the same `weft.serve.lineage.trace`), read from the index, the curated dataset
and MLflow directly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from weft.cli.common import console, user_errors
from weft.specs import SpecError

if TYPE_CHECKING:
    from weft.serve.lineage import Lineage


def lineage_command(
    item: Annotated[str, typer.Argument(help="An item's id, as search answers name it.")],
    model: Annotated[
        str, typer.Option(help="The CLIP whose index holds it: name@alias or name/version.")
    ] = "weft-clip@champion",
    index: Annotated[str, typer.Option(help="Where indexes are (weft index --output).")] = (
        ".weft/index"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="The answer as JSON.")] = False,
) -> None:
    """Print an item's lineage: source object, curation's decisions, curated dataset version,
    training run, registered version and aliases, index version."""
    from weft.registry.versions import resolve
    from weft.serve.lineage import trace
    from weft.serve.search import Manifest, find_item, index_location
    from weft.specs import StorageSpec

    with user_errors():
        where = index_location(index, resolve(model), StorageSpec())
        manifest = Manifest.at(where)
        found = find_item(where, item)
        if found is None:
            raise SpecError(f"{item}: not an item of the index at {where.uri}")
        chain = trace(found, manifest, where.uri)
    if as_json:
        console.print_json(chain.model_dump_json())
        return
    _print(chain)


def _print(chain: Lineage) -> None:
    console.print(f"[bold]item {chain.item}[/]: {chain.caption!r}", highlight=False)
    s = chain.source
    _step("source", {"uri": s.uri, "key": s.key, "record": s.ordinal, "image hash": s.image_hash})
    if chain.curation is not None:
        c = chain.curation
        dups = [
            f"{d.id} ({d.stage}, similarity {d.similarity:.3f}, {d.source_uri} {d.key})"
            for d in c.duplicates
        ]
        _step(
            "curation",
            {
                "decision": c.status,
                "language": c.lang and f"{c.lang} ({c.lang_score:.2f})",
                "nsfw score": "not checked" if c.nsfw_score is None else f"{c.nsfw_score:.2f}",
                "image": c.image,
                "duplicates removed in its favour": "; ".join(dups) or "none",
            },
        )
    if chain.dataset is not None:
        d = chain.dataset
        n = d.counts
        _step(
            "curated dataset",
            {
                "uri": d.uri,
                "version": d.version + ("" if d.current else " (since replaced)"),
                "content hash": d.content_hash,
                "report": f"{n['input']} in = {n['kept']} kept + {n['removed']} removed + "
                f"{n['quarantined']} quarantined",
                "curation run": d.curation_mlflow_run,
            },
        )
    if chain.training is not None:
        t = chain.training
        same = "the indexed dataset" if t.same_dataset else "NOT the indexed dataset"
        _step(
            "training run",
            {
                "run": f"{t.name} ({t.run_id}), {t.status}, started {t.started}",
                "experiment": t.experiment,
                "dataset": f"{t.dataset_uri} ({t.dataset_content_hash}: {same})",
                "mlflow inputs": "; ".join(t.datasets),
                "ray job": t.job,
            },
        )
    if chain.model is not None:
        m = chain.model
        aliases = ", ".join(m.aliases) or "none"
        _step("model", {"version": f"{m.name} v{m.version}", "aliases": aliases, "gate": m.gate})
    i = chain.index
    _step("index", {"uri": i.uri, "items": i.count, "built": i.built_at})
    for gap in chain.gaps:
        console.print(f"[yellow]not traced:[/] {gap}", highlight=False)


def _step(title: str, fields: dict[str, Any]) -> None:
    console.print(f"  [bold]{title}[/]", highlight=False)
    for name, value in fields.items():
        if value not in (None, ""):
            console.print(f"    {name}: {value}", highlight=False, soft_wrap=True)
