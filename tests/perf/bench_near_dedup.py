"""Near-duplicate text against a peer, as a user runs it and on a warm cluster; the scaling of
a cold run; and the model stages against their raw models.

1. Weft against datatrove's MinHash dedup pipeline (its defaults: 5-grams, 14 x 8 hashes,
   2 workers) on two JSONL corpora of 50,000 documents with 10% planted near copies at known
   Jaccard similarities (0.5-0.95):
   - `uniform`: 200-400 words of a flat 3,000-word vocabulary, copies by word substitutions
     (the corpus docs/benchmarks.md's first figures came from);
   - `web`: log-normal lengths (20-20,000 words, median 250, mean about 450), paragraphs and
     sentences, Zipf word frequencies, copies by substitutions, insertions, deletions and
     paragraph moves (`webcorpus.py`).
   Weft runs twice per corpus: COLD, `weft curate spec.yaml` as a subprocess that starts
   its own Ray, timed from outside (what a user waits for: interpreter, imports, Ray start,
   the pipeline, Ray's shutdown); and WARM, `curate(spec)` in this process on a Ray whose
   workers a small run has already started (a long-running cluster). datatrove runs once
   per corpus, in the same session, without Ray. Documents/s end to end, the ratio to
   datatrove, recall at Jaccard >= 0.8 and precision; the phases of both Weft runs, and of
   the cold run its worker processes and the CPU time of the driver, the workers and Ray's
   own processes (GCS, raylet, dashboard, agents), sampled over the CLI's process tree.
2. Language ID and NSFW as Ray Data actor stages (one actor) against the raw model called in
   a plain loop on the same inputs (medians of three alternating runs): the ratio is Ray's
   overhead, actor start-up included.

With --scaling instead: cold CLI runs of Weft alone on 50k, 200k and 1M documents (`web`,
12,500 documents per file), each with documents/s and the peak memory of the driver, of
Ray's workers (the sum of their RSS, in which each worker counts again the object-store
pages it has touched; the same sum less shared pages; the largest worker's RSS), of Ray's
own processes, of the object store (/dev/shm) and of Ray's spill folder, sampled every
0.2 s over the CLI's process tree. The 1M corpus is 3.8 GB of JSONL and takes minutes to
make: --cache keeps it.

Figures, never assertions. Needs the bench extras: pip install -e '.[dev,bench]'.

    python -m tests.perf.bench_near_dedup [--documents 50000] [--corpora uniform,web]
        [--skip-datatrove] [--skip-models] [--cache DIR]
    python -m tests.perf.bench_near_dedup --scaling [--sizes 50000,200000,1000000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.dataset as pads
import ray
import yaml
from rich.console import Console
from rich.table import Table

from tests.perf import webcorpus
from weft.curate.langid import LanguageID, load_model, predict
from weft.curate.nsfw import NsfwFilter
from weft.curate.runner import StageClock, apply
from weft.curate.schema import KEPT, ROW_SCHEMA
from weft.curate.spec import LangIdSpec
from weft.demo.corpus import draw, encode, near_copy, vocabulary
from weft.safety import bgr, load_detector
from weft.specs import NsfwSpec

JACCARDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
LID_TEXTS = 200_000  # about 10 s of the raw model: the actor's start-up is a fair share
DOCS_PER_FILE = 12_500  # the default run's 50,000 documents in 4 files; the scaling run too
GiB = 2**30
console = Console()
Planted = list[tuple[str, str, float]]


# ---------------------------------------------------------------------------- corpora


def corpus(folder: Path, documents: int, files: int, seed: int = 0) -> Planted:
    """The `uniform` corpus: JSONL files of {"id", "text"}; 10% of the documents are near
    copies of others, planted at the JACCARDS levels. Returns the planted (original id, copy
    id, true Jaccard)."""
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


GENERATORS: dict[str, Callable[[Path, int, int], Planted]] = {
    "uniform": corpus,
    "web": webcorpus.write,
}


def make_corpus(
    name: str, documents: int, root: Path, files: int | None = None
) -> tuple[Path, Planted]:
    """The corpus `name` of `documents` under `root` (reused if a finished copy is there),
    in `files` files (default: DOCS_PER_FILE documents a file)."""
    folder = root / f"{name}-{documents}"
    done = folder / "planted.json"
    if done.exists():
        console.print(f"corpus {name}: {documents:,} documents, reused from {folder}")
        return folder / "docs", [tuple(p) for p in json.loads(done.read_text())]  # type: ignore[misc]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    files = files or max(1, documents // DOCS_PER_FILE)
    planted = GENERATORS[name](folder / "docs", documents, files)
    done.write_text(json.dumps(planted))
    size = sum(f.stat().st_size for f in (folder / "docs").iterdir())
    console.print(
        f"corpus {name}: {documents:,} documents in {files} files ({size / 2**20:,.0f} MiB), "
        f"{len(planted):,} planted near copies ({time.perf_counter() - start:.0f} s to make)"
    )
    return folder / "docs", planted


def score(removed: set[str], planted: Planted) -> tuple[float, float]:
    """Recall: planted pairs at Jaccard >= 0.8 with one of the two removed. Precision: removed
    documents that belong to such a pair, over all removed documents."""
    similarity = {doc: j for a, b, j in planted for doc in (a, b)}
    high = [a in removed or b in removed for a, b, j in planted if j >= 0.8]
    hits = [similarity.get(doc, 0.0) >= 0.8 for doc in removed]
    return sum(high) / len(high), (sum(hits) / len(hits) if hits else 1.0)


# ---------------------------------------------------------------------------- runs


@dataclass
class Peaks:
    """Peak resident memory (bytes) over a run, sampled over a process tree."""

    driver: int = 0
    workers_sum: int = 0
    worker_max: int = 0
    worker_max_private: int = 0  # the largest worker's RSS less its shared pages
    workers_private: int = 0  # the sum of RSS less shared pages (object store, libraries)
    ray_system: int = 0  # raylet, GCS, dashboard, agents, monitors
    object_store: int = 0  # /dev/shm in use above the run's start (the whole machine's)
    spilled: int = 0  # Ray's spill folder, at its largest
    workers_started: int = 0  # worker processes, for tasks and for actors
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds: driver, workers, ray


@dataclass
class Result:
    tool: str
    corpus: str
    mode: str  # cold, warm or "" (datatrove)
    documents: int
    seconds: float
    recall: float = float("nan")
    precision: float = float("nan")
    removed: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    peaks: Peaks | None = None
    bind_retries: bool = False

    @property
    def rate(self) -> float:
        return self.documents / self.seconds


class TreeSampler:
    """Samples the RSS of a process and all its descendants every `interval` seconds: the
    CLI's driver, and the Ray it starts (GCS, raylet, dashboard, agents, workers)."""

    def __init__(self, pid: int, spill_root: Path | None, interval: float = 0.2) -> None:
        self.root = psutil.Process(pid)
        self.spill_root = spill_root
        self.interval = interval
        self.peaks = Peaks()
        self.seen: dict[int, psutil.Process] = {pid: self.root}
        self.kind: dict[int, str] = {pid: "driver"}
        self.cpu: dict[int, float] = {}
        self.shm_base = shutil.disk_usage("/dev/shm").used
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        tick = 0
        while not self.stop.is_set():
            if tick % 5 == 0:  # the tree, once a second: listing every process costs
                self._discover()
                self._spill()
            self._sample()
            tick += 1
            self.stop.wait(self.interval)

    def _discover(self) -> None:
        try:
            for p in self.root.children(recursive=True):
                if p.pid not in self.seen:
                    self.seen[p.pid] = p
        except psutil.Error:
            pass

    def _kind(self, p: psutil.Process) -> str:
        """driver, worker (a task's or an actor's) or ray (GCS, raylet, dashboard, agents)."""
        if p.pid not in self.kind:
            argv = p.cmdline()
            first = Path(argv[0]).name if argv else p.name()
            agent = first in ("ray::DashboardAgent", "ray::RuntimeEnvAgent")
            worker = first.startswith("ray::") or any(a.endswith("default_worker.py") for a in argv)
            self.kind[p.pid] = "worker" if worker and not agent else "ray"
        return self.kind[p.pid]

    def _sample(self) -> None:
        workers, private, system, own = [], 0, 0, [0]
        for pid, p in list(self.seen.items()):
            try:
                with p.oneshot():
                    mem = p.memory_info()
                    times = p.cpu_times()
                    kind = self._kind(p)
            except psutil.Error:
                del self.seen[pid]
                continue
            self.cpu[pid] = times.user + times.system
            if kind == "driver":
                self.peaks.driver = max(self.peaks.driver, mem.rss)
            elif kind == "worker":
                workers.append(mem.rss)
                own.append(mem.rss - getattr(mem, "shared", 0))
                private += own[-1]
            else:
                system += mem.rss
        pk = self.peaks
        pk.workers_sum = max(pk.workers_sum, sum(workers))
        pk.worker_max = max([pk.worker_max, *workers])
        pk.worker_max_private = max([pk.worker_max_private, *own])
        pk.workers_private = max(pk.workers_private, private)
        pk.ray_system = max(pk.ray_system, system)
        pk.object_store = max(pk.object_store, shutil.disk_usage("/dev/shm").used - self.shm_base)
        pk.workers_started = sum(k == "worker" for k in self.kind.values())
        pk.cpu = {k: 0.0 for k in ("driver", "worker", "ray")}
        for pid, seconds in self.cpu.items():
            pk.cpu[self.kind[pid]] += seconds

    def _spill(self) -> None:
        if self.spill_root is None:
            return
        total = 0
        for folder in self.spill_root.glob("**/*spill*"):
            if folder.is_dir():
                total += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        self.peaks.spilled = max(self.peaks.spilled, total)

    def finish(self) -> Peaks:
        self.stop.set()
        self.thread.join()
        return self.peaks

    def reap(self, timeout: float = 30) -> None:
        """Wait for every process of the tree to be gone, so the next run starts clean (a
        lingering dashboard agent holds its port, and the next agent waits seconds for it)."""
        self._discover()
        psutil.wait_procs([p for pid, p in self.seen.items() if pid != self.root.pid], timeout)


