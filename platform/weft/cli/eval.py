"""`weft eval models` (the quality table of a spec's models) and `weft eval retrieval`
(gold-set precision and recall of search); weft.quality measures."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from weft.cli.common import console, user_errors
from weft.specs import load_spec, parse_spec

eval_app = typer.Typer(help="Quality figures: the product's bars, and gold-set retrieval.")


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

    with user_errors():
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
    captioner: Annotated[
        str | None,
        typer.Option(
            help="A registered captioner: it reranks the hybrid's top candidates, and the "
            "captions it writes are the caption-first baseline."
        ),
    ] = None,
    rerank_share: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="The captioner's share of the reranked order, fused by reciprocal ranks with "
            "the hybrid's (1: its order alone). Default: the service's (weft.serve.rerank).",
        ),
    ] = None,
    output: Annotated[Path, typer.Option(help="Where the report and thumbnails go.")] = Path(
        ".weft/quality/gold"
    ),
    experiment: Annotated[str, typer.Option(help="The MLflow experiment.")] = "weft-quality",
) -> str:
    """Precision@k and recall@k of the gold queries against the model's search index, per
    half (dev, test): vector-only text search, the weighted and the reciprocal-rank hybrids,
    and image→image; a report with the worst queries' top k as thumbnails."""
    from weft.quality.gold import GoldSet
    from weft.quality.gold_report import REPORT, publish, summary, summary_markdown
    from weft.quality.retrieval import run
    from weft.serve.rerank import SHARE

    with user_errors(), tempfile.TemporaryDirectory(prefix="weft-gold-") as workdir:
        gold_set = load_spec(GoldSet, gold)
        share = SHARE if rerank_share is None else rerank_share
        result = run(gold_set, model, index, k, hybrid, Path(workdir), captioner, share)
        run_id = publish(result, k, hybrid, output, experiment)
    table = Table(title=f"gold queries against {result.version}")
    for column in ("mode", "half", "queries", "n", f"P@{k}", f"R@{k}"):
        table.add_column(column, justify="right" if column in ("n", f"P@{k}", f"R@{k}") else "left")
    for mode, half, kind, n, precision, recall in summary(result, k):
        table.add_row(mode, half, kind, str(n), f"{precision:.3f}", f"{recall:.3f}")
    console.print(table)
    console.print(f"report: {output / REPORT}, MLflow run {run_id}", highlight=False)
    return summary_markdown(result, k, hybrid)


@eval_app.command("inspection")
def eval_inspection(
    gold: Annotated[
        Path,
        typer.Argument(help="A gold set folder, e.g. .weft/inspection/sets/gold/test."),
    ],
    model: Annotated[
        str, typer.Option(help="The inspector: name@alias, name/version, runs:/ or a folder.")
    ] = "models:/inspector@champion",
    output: Annotated[Path, typer.Option(help="Where the report and gallery go.")] = Path(
        ".weft/inspection/eval"
    ),
    experiment: Annotated[str, typer.Option(help="The MLflow experiment.")] = "weft-inspection",
) -> str:
    """The inspector on a gold set: every image asked with a neutral and a leading prompt,
    inspected whole and by crops. Detection, misses, false alarms, abstentions and confident
    wrong answers per defect kind; a gallery of the wrong answers with where it looked."""
    from weft.inspection import GoldSet
    from weft.models.inference import DefectInspector
    from weft.quality.inspection import run
    from weft.quality.inspection_report import REPORT, publish
    from weft.registry.artifacts import fetch_predictor
    from weft.specs import StorageSpec

    with user_errors(), tempfile.TemporaryDirectory(prefix="weft-inspection-") as workdir:
        gold_set = GoldSet.read(gold)
        inspector, _, _ = fetch_predictor(
            model, "--model", StorageSpec(), Path(workdir), DefectInspector
        )
        result = run(gold_set, gold, inspector, model)
        run_id = publish(result, output, experiment)
    table = (output / REPORT).read_text()
    console.print(table, highlight=False, markup=False)
    console.print(f"report: {output / REPORT}, MLflow run {run_id}", highlight=False)
    return table
