"""Training throughput: Weft's Ray Train loop against a plain single-process PyTorch loop,
then DDP against FSDP2 and DeepSpeed ZeRO-2/3 on 2 workers. Figures, never assertions.

Every run trains the registry's "clip-tiny" on the same curated demo pairs, batch 32, with
the same optimiser (AdamW, warm-up + cosine, clipping) and the same preprocessing
(`weft.train.data.preprocess`). The plain loop decodes its batches inline; its "decoded
beforehand" row is the compute-only ceiling. Ray Train runs stream through Ray Data on the
same 2 cores; their samples/s is the loop's own figure (logged to MLflow every 10 steps,
evaluation and checkpoints excluded) over the steps after the first 20, and the plain loop
is timed over the same steps. A Ray Train worker computes on floor(CPUs) threads (Ray's
rule), so 1 worker of 1 CPU leaves the other core to Ray Data, as data workers run beside
accelerators; it is compared with the plain loop on 1 thread, and 2 workers with it on 2.

    python -m tests.perf.bench_train [--loops-only]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
import ray
import torch
from rich.console import Console
from rich.table import Table

from weft.curate.pipeline import curate
from weft.curate.spec import CurateSpec
from weft.demo.corpus import generate
from weft.models import registry
from weft.models.tokenizer import Tokenizer
from weft.specs import parse_spec
from weft.train.data import COLUMNS, preprocess, split_side
from weft.train.prepared import adamw, lr_lambda
from weft.train.run import train
from weft.train.spec import TrainSpec
from weft.train.tasks import CLIPTask

PAIRS = 10_000  # one epoch holds every step of the 1-worker runs
STEPS = 250
WARMUP = 20  # steps left out of every figure
console = Console()


def spec(data: str, out: str, **overrides: Any) -> TrainSpec:
    body: dict[str, Any] = {
        "name": "bench-clip",
        "model": "clip-tiny",
        "data": {"uri": data, "val_percent": 5},
        "optim": {"lr": 1e-3, "warmup_steps": 10, "max_steps": STEPS, "batch_size": 32},
        "workers": {"count": 1, "cpus": 1},  # 1 thread; Ray Data has the other CPU
        "checkpoint": {"every_steps": STEPS},
        "eval": {"every_steps": STEPS, "batches": 1},
        "output": out,
        "mlflow": {"experiment": "bench-train"},
    }
    return parse_spec(TrainSpec, body | overrides)


def ray_train(s: TrainSpec) -> float:
    """Samples/s of a Ray Train run over the loop's own logged windows after WARMUP: each
    window holds the same number of samples, so their harmonic mean is samples / time."""
    result = train(s)
    assert result.run_id
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "samples_per_s")
    return statistics.harmonic_mean([m.value for m in history if m.step > WARMUP])


def plain_loop(
    s: TrainSpec, rows: pa.Table, tokenizer: Tokenizer, threads: int, decoded: bool = False
) -> float:
    """Samples/s of a single-process loop with the same model, optimiser and preprocessing."""
    torch.set_num_threads(threads)
    torch.manual_seed(s.seed)
    model = registry.build(s.model)
    optimizer = adamw(model, s.optim)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(s.optim))
    task = CLIPTask(model, tokenizer, s)
    _, config = registry.config(s.model)
    inputs = {
        "tokenizer": tokenizer.to_str(),
        "size": registry.image_size(config),
        "length": config.text.context_length,  # type: ignore[attr-defined]
        "augment": s.data.augment,
        "word_dropout": s.data.word_dropout,
    }
    size = s.optim.batch_size
    slices = [rows.slice(i, size) for i in range(0, len(rows) - size + 1, size)]
    ready = [preprocess(b, **inputs) for b in slices] if decoded else None
    step, started = 0, 0.0
    while step < STEPS:
        for i, part in enumerate(slices):
            arrays = ready[i] if ready else preprocess(part, **inputs)
            batch = {k: torch.from_numpy(v) for k, v in arrays.items()}
            task.loss(model, batch).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.optim.grad_clip)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            task.after_step(model)
            step += 1
            if step == WARMUP:
                started = time.perf_counter()
            if step == STEPS:
                break
    return (STEPS - WARMUP) * size / (time.perf_counter() - started)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="weft-bench-train-"))
    os.environ.setdefault("WEFT_HOME", str(root / "home"))
    ray.init(num_cpus=2, include_dashboard=False)
    generate(str(root / "raw"), pairs=PAIRS, shards=4, documents=10)
    curated = str(root / "curated")
    curate(
        parse_spec(
            CurateSpec,
            {
                "name": "bench-train-data",
                "inputs": [{"uri": str(root / "raw" / "pairs"), "format": "webdataset"}],
                "output": curated,
                "langid": {"enabled": False},
                "nsfw": {"enabled": False},
                "mlflow": {"enabled": False},
            },
        )
    )
    base = spec(curated, str(root / "runs"))
    table = pq.read_table(Path(curated) / "data", columns=COLUMNS)
    rows = split_side(table, base.data.val_percent, held_out=False)
    tokenizer = Tokenizer.train(
        rows["text"].to_pylist(),
        vocab_size=registry.config(base.model)[1].text.vocab_size,  # type: ignore[attr-defined]
    )
    one = plain_loop(base, rows, tokenizer, 1)
    figures = [
        ("plain PyTorch, decoding inline, 1 thread", one, one),
        (
            "plain PyTorch, decoded beforehand, 1 thread",
            plain_loop(base, rows, tokenizer, 1, True),
            one,
        ),
        ("Ray Train + Ray Data, 1 worker of 1 CPU", ray_train(base), one),
    ]
    two = plain_loop(base, rows, tokenizer, 2)
    figures.append(("plain PyTorch, decoding inline, 2 threads", two, two))
    strategies = [
        ("ddp", {"name": "ddp"}),
        ("fsdp2", {"name": "fsdp"}),
        ("deepspeed zero-2", {"name": "deepspeed", "zero_stage": 2}),
        ("deepspeed zero-3", {"name": "deepspeed", "zero_stage": 3}),
    ]
    per_strategy = []
    for label, strategy in strategies if "--loops-only" not in sys.argv else []:
        job = spec(
            curated,
            str(root / "runs"),
            name=f"bench-{label.replace(' ', '-')}",
            strategy=strategy,
            workers={"count": 2, "cpus": 0.5},  # 1 thread each; Ray Data has 1 CPU
        )
        per_strategy.append((f"{label}, 2 workers of 1 thread", ray_train(job), two))
    ray.shutdown()

    out = Table(title=f"clip-tiny, batch 32 per worker, {STEPS} steps, {len(rows)} train pairs")
    for column in ("loop", "samples/s", "vs plain inline, as many threads"):
        out.add_column(column, justify="left" if column == "loop" else "right")
    for label, rate, against in figures + per_strategy:
        out.add_row(label, f"{rate:,.0f}", f"{rate / against:.2f}x")
    console.print(out)
    for label, rate, _ in per_strategy[1:]:
        ddp = per_strategy[0][1]
        console.print(f"{label.split(',')[0]} / ddp: {rate / ddp:.2f}x")


if __name__ == "__main__":
    main()