def spec_dict(src: Path, out: Path, engine: str = "datasketch", verify: str = "exact") -> dict:
    """The benchmark's spec: read, validate, exact and near dedup, write; no language ID,
    no NSFW, no MLflow."""
    return {
        "name": f"bench-{engine}-{verify}",
        "inputs": [{"uri": str(src), "format": "jsonl", "key_column": "id"}],
        "output": str(out),
        "validate": {"max_text_chars": 1_000_000},
        "near_dedup": {"engine": engine, "verify": verify},
        "langid": {"enabled": False},
        "nsfw": {"enabled": False},
        "mlflow": {"enabled": False},
    }


def published(out: Path) -> Path:
    """The folder of the output's published version (older layouts: the output itself)."""
    stamp = out / "_PUBLISHED"
    if stamp.exists():
        return out / "versions" / json.loads(stamp.read_text())["run"]
    return out


def near_removed(out: Path) -> set[str]:
    table = pads.dataset(published(out) / "removed", format="parquet").to_table(
        columns=["key", "stage"]
    )
    keys, stages = table["key"].to_pylist(), table["stage"].to_pylist()
    return {k for k, s in zip(keys, stages, strict=True) if s == "near_dedup"}


def weft_command() -> list[str]:
    script = Path(sys.executable).parent / "weft"
    return [str(script)] if script.exists() else [sys.executable, "-m", "weft.cli"]


