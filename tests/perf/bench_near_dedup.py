"""Near-duplicate text against a peer, and the model stages against their raw models.

1. datatrove's MinHash dedup pipeline (its defaults: 5-grams, 14 x 8 hashes, 2 workers) and
   Weft's curation (read, validate, exact + near dedup, write) on the same JSONL corpus of
   documents of a few hundred words with planted near duplicates at known Jaccard
   similarities (0.5-0.95): documents/s end to end, precision and recall at Jaccard >= 0.8.
2. Language ID and NSFW as Ray Data actor stages (one actor) against the raw model called
   in a plain loop on the same inputs (medians of three alternating runs): the ratio is
   Ray's overhead, actor start-up included.

Figures, never assertions. Needs the bench extras: pip install -e '.[dev,bench]'.

    python -m tests.perf.bench_near_dedup [--documents 50000] [--skip-datatrove]
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import ray
from rich.console import Console
from rich.table import Table

from weft.curate.demo_data import draw, encode, near_copy, vocabulary
from weft.curate.langid import LanguageID, load_model, predict
from weft.curate.nsfw import NsfwFilter, bgr, load_detector
from weft.curate.pipeline import curate
from weft.curate.runner import StageClock, apply
from weft.curate.schema import KEPT, ROW_SCHEMA
from weft.specs import CurateSpec, LangIdSpec, NsfwSpec, parse_spec

JACCARDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
LID_TEXTS = 200_000  # about 10 s of the raw model: the actor's start-up is a fair share
console = Console()


def corpus(folder: Path, documents: int, files: int, seed: int = 0) -> list[tuple[str, str, float]]:
    """JSONL files of {"id", "text"}; 10% of the documents are near copies of others, planted
    at the JACCARDS levels. Returns the planted (original id, copy id, true Jaccard)."""
    rng = np.random.default_rng(seed)
    vocab = vocabulary()
    originals = documents - documents // 10
    docs = [
        [vocab[i] for i in rng.integers(len(vocab), size=int(rng.integers(200, 400)))]
        for _ in range(originals)
    ]
    records = [{"id": f"d{i:07d}", "text": " ".join(d)} for i, d in enumerate(docs)]
    planted = []
    for j, src in enumerate(rng.choice(originals, size=documents // 10, replace=False)):
        copy, similarity = near_copy(docs[int(src)], JACCARDS[j % len(JACCARDS)], vocab, rng)
        records.append({"id": f"n{j:07d}", "text": " ".join(copy)})
        planted.append((f"d{int(src):07d}", f"n{j:07d}", similarity))
    order = rng.permutation(len(records))
    folder.mkdir(parents=True)
    for f in range(files):
        lines = [json.dumps(records[i]) for i in order[f::files]]
        (folder / f"docs-{f:03d}.jsonl").write_text("\n".join(lines) + "\n")
    return planted


def score(removed: set[str], planted: list[tuple[str, str, float]]) -> tuple[float, float]:
    """Recall: planted pairs at Jaccard >= 0.8 with one of the two removed. Precision: removed
    documents that belong to such a pair, over all removed documents."""
    similarity = {doc: j for a, b, j in planted for doc in (a, b)}
    high = [a in removed or b in removed for a, b, j in planted if j >= 0.8]
    hits = [similarity.get(doc, 0.0) >= 0.8 for doc in removed]
    return sum(high) / len(high), (sum(hits) / len(hits) if hits else 1.0)


def run_datatrove(src: Path, work: Path, files: int) -> tuple[float, set[str]]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    config = MinhashConfig()
    logs = str(work / "logs")
    start = time.perf_counter()
    signatures = LocalPipelineExecutor(
        pipeline=[JsonlReader(str(src)), MinhashDedupSignature(str(work / "sigs"), config=config)],
        tasks=files,
        workers=2,
        logging_dir=f"{logs}/1",
    )
    buckets = LocalPipelineExecutor(
        pipeline=[MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=config)],
        tasks=config.num_buckets,
        workers=2,
        logging_dir=f"{logs}/2",
        depends=signatures,
    )
    clusters = LocalPipelineExecutor(
        pipeline=[MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=config)],
        tasks=1,
        logging_dir=f"{logs}/3",
        depends=buckets,
    )
    filtered = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(src)),
            MinhashDedupFilter(
                str(work / "remove"), exclusion_writer=JsonlWriter(str(work / "removed"))
            ),
            JsonlWriter(str(work / "kept")),
        ],
        tasks=files,
        workers=2,
        logging_dir=f"{logs}/4",
        depends=clusters,
    )
    filtered.run()
    seconds = time.perf_counter() - start
    removed = set()
    for path in (work / "removed").glob("*.jsonl*"):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as f:
            removed |= {json.loads(line)["id"] for line in f}
    return seconds, removed


def run_weft(src: Path, out: Path, engine: str, verify: str) -> tuple[float, set[str]]:
    spec: CurateSpec = parse_spec(
        CurateSpec,
        {
            "name": f"bench-{engine}-{verify}",
            "inputs": [{"uri": str(src), "format": "jsonl", "key_column": "id"}],
            "output": str(out),
            "validate": {"max_text_chars": 100_000},
            "near_dedup": {"engine": engine, "verify": verify},
            "langid": {"enabled": False},
            "nsfw": {"enabled": False},
            "mlflow": {"enabled": False},
        },
    )
    report = curate(spec)
    removed = pads.dataset(out / "removed", format="parquet").to_table(columns=["key", "stage"])
    near = {
        k
        for k, s in zip(removed["key"].to_pylist(), removed["stage"].to_pylist(), strict=True)
        if s == "near_dedup"
    }
    return report.seconds, near


def stage_vs_loop(
    table: pa.Table,
    stage_cls: type,
    args: tuple[object, ...],
    raw: Callable[[pa.Table], object],
    repeats: int = 3,
) -> tuple[float, float, float]:
    """Rows/s of a stage as a one-actor Ray Data pool, end to end (actor start-up included)
    and inside the actor's calls only, and of the raw model in a plain loop: the medians of
    `repeats` alternating runs, since a shared 2-core machine drifts by more than the
    difference being measured."""
    ds = ray.data.from_arrow(table).repartition(8).materialize()
    loop_s, ray_s, inside_s = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        raw(table)
        loop_s.append(time.perf_counter() - start)
        clock = StageClock.remote()  # type: ignore[attr-defined]
        start = time.perf_counter()
        apply(ds, stage_cls, args, clock, actors=1).materialize()
        ray_s.append(time.perf_counter() - start)
        inside_s.append(sum(seconds for _, seconds in ray.get(clock.read.remote()).values()))
    ray_rate, inside_rate, loop_rate = (
        table.num_rows / float(np.median(t)) for t in (ray_s, inside_s, loop_s)
    )
    return ray_rate, inside_rate, loop_rate


def rows_table(texts: list[str] | None = None, images: list[bytes] | None = None) -> pa.Table:
    n = len(texts or images or [])
    columns = {f.name: pa.nulls(n, f.type) for f in ROW_SCHEMA}
    columns["status"] = pa.array([KEPT] * n)
    if texts:
        columns["text"] = pa.array(texts)
    if images:
        columns["image"] = pa.array(images, pa.binary())
    return pa.table(columns, schema=ROW_SCHEMA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=50_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--skip-datatrove", action="store_true")
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t = time.perf_counter()
        planted = corpus(tmp / "docs", args.documents, args.files)
        console.print(
            f"corpus: {args.documents:,} documents, {len(planted):,} planted near copies "
            f"({time.perf_counter() - t:.0f} s to make)"
        )
        # Ray's workers start cold once per cluster, not once per job: warm them with a
        # small run first, as on a running cluster, and print what that first run cost.
        corpus(tmp / "warm", 2_000, args.files, seed=1)
        cold, _ = run_weft(tmp / "warm", tmp / "weft-warm", "datasketch", "exact")
        console.print(f"warm-up: 2,000 documents on a fresh Ray in {cold:.1f} s")
        results = []
        runs = (("datasketch", "exact"), ("rensa", "exact"), ("datasketch", "estimate"))
        for engine, verify in runs:
            seconds, removed = run_weft(
                tmp / "docs", tmp / f"weft-{engine}-{verify}", engine, verify
            )
            name = f"weft ({engine}, verify {verify})"
            results.append((name, seconds, *score(removed, planted), len(removed)))
        if not args.skip_datatrove:
            seconds, removed = run_datatrove(tmp / "docs", tmp / "datatrove", args.files)
            results.append(("datatrove 0.10.1", seconds, *score(removed, planted), len(removed)))
        table = Table(title=f"near dedup, {args.documents:,} documents, 2 cores, end to end")
        for col in ("tool", "seconds", "documents/s", "recall @ J>=0.8", "precision", "removed"):
            table.add_column(col, justify="left" if col == "tool" else "right")
        for tool, seconds, recall, precision, n in results:
            table.add_row(
                tool,
                f"{seconds:.1f}",
                f"{args.documents / seconds:,.0f}",
                f"{recall:.3f}",
                f"{precision:.3f}",
                f"{n:,}",
            )
        console.print(table)

        lines = (tmp / "docs" / "docs-000.jsonl").read_text().splitlines()
        texts = [json.loads(line)["text"][:300] for line in lines]
        texts = (texts * (LID_TEXTS // len(texts) + 1))[:LID_TEXTS]
    model = load_model()
    lid = stage_vs_loop(
        rows_table(texts=texts),
        LanguageID,
        (LangIdSpec(),),
        lambda t: [predict(model, x) for x in t["text"].to_pylist()],
    )
    rng = np.random.default_rng(0)
    images = [encode(draw(rng, 128)[0], "JPEG") for _ in range(300)]
    detector = load_detector()
    nsfw = stage_vs_loop(
        rows_table(images=images),
        NsfwFilter,
        (NsfwSpec(),),
        lambda t: [detector.detect(bgr(b)) for b in t["image"].to_pylist()],
    )
    models = Table(title="model stages: one Ray Data actor vs the raw model in a loop (1 core)")
    columns = ("stage", "rows", "Ray rows/s", "in-actor rows/s", "raw loop rows/s", "raw / Ray")
    for col in columns:
        models.add_column(col, justify="left" if col == "stage" else "right")
    for name, n, (ray_rate, inside_rate, loop_rate) in (
        ("langid", len(texts), lid),
        ("nsfw", len(images), nsfw),
    ):
        models.add_row(
            name,
            f"{n:,}",
            f"{ray_rate:,.0f}",
            f"{inside_rate:,.0f}",
            f"{loop_rate:,.0f}",
            f"{loop_rate / ray_rate:.2f}x",
        )
    console.print(models)
    ray.shutdown()


if __name__ == "__main__":
    main()
