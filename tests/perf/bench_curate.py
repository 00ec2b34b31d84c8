"""Curation throughput: the core pipeline against simply reading and writing the same data.

Prints rows/s for the core of `curate` (read → validate → hash → exact dedup → write →
report; near dedup, language ID and NSFW are measured by bench_near_dedup) on a
synthetic corpus of at least 20,000 pairs, from local folders and from S3 (moto on 127.0.0.1),
and the ratio to a baseline that only reads the same shards and writes them as Parquet, on
the same Ray instance, in the same run. Figures, not assertions.

    python -m tests.perf.bench_curate [--pairs 20000] [--shards 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as pads
import ray
from rich.console import Console
from rich.table import Table

from tests.s3server import running_s3_server
from weft import storage
from weft.curate.pipeline import curate, input_source, list_inputs
from weft.curate.runner import StageClock
from weft.curate.spec import CurateSpec
from weft.demo.corpus import generate
from weft.specs import StorageSpec, parse_spec


def curate_spec(raw: str, out: str, s3: StorageSpec | None) -> CurateSpec:
    data: dict[str, object] = {
        "name": "bench",
        "inputs": [
            {"uri": f"{raw}/pairs", "format": "webdataset"},
            {"uri": f"{raw}/parquet", "format": "parquet", "text_column": "caption"},
        ],
        "output": out,
        # the core pipeline: read, validate, exact dedup, write (the filters have their bench)
        "near_dedup": {"enabled": False},
        "langid": {"enabled": False},
        "nsfw": {"enabled": False},
        "mlflow": {"enabled": False},
    }
    if s3:
        data["storage"] = s3.model_dump()
    return parse_spec(CurateSpec, data)


def read_and_write(spec: CurateSpec) -> tuple[int, float]:
    """The baseline: the same reader, straight to Parquet; no validation, dedup or report."""
    start = time.perf_counter()
    out = storage.resolve(spec.output, spec.storage).join("baseline")
    storage.delete(out)
    source = input_source(list_inputs(spec), spec.batch_size, StageClock.remote())
    ds = ray.data.read_datasource(source)
    ds.write_parquet(out.path, filesystem=out.fs, min_rows_per_file=spec.rows_per_file)
    rows = pads.dataset(out.path, filesystem=out.fs, format="parquet").count_rows()
    return rows, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--shards", type=int, default=16)
    args = parser.parse_args()
    console = Console()
    ray.init(num_cpus=2, include_dashboard=False)
    results: list[tuple[str, int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp, running_s3_server() as s3:
        bucket = s3.new_bucket()
        roots = {
            "local": (str(Path(tmp) / "raw"), str(Path(tmp) / "out"), None),
            "s3": (f"s3://{bucket}/raw", f"s3://{bucket}/out", s3.storage()),
        }
        for where, (raw, out, creds) in roots.items():
            t = time.perf_counter()
            m = generate(raw, pairs=args.pairs, shards=args.shards, documents=0, storage_spec=creds)
            console.print(
                f"[{where}] corpus: {m.pairs} pairs + {m.exact_duplicates} duplicates "
                f"in {time.perf_counter() - t:.1f} s"
            )
            spec = curate_spec(raw, out, creds)
            read_and_write(spec)  # warm-up: worker start, imports, page cache
            base_rows, base_s = read_and_write(spec)
            report = curate(spec)
            rows = report.counts.input_rows
            assert rows == base_rows, (rows, base_rows)
            results.append((where, rows, base_s, report.seconds))
            console.print(report.to_markdown())
    table = Table(title="curate vs read+write (same reader, same Ray, same run)")
    for col in ("input", "rows", "read+write rows/s", "curate rows/s", "curate / read+write"):
        table.add_column(col, justify="left" if col == "input" else "right")
    for where, rows, base_s, cur_s in results:
        table.add_row(
            where,
            f"{rows:,}",
            f"{rows / base_s:,.0f}",
            f"{rows / cur_s:,.0f}",
            f"{base_s / cur_s:.2f}x",
        )
    console.print(table)
    ray.shutdown()


if __name__ == "__main__":
    main()