def run_cold(src: Path, work: Path, name: str, documents: int) -> Result:
    """`weft curate spec.yaml` in a subprocess with a fresh Ray, timed from outside, its
    process tree's memory sampled."""
    work.mkdir(parents=True)
    out, spec_path = work / "out", work / "spec.yaml"
    # Ray's own folder for the run (its spill folder, its logs), short: socket paths are
    # limited to 107 bytes
    ray_tmp = Path(tempfile.mkdtemp(prefix="wr-"))
    spec_path.write_text(yaml.safe_dump(spec_dict(src, out)))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(ray_tmp)
    log = work / "cli.log"
    try:
        with open(log, "wb") as log_file:
            start = time.perf_counter()
            proc = subprocess.Popen(
                [*weft_command(), "curate", str(spec_path)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
            )
            sampler = TreeSampler(proc.pid, ray_tmp)
            code = proc.wait()
            seconds = time.perf_counter() - start
        peaks = sampler.finish()
        sampler.reap()
        if code != 0:
            tail = log.read_text(errors="replace").splitlines()[-30:]
            raise RuntimeError(f"weft curate exited {code}:\n" + "\n".join(tail))
        agent_logs = ray_tmp.glob("ray/session_*/logs/dashboard_agent.log")
        retried = any("Failed to bind" in p.read_text(errors="replace") for p in agent_logs)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    report = json.loads((published(out) / "report.json").read_text())
    return Result(
        "weft (datasketch, verify exact)",
        name,
        "cold",
        documents,
        seconds,
        phases=report["phases"],
        peaks=peaks,
        bind_retries=retried,
    )


def run_warm(src: Path, out: Path, name: str, documents: int, engine: str, verify: str) -> Result:
    from weft.curate.pipeline import curate
    from weft.curate.spec import CurateSpec
    from weft.specs import parse_spec

    spec = parse_spec(CurateSpec, spec_dict(src, out, engine, verify))
    start = time.perf_counter()
    report = curate(spec)
    seconds = time.perf_counter() - start
    return Result(
        f"weft ({engine}, verify {verify})", name, "warm", documents, seconds, phases=report.phases
    )


def run_datatrove(src: Path, work: Path, name: str, documents: int) -> tuple[Result, set[str]]:
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

    files = len(list(src.glob("*.jsonl")))
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
    return Result("datatrove 0.10.1", name, "", documents, seconds), removed


def scored(result: Result, removed: set[str], planted: Planted) -> Result:
    result.recall, result.precision = score(removed, planted)
    result.removed = len(removed)
    return result


# ---------------------------------------------------------------------------- model stages


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
        totals = ray.get(clock.read.remote())
        totals = totals[0] if isinstance(totals, tuple) else totals  # (totals, incarnation)
        inside_s.append(sum(seconds for _, seconds in totals.values()))
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


def model_stages(texts: list[str]) -> None:
    ray.init(num_cpus=2, include_dashboard=False)
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
    ray.shutdown()
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


# ---------------------------------------------------------------------------- reports


def machine() -> str:
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} cores, {psutil.virtual_memory().total / GiB:.0f} GiB, "
        f"{platform.python_version()}, ray {ray.__version__}; load average {load:.1f} before "
        "the bench" + (" (something else is running: figures are noisy)" if load > 1.0 else "")
    )


