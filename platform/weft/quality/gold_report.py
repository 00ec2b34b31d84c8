"""The gold-set report: figures by mode, half and query kind, every query's precision and
recall, and the worst dev queries with thumbnails of their top k, for the failure analysis
(the test half is reported, never looked into while tuning)."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow

from weft.quality.gold import HALVES, KINDS
from weft.quality.retrieval import RetrievalEval, Scored
from weft.serve.rerank import DEPTH
from weft.tracking import use_experiment

WORST = 12  # the failure analysis explains at least ten
REPORT = "report.md"


def _cells(values: list[float]) -> str:
    return " | ".join("n/a" if math.isnan(v) else f"{v:.2f}" for v in values)


def summary(result: RetrievalEval, k: int) -> list[tuple[str, str, str, int, float, float]]:
    """(mode, half, query kind, queries, mean precision@k, mean recall@k) per half, overall
    and per kind."""
    return [
        (
            mode,
            half,
            kind or "all",
            len(result.of(mode, kind, half)),
            result.mean(mode, "precision", kind, half),
            result.mean(mode, "recall", kind, half),
        )
        for mode in result.modes
        for half in HALVES
        for kind in (None, *KINDS)
    ]


def summary_markdown(result: RetrievalEval, k: int, hybrid: float) -> str:
    """The figures by mode and query kind, as markdown under a heading."""
    queries = len(result.of("vector"))
    captioned = (
        f"`reranked` (hybrid's top {DEPTH} reordered by {result.captioner}'s likelihood of the "
        f"query, fused by reciprocal ranks with the hybrid's order at a share of "
        f"{result.rerank_share:g}, {result.rerank_ms:.0f} ms a query), `caption-first` (BM25 "
        f"over the captions "
        f"{result.captioner} writes for the indexed images), "
        if result.captioner
        else ""
    )
    lines = [
        f"## Gold-set retrieval: {queries} queries against {result.version}",
        "",
        f"Modes: `vector` (cosine only), `hybrid` ({hybrid:g} BM25 + {1 - hybrid:g} "
        f"cosine), `rrf` (reciprocal ranks, BM25's share {hybrid:g}), {captioned}`image` (the "
        f"indexed image of the query's first item; relevant: its other items). Relevance in "
        f"items (a character's drawings in either style are one); recall@{k} over the "
        f"relevant items in the index. `dev` queries may be looked at while tuning; `test` "
        f"queries are only reported.",
        "",
        f"| mode | half | queries | n | P@{k} | R@{k} |",
        "|---|---|---|---:|---:|---:|",
        *(
            f"| {m} | {half} | {kind} | {n} | {p:.3f} | {r:.3f} |"
            for m, half, kind, n, p, r in summary(result, k)
        ),
    ]
    return "\n".join(lines) + "\n"


def markdown(result: RetrievalEval, k: int, hybrid: float, folder: Path) -> str:
    """The report, with the worst queries' thumbnails written under `folder/thumbs`."""
    lines = [
        summary_markdown(result, k, hybrid),
        "| query | kind | half | "
        + " | ".join(f"{measure}@{k} {mode}" for measure in "PR" for mode in result.modes)
        + " |",
        "|---|---|---|" + "---:|" * (2 * len(result.modes)),
    ]
    by_query: dict[str, dict[str, Scored]] = {}
    for s in result.scored:
        by_query.setdefault(s.query.text, {})[s.mode] = s
    for text, modes in by_query.items():
        p = [modes[m].precision if m in modes else math.nan for m in result.modes]
        r = [modes[m].recall if m in modes else math.nan for m in result.modes]
        query = modes["vector"].query
        lines.append(f"| {text} | {query.kind} | {query.half} | {_cells(p)} | {_cells(r)} |")
    lines += ["", f"### The {WORST} worst dev queries (hybrid precision, then vector)", ""]
    dev = [m for m in by_query.values() if m["vector"].query.half == "dev"]
    worst = sorted(dev, key=lambda m: (m["hybrid"].precision, m["vector"].precision))
    for modes in worst[:WORST]:
        lines += _failure(result, modes, folder)
    return "\n".join(lines) + "\n"


def _failure(result: RetrievalEval, modes: dict[str, Scored], folder: Path) -> list[str]:
    query = modes["hybrid"].query
    lines = [
        f"**{query.text}** ({query.kind}, {query.half}); relevant: {' '.join(query.relevant)}",
        "",
    ]
    for mode in (m for m in result.modes if m in modes):
        s = modes[mode]
        cells = []
        for row_id, item in zip(s.ids, s.found, strict=True):
            thumb = result.index.thumbnail(row_id)
            name = f"thumbs/{row_id}.png"
            if thumb:
                (folder / "thumbs").mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(thumb)
            mark = "✓" if item in query.items else "✗"
            cells.append(f"![{item}]({name}){mark}")
        lines.append(
            f"- {mode} (P {s.precision:.2f}): {' '.join(cells)} — found {' '.join(s.found)}"
        )
    return [*lines, ""]


def publish(result: RetrievalEval, k: int, hybrid: float, output: Path, experiment: str) -> str:
    """The report written to `output/report.md` (thumbnails beside it) and logged to MLflow
    with each mode's and kind's figures; the MLflow run id."""
    output.mkdir(parents=True, exist_ok=True)
    (output / REPORT).write_text(markdown(result, k, hybrid, output), encoding="utf-8")
    with mlflow.start_run(
        experiment_id=use_experiment(experiment), run_name="gold-retrieval"
    ) as run:
        mlflow.set_tags({"weft.stage": "eval", "weft.eval.clip": str(result.version)})
        mlflow.log_params({"k": k, "hybrid": hybrid, "queries": len(result.of("vector"))})
        if result.captioner:
            mlflow.set_tag("weft.eval.captioner", str(result.captioner))
            mlflow.log_metric("gold/reranked/ms_per_query", result.rerank_ms)
        mlflow.log_metrics(
            {
                f"gold/{mode}/{half}/{kind}/{measure}_at_{k}": value
                for mode, half, kind, _, p, r in summary(result, k)
                for measure, value in (("precision", p), ("recall", r))
            }
        )
        mlflow.log_artifacts(str(output), "gold")
        return str(run.info.run_id)
