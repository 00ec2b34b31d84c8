"""The approximate-nearest-neighbour libraries Weft could index with, measured alike: build
time, index memory, recall@10 against exact search, and single-query latency, at 10k, 100k
and 1M vectors. Figures are printed, never asserted.

The vectors are synthetic: unit vectors drawn around 1,000 random centres (clusters, as
embeddings of real images form), in the served CLIP's 32 dimensions; queries are held-out
vectors of the same distribution. faiss is always measured; usearch and hnswlib when they
are installed (`make bench` installs them). Every library builds and searches on one thread,
as a replica answers on its share of a core.

    python -m tests.perf.bench_index [--sizes 10000 100000 1000000] [--dim 32]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np

QUERIES, K = 1_000, 10
M, EF_CONSTRUCTION = 16, 80


@dataclass(frozen=True)
class Row:
    library: str
    n: int
    build_s: float
    megabytes: float
    recall: float
    p50_ms: float
    p95_ms: float


def vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.standard_normal((1_000, dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.standard_normal((n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    flat = faiss.IndexFlatIP(data.shape[1])
    flat.add(data)
    return flat.search(queries, K)[1]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def timed_queries(
    search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    found, times = [], []
    for q in queries:
        start = time.perf_counter()
        found.append(search(q))
        times.append(time.perf_counter() - start)
    return np.array(found), np.array(times) * 1e3


def bench_faiss(
    data: np.ndarray, queries: np.ndarray, truth: np.ndarray, efs: tuple[int, ...] = (64, 128)
) -> list[Row]:
    """One HNSW graph, searched at each `ef`."""
    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(data.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.add(data)
    build = time.perf_counter() - start
    size = faiss.serialize_index(index).nbytes / 1e6
    rows = []
    for ef in efs:
        index.hnsw.efSearch = ef
        found, ms = timed_queries(lambda q: index.search(q[None], K)[1][0], queries)
        p50, p95 = np.percentile(ms, [50, 95])
        rows.append(
            Row(f"faiss HNSW ef={ef}", len(data), build, size, recall(found, truth), p50, p95)
        )
    return rows


def bench_usearch(data: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> Row:
    from usearch.index import Index

    start = time.perf_counter()
    index = Index(
        ndim=data.shape[1],
        metric="ip",
        connectivity=M,
        expansion_add=EF_CONSTRUCTION,
        expansion_search=64,
    )
    index.add(np.arange(len(data)), data, threads=1)
    build = time.perf_counter() - start
    found, ms = timed_queries(lambda q: index.search(q, K, threads=1).keys, queries)
    return Row(
        "usearch ef=64",
        len(data),
        build,
        index.memory_usage / 1e6,
        recall(found, truth),
        *np.percentile(ms, [50, 95]),
    )


def bench_hnswlib(data: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> Row:
    import hnswlib

    start = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=data.shape[1])
    index.init_index(max_elements=len(data), M=M, ef_construction=EF_CONSTRUCTION)
    index.set_num_threads(1)
    index.add_items(data)
    build = time.perf_counter() - start
    index.set_ef(64)
    found, ms = timed_queries(lambda q: index.knn_query(q, K)[0][0], queries)
    megabytes = len(data) * (data.shape[1] * 4 + M * 2 * 4) / 1e6  # vectors + level-0 links
    return Row(
        "hnswlib ef=64",
        len(data),
        build,
        megabytes,
        recall(found, truth),
        *np.percentile(ms, [50, 95]),
    )


def bench_exact(data: np.ndarray, queries: np.ndarray) -> Row:
    """Exact inner-product search: the baseline every recall is measured against."""
    flat = faiss.IndexFlatIP(data.shape[1])
    flat.add(data)
    _, ms = timed_queries(lambda q: flat.search(q[None], K)[1][0], queries[:100])
    return Row("exact (flat)", len(data), 0.0, data.nbytes / 1e6, 1.0, *np.percentile(ms, [50, 95]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=32)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)  # single-query latency on one core, as a replica answers
    rng = np.random.default_rng(0)
    rows = []
    for n in args.sizes:
        data = vectors(n + QUERIES, args.dim, rng)
        data, queries = data[:n], data[n:]
        truth = exact(data, queries)
        rows.append(bench_exact(data, queries))
        rows += bench_faiss(data, queries, truth)
        for name, bench in (("usearch", bench_usearch), ("hnswlib", bench_hnswlib)):
            if importlib.util.find_spec(name):
                rows.append(bench(data, queries, truth))
    header = ("library", "vectors", "build s", "MB", "recall@10", "p50 ms", "p95 ms")
    print("\n{:<20} {:>9} {:>8} {:>8} {:>9} {:>7} {:>7}".format(*header))
    for r in rows:
        print(
            f"{r.library:<20} {r.n:>9,} {r.build_s:>8.1f} {r.megabytes:>8.1f} "
            f"{r.recall:>9.3f} {r.p50_ms:>7.3f} {r.p95_ms:>7.3f}"
        )


if __name__ == "__main__":
    main()