def gib(n: int) -> str:
    return f"{n / GiB:.2f}"


def print_comparison(results: list[Result]) -> None:
    by_corpus: dict[str, list[Result]] = {}
    for r in results:
        by_corpus.setdefault(r.corpus, []).append(r)
    lines = [
        "| corpus | tool | run | s | docs/s | vs datatrove | recall at J >= 0.8 | precision "
        "| removed |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rs in by_corpus.items():
        peer = next((r for r in rs if r.tool.startswith("datatrove")), None)
        for r in rs:
            ratio = f"{peer.seconds / r.seconds:.1f}x" if peer else "-"
            lines.append(
                f"| {name} | {r.tool} | {r.mode or '-'} | {r.seconds:.1f} | {r.rate:,.0f} "
                f"| {ratio} | {r.recall:.3f} | {r.precision:.3f} | {r.removed:,} |"
            )
    print("\nnear dedup, end to end (copy into docs/benchmarks.md):\n")
    print("\n".join(lines))
    cold = [r for r in results if r.mode == "cold"]
    default = [r for r in results if r.mode and r.tool.startswith("weft (datasketch, verify exact")]
    if default:
        print("\nwhere the wall time goes (s): cold (a `weft curate` subprocess) and warm runs\n")
        print(
            "| corpus | run | wall | ingest | dedup | filters and write | outside the phases "
            "(cold: interpreter, imports, Ray start and stop) | worker processes "
            "(tasks, actors) | CPU s: driver | workers | Ray's own processes |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in default:
            p, k = r.phases, r.peaks
            cpu = k.cpu if k else {}
            other = (
                f"{k.workers_started} | {cpu.get('driver', 0):.1f} | {cpu.get('worker', 0):.1f} "
                f"| {cpu.get('ray', 0):.1f}"
                if k
                else "- | - | - | -"
            )
            print(
                f"| {r.corpus} | {r.mode} | {r.seconds:.1f} | {p.get('ingest', 0):.1f} "
                f"| {p.get('dedup', 0):.1f} | {p.get('filters and write', 0):.1f} "
                f"| {r.seconds - sum(p.values()):.1f} | {other} |"
            )
        if any(r.bind_retries for r in cold):
            print(
                "\nnote: a cold run's dashboard agent found its port taken (another Ray on this "
                "machine) and retried for about 3 s."
            )


def print_scaling(results: list[Result]) -> None:
    print("\nscaling: cold `weft curate`, web corpus (copy into docs/benchmarks.md):\n")
    print(
        "| documents | s | docs/s | ingest | dedup | filters and write | driver peak GiB "
        "| workers peak GiB (sum of RSS) | of it private | largest worker GiB (private) "
        "| Ray processes GiB | object store GiB | spilled GiB | recall | precision |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        p, k = r.phases, r.peaks or Peaks()
        print(
            f"| {r.documents:,} | {r.seconds:.0f} | {r.rate:,.0f} | {p.get('ingest', 0):.0f} "
            f"| {p.get('dedup', 0):.0f} | {p.get('filters and write', 0):.0f} "
            f"| {gib(k.driver)} | {gib(k.workers_sum)} | {gib(k.workers_private)} "
            f"| {gib(k.worker_max)} ({gib(k.worker_max_private)}) "
            f"| {gib(k.ray_system)} | {gib(k.object_store)} | {gib(k.spilled)} "
            f"| {r.recall:.3f} | {r.precision:.3f} |"
        )


# ---------------------------------------------------------------------------- main


def compare(args: argparse.Namespace, root: Path, work: Path) -> None:
    corpora = {name: make_corpus(name, args.documents, root) for name in args.corpora.split(",")}
    results: list[Result] = []
    # Cold first, with no Ray in this process: each run starts its own and stops it.
    for name, (src, planted) in corpora.items():
        r = run_cold(src, work / f"cold-{name}", name, args.documents)
        results.append(scored(r, near_removed(work / f"cold-{name}" / "out"), planted))
        console.print(f"{name}: cold weft curate {r.seconds:.1f} s")
    if not args.skip_datatrove:
        for name, (src, planted) in corpora.items():
            r, removed = run_datatrove(src, work / f"datatrove-{name}", name, args.documents)
            results.append(scored(r, removed, planted))
            console.print(f"{name}: datatrove {r.seconds:.1f} s")
    # Warm: Ray's workers start once per cluster, not once per job. A small run starts
    # them, as on a running cluster; then each measured run.
    ray.init(num_cpus=2, include_dashboard=False)
    warm_src, _ = make_corpus("uniform", 2_000, root, files=4)
    t = time.perf_counter()
    run_warm(warm_src, work / "warm-up", "warm-up", 2_000, "datasketch", "exact")
    console.print(f"warm-up: 2,000 documents on a fresh Ray in {time.perf_counter() - t:.1f} s")
    variants = [("datasketch", "exact")]
    if not args.skip_variants:
        variants += [("rensa", "exact"), ("datasketch", "estimate")]
    for name, (src, planted) in corpora.items():
        for engine, verify in variants if name == "uniform" else variants[:1]:
            out = work / f"warm-{name}-{engine}-{verify}"
            r = run_warm(src, out, name, args.documents, engine, verify)
            results.append(scored(r, near_removed(out), planted))
            console.print(f"{name}: warm {r.tool} {r.seconds:.1f} s")
    ray.shutdown()
    order = {"cold": 0, "warm": 1, "": 2}
    results.sort(key=lambda r: (list(corpora).index(r.corpus), order[r.mode]))
    print_comparison(results)
    if not args.skip_models:
        src = corpora[next(iter(corpora))][0]
        lines = next(src.glob("*.jsonl")).read_text().splitlines()
        model_stages([json.loads(line)["text"][:300] for line in lines])


def scaling(args: argparse.Namespace, root: Path, work: Path) -> None:
    results = []
    for documents in (int(s) for s in args.sizes.split(",")):
        src, planted = make_corpus("web", documents, root)
        r = run_cold(src, work / f"scale-{documents}", "web", documents)
        results.append(scored(r, near_removed(work / f"scale-{documents}" / "out"), planted))
        shutil.rmtree(work / f"scale-{documents}")
        if not args.cache:
            shutil.rmtree(src.parent)
        console.print(f"{documents:,} documents: {r.seconds:.0f} s, {r.rate:,.0f} docs/s")
        print_scaling(results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=50_000)
    parser.add_argument("--corpora", default="uniform,web", help="of: uniform, web")
    parser.add_argument("--skip-datatrove", action="store_true")
    parser.add_argument("--skip-variants", action="store_true", help="warm rensa and estimate")
    parser.add_argument("--skip-models", action="store_true", help="the model-stage figures")
    parser.add_argument("--scaling", action="store_true", help="cold runs at --sizes instead")
    parser.add_argument("--sizes", default="50000,200000,1000000")
    parser.add_argument("--cache", type=Path, help="keep and reuse the corpora here")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress, when piped
    console.print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-near-dedup-") as tmp_name:
        tmp = Path(tmp_name)
        root = args.cache or tmp / "corpora"
        (scaling if args.scaling else compare)(args, root, tmp / "runs")
    console.print(
        "load averages (1, 5, 15 min) at the end, this bench's own included: "
        + ", ".join(f"{x:.1f}" for x in os.getloadavg())
    )


if __name__ == "__main__":
    main()
