"""A sweep's overhead: N trials of `weft tune` against the same N configs run one after
another as `weft train` commands, each timed from outside as a user waits for it. Figures,
never assertions.

Every run trains clip-tiny on the same curated demo pairs (1 worker of 0.5 CPU, so two
trials fit side by side on 2 cores), one config per learning rate; the sweep runs them with
no scheduler (every trial to its end), one at a time and then two at a time.

    python -m tests.perf.bench_sweep [--trials 3] [--steps 30]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

console = Console()


def weft(*args: str, cwd: Path) -> float:
    """Seconds one `weft` command took, run as a fresh process."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("weft")), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"weft {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def base_spec(data: Path, out: Path, steps: int) -> dict[str, Any]:
    return {
        "name": "bench-base",
        "model": "clip-tiny",
        "data": {"uri": str(data), "val_percent": 10},
        "optim": {"lr": 1e-3, "warmup_steps": 5, "max_steps": steps, "batch_size": 32},
        "workers": {"count": 1, "cpus": 0.5},
        "checkpoint": {"every_steps": steps},
        "eval": {"every_steps": steps, "batches": 2},
        "output": str(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    rates = [1e-3 * 2**i for i in range(args.trials)]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        root = Path(tmp)
        console.print("making and curating the demo corpus ...")
        weft("demo-data", str(root / "raw"), "--pairs", "1000", cwd=root)
        spec = yaml.safe_load((Path("pipelines/demo.yaml")).read_text())
        spec["inputs"] = [
            {**i, "uri": str(root / "raw" / Path(i["uri"]).name)} for i in spec["inputs"]
        ]
        spec |= {"output": str(root / "curated"), "mlflow": {"enabled": False}}
        (root / "curate.yaml").write_text(yaml.safe_dump(spec))
        weft("curate", str(root / "curate.yaml"), cwd=root)
        base = base_spec(root / "curated", root / "runs", args.steps)
        sequential = 0.0
        for i, lr in enumerate(rates):
            one = base | {"name": f"bench-train-{i}", "optim": base["optim"] | {"lr": lr}}
            (root / f"train-{i}.yaml").write_text(yaml.safe_dump(one))
            sequential += weft("train", str(root / f"train-{i}.yaml"), cwd=root)
        console.print(f"{args.trials} x weft train, one after another: {sequential:.1f} s")
        rows = [("weft train x N, sequential", sequential, 1.0)]
        for concurrent in (1, 2):
            sweep = {
                "name": f"bench-sweep-{concurrent}",
                "base": base,
                "space": {"optim.lr": {"grid": rates}},
                "scheduler": {"name": "none"},
                "concurrent": concurrent,
                "output": str(root / "sweeps"),
            }
            (root / "sweep.yaml").write_text(yaml.safe_dump(sweep))
            seconds = weft("tune", str(root / "sweep.yaml"), cwd=root)
            rows.append((f"weft tune, {concurrent} at a time", seconds, seconds / sequential))
            console.print(f"weft tune, {concurrent} trial(s) at a time: {seconds:.1f} s")
    print(
        f"\n{args.trials} configs of clip-tiny, {args.steps} steps each"
        " (copy into docs/benchmarks.md):\n"
    )
    print("\n| run | s | vs sequential weft train |")
    print("|---|---:|---:|")
    for name, seconds, ratio in rows:
        print(f"| {name} | {seconds:.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
