"""Curation stages on Ray Data workers: as tasks or actor pools, each batch timed.

With `pipeline.py`, the only modules of `weft.curate` that know Ray. Kept apart from the
pipeline so a stage's actors import only the stage, not every stage's libraries.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any, ClassVar, NamedTuple, Protocol

import pyarrow as pa
import ray
from ray.data import ActorPoolStrategy, DataContext, Dataset


class Stage(Protocol):
    """A curation stage: one method over a pyarrow batch. `actors` > 0 asks for an actor pool
    of that size (state loaded once per actor); 0 runs the stage as stateless tasks."""

    name: str
    actors: ClassVar[int]

    def __call__(self, batch: pa.Table, /) -> pa.Table: ...


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class StageClock:
    """A run's tallies from every worker: per stage, the rows processed and the seconds
    spent; per input file, the records whose key repeats an earlier record's.

    Restarted if it dies, with its tallies back at zero: `read` tells each incarnation apart.
    """

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self.repeats: dict[str, int] = {}
        self.incarnation = uuid.uuid4().hex

    def add(self, stage: str, rows: int, seconds: float) -> None:
        self.totals[stage][0] += rows
        self.totals[stage][1] += seconds

    def repeated_keys(self, uri: str, count: int) -> None:
        self.repeats[uri] = count

    def read(self) -> tuple[dict[str, list[float]], dict[str, int], str]:
        return dict(self.totals), dict(sorted(self.repeats.items())), self.incarnation


class Tally(NamedTuple):
    """What the clock holds at the end of a run; `whole` is False if it died in the run."""

    totals: dict[str, list[float]]
    repeated_keys: dict[str, int]
    whole: bool


class Clock:
    """The driver's hold on a run's `StageClock`; stages are given its `actor`."""

    def __init__(self, name: str) -> None:
        self.actor = StageClock.options(name=name).remote()  # type: ignore[attr-defined]
        # Not waited for: the actor's worker starts while the run's first tasks do.
        self.first = self.actor.read.remote()

    def read(self) -> Tally:
        try:
            first = ray.get(self.first)[2]
            totals, repeats, incarnation = ray.get(self.actor.read.remote())
        except ray.exceptions.RayActorError:
            return Tally({}, {}, False)
        return Tally(totals, repeats, incarnation == first)


def tell(clock: Any, method: str, *args: Any) -> None:
    """Call the clock and wait, so the driver's final read sees it; a clock that died for good
    loses the tally, never the work."""
    with suppress(ray.exceptions.RayActorError):
        ray.get(getattr(clock, method).remote(*args))


def timed(
    stage: str, run: Callable[[], pa.Table | Iterator[pa.Table]], clock: Any
) -> Iterator[pa.Table]:
    """Yield what `run` produces, adding the rows and the seconds spent on each to the clock.
    A clock that died for good loses the timings, never the batch."""
    start = time.perf_counter()
    out = run()
    for table in [out] if isinstance(out, pa.Table) else out:
        tell(clock, "add", stage, table.num_rows, time.perf_counter() - start)
        yield table
        start = time.perf_counter()


@contextmanager
def one_operator() -> Iterator[None]:
    """Datasets built inside the block start a task on every free CPU at once. For plans
    that fuse into one operator (the ingest): Ray Data's default reserves half
    the cluster for each operator's own use and shares the rest only once the first tasks
    report their output sizes, so a lone operator ran one task at a time at first
    (measured: six one-second tasks on 2 CPUs, 4.3 s -> 3.1 s). Plans with several
    operators (actor pools after tasks) keep the reservation, which stops one from
    starving the others."""
    context = DataContext.get_current()
    saved = context.op_resource_reservation_enabled
    context.op_resource_reservation_enabled = False
    try:
        yield
    finally:
        context.op_resource_reservation_enabled = saved


class _Run:
    """Runs a stage on Ray Data workers, timing every batch it produces."""

    stage_cls: ClassVar[type[Stage]]

    def __init__(self, args: tuple[Any, ...], clock: Any) -> None:
        self.stage = self.stage_cls(*args)
        self.clock = clock

    def __call__(self, batch: pa.Table) -> Iterator[pa.Table]:
        return timed(self.stage.name, partial(self.stage, batch), self.clock)


def apply(
    ds: Dataset,
    stage_cls: type[Stage],
    args: tuple[Any, ...],
    clock: Any,
    actors: int | None = None,
) -> Dataset:
    """`map_batches` one stage over whole blocks: as tasks, or, for a stage with `actors`
    (the class's, or as given), as an actor pool whose actors build the stage once."""
    actors = stage_cls.actors if actors is None else actors
    runner = type(stage_cls.__name__, (_Run,), {"stage_cls": staticmethod(stage_cls)})
    common: dict[str, Any] = {"batch_size": None, "batch_format": "pyarrow"}
    if actors:
        # Fractional CPUs: whole-CPU actors can starve the read tasks on a small machine.
        return ds.map_batches(
            runner,
            fn_constructor_args=(args, clock),
            num_cpus=0.5,
            compute=ActorPoolStrategy(min_size=1, max_size=actors),
            **common,
        )
    return ds.map_batches(runner(args, clock), **common)
