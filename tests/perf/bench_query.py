"""CLIP model A against model B at query time: for each registered CLIP given, the time to
embed one gold query and answer it from the model's index (vector-only, and the weighted
hybrid with BM25), one query at a time on one thread, as a search replica answers. Run
`weft index` with each model first. Figures are printed, never asserted.

    python -m tests.perf.bench_query drawings-clip/3 drawings-clip/4 \\
        [--gold jobs/gold/drawings-search.yaml] [--hybrid 0.5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from weft.quality.gold import GoldSet
from weft.quality.retrieval import load_index
from weft.registry.versions import resolve
from weft.specs import load_spec


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"{1e3 * statistics.median(ordered):7.2f} {1e3 * p95:7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="registered CLIPs, name/version or name@alias")
    parser.add_argument("--gold", default="jobs/gold/drawings-search.yaml")
    parser.add_argument("--index", default=".weft/index")
    parser.add_argument("--hybrid", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    texts = [q.text for q in load_spec(GoldSet, args.gold).queries]
    print(f"{len(texts)} queries x {args.repeats}, one at a time on one thread; ms median p95")
    print(f"{'model':24} {'image tower':12} {'embed':>15} {'vector':>15} {'hybrid':>15}")
    for model in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            version = resolve(model)
            index, embedder = load_index(version, args.index, Path(tmp))
            embed, vector, hybrid = [], [], []
            for _ in range(args.repeats):
                for text in texts:
                    started = time.perf_counter()
                    query = np.asarray(embedder.embed_texts([text])[0])
                    embed.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    index.search(query, None, 5)
                    vector.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    index.search(query, text, 5, hybrid=args.hybrid)
                    hybrid.append(time.perf_counter() - started)
            tower = type(embedder.model.visual).__name__
            print(f"{model:24} {tower:12} {_ms(embed)} {_ms(vector)} {_ms(hybrid)}")


if __name__ == "__main__":
    main()
