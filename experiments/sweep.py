"""Study sweeps: a grid of points × seeds × methods, run in parallel and resumable, here or on a cluster.

A study supplies one function of a grid point that returns a row::

    def evaluate(point: dict, seed: int, method: str) -> dict:      # module level: workers import it
        ...
        return {"psnr_db": 27.1, "snr_est_db": 9.8}

    tasks = grid([{"snr_db": s, "delay_spread_s": d} for s in (0, 10, 20) for d in (30e-9, 300e-9)],
                 seeds=range(4), methods=["jscc", "digital"])
    summary = run_sweep(evaluate, tasks, Path("runs/mismatch/rows.jsonl"))                 # local processes
    summary = run_sweep(evaluate, tasks, path, cluster="tcp://10.0.0.5:8786")             # a Dask cluster

Both paths are the same code: a :class:`concurrent.futures.Executor` (a process pool over the local
cores, or a Dask ``distributed`` client's executor) receives one task per grid point, and the calling
process appends each row to the JSON-lines file as it completes (flushed, so a crash or Ctrl-C loses
nothing). Re-running the same sweep skips every task whose row is already there with ``status`` "ok";
failed tasks are written with ``status`` "error" and the traceback, and retried by the next run.

Every row carries ``key`` (the task's identity), ``point``, ``seed``, ``method``, the function's values,
``status``, ``elapsed_s`` (wall), ``cpu_s`` (the worker process's CPU time), ``worker`` (host and process) and
``provenance`` (package versions and git
revision *of the worker that ran it*, :mod:`common.provenance`).

Why Dask distributed rather than Ray (Ray's numbers from ``shared/reference/fec-and-sweeps-facts.md``,
measured on a machine like this one; Dask's confirmed here, ``bench/results/sweep_scaling.json``): a sweep
task is a whole frame pipeline (0.3 s to seconds), so per-task overhead (Ray 0.65 ms, Dask 1.7 ms idle
and 4–5 ms here under load, per no-op task) hardly matters, while Dask installs in 39 MiB against Ray's
225 MiB, starts a local two-worker cluster in 1.2–2.3 s here against Ray's 2.7–3.8 s, shuts down in
0.15 s against 1.4 s, leaves no daemons behind (``ray stop`` kills every Ray process of the user), and
hands out a standard ``concurrent.futures.Executor`` — the interface the local process pool already
has, so one code path serves both. An existing cluster is started with ``dask scheduler`` and
``dask worker tcp://HOST:8786 --nthreads 1`` on each machine, with this project installed there.

Workers run the function in fresh processes (``forkserver`` locally, Dask's nanny-spawned workers on a
cluster): import torch/Sionna inside the function's module as usual; each worker pays that once. As
Dask's nanny does, local workers run OpenMP/MKL/OpenBLAS with one thread each (N workers on N cores).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm import tqdm

from common.provenance import provenance
from experiments.run_folder import JsonLines, read_jsonl

TaskFunction = Callable[[dict[str, Any], int, str], Mapping[str, Any]]


class SweepError(RuntimeError):
    """A sweep cannot start (bad grid, unreachable cluster, function workers cannot import)."""


@dataclass(frozen=True)
class Task:
    """One grid point, seed and method. ``point`` holds JSON-able values (numbers, strings, lists)."""

    point: tuple[tuple[str, Any], ...]
    seed: int
    method: str

    @property
    def key(self) -> str:
        """Stable identity of the task across runs (sorted JSON)."""
        return json.dumps({"point": dict(self.point), "seed": self.seed, "method": self.method}, sort_keys=True)


def grid(points: Iterable[Mapping[str, Any]], seeds: Iterable[int],
         methods: Iterable[str] = ("default",)) -> list[Task]:
    """Every (point, seed, method) combination, points outermost. Raises :class:`SweepError` on duplicates."""
    tasks = [Task(tuple(sorted(dict(p).items())), int(s), str(m)) for p in points for s in seeds for m in methods]
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise SweepError("the grid holds duplicate (point, seed, method) combinations")
    if not tasks:
        raise SweepError("the grid is empty: give at least one point, one seed and one method")
    return tasks


@dataclass
class SweepSummary:
    """Attributes:
        total: tasks in the grid.
        skipped: tasks whose "ok" row was already in the file (resumed).
        ran: tasks run now that returned a row.
        failed: tasks run now that raised (their rows have status "error").
        elapsed_s: wall time of this run.
        executor: "processes(N)" or "dask(ADDRESS)".
    """

    total: int
    skipped: int
    ran: int
    failed: int
    elapsed_s: float
    executor: str


def completed_keys(path: Path) -> set[str]:
    """Keys of the tasks with an "ok" row in the file."""
    return {row["key"] for row in read_jsonl(path) if row.get("status") == "ok" and "key" in row}


def run_task(fn: TaskFunction, task: Task) -> dict[str, Any]:
    """Run one task in a worker and build its row (never raises: a failure becomes an "error" row)."""
    t0, c0 = time.monotonic(), time.process_time()
    row: dict[str, Any] = {"key": task.key, "point": dict(task.point), "seed": task.seed, "method": task.method}
    try:
        values = fn(dict(task.point), task.seed, task.method)
        clash = set(values) & set(row)
        if clash:
            raise SweepError(f"the function's row uses reserved names {sorted(clash)}")
        row.update(values)
        row["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - recorded and retried on resume, never lost
        row.update(status="error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    row.update(elapsed_s=time.monotonic() - t0, cpu_s=time.process_time() - c0,
               worker=f"{platform.node()}:{os.getpid()}", provenance=provenance())
    return row


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The sweep options every study command takes: ``--workers N`` and ``--cluster ADDRESS``."""
    parser.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    parser.add_argument("--cluster", help="run on an existing Dask cluster: its scheduler address, tcp://HOST:8786")


def one_thread_per_process() -> None:
    """Limit OpenMP, MKL, OpenBLAS and torch to one thread in this process: the limits Dask's nanny sets
    for its workers. Libraries loaded later read the environment; those already loaded (the forkserver
    preloads ``__main__``, which may import numpy) are limited through threadpoolctl and torch.

    Measured here (2 cores, load ≈ 10 from other jobs): one frame-pipeline task took 3.2 s with
    OpenBLAS's default threads and 0.06–0.10 s with one thread — idle BLAS threads spin on a busy machine.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


@contextmanager
def open_executor(workers: int | None = None, cluster: str | None = None,
                  connect_timeout_s: float = 10.0) -> Iterator[tuple[Executor, str]]:
    """A local process pool (``workers`` processes, default all cores) or, with ``cluster`` (a Dask
    scheduler address, ``tcp://host:8786``, reached within ``connect_timeout_s``), that cluster's
    executor. Yields ``(executor, description)``."""
    if cluster:
        try:
            from distributed import Client
        except ImportError as exc:
            raise SweepError("--cluster needs Dask distributed: pip install distributed") from exc
        try:
            client = Client(cluster, timeout=f"{connect_timeout_s}s")
        except OSError as exc:
            raise SweepError(f"cannot reach the Dask scheduler at {cluster}: {exc}") from exc
        try:
            yield client.get_executor(pure=False), f"dask({cluster}, {len(client.scheduler_info()['workers'])} workers)"
        finally:
            client.close()
        return
    n = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("forkserver"),
                             initializer=one_thread_per_process) as pool:
        yield pool, f"processes({n})"


@contextmanager
def _given(executor: tuple[Executor, str]) -> Iterator[tuple[Executor, str]]:
    yield executor   # opened and closed by the caller


def run_sweep(fn: TaskFunction, tasks: list[Task], out: str | Path, *, workers: int | None = None,
              cluster: str | None = None, executor: tuple[Executor, str] | None = None,
              progress: bool = True) -> SweepSummary:
    """Run every task not yet in ``out`` (JSON lines), appending one row per task as it completes.

    Args:
        fn: ``fn(point, seed, method) -> row dict``, defined at module level (workers import it).
        tasks: from :func:`grid`.
        out: the JSON-lines file (created; existing "ok" rows are kept and their tasks skipped).
        workers: local processes (default: all cores); ignored with ``cluster``.
        cluster: Dask scheduler address: run on that cluster instead of local processes.
        executor: an open ``(executor, description)`` from :func:`open_executor`, to run several sweeps on
            the same workers (each imports torch/Sionna once); ``workers`` and ``cluster`` are then ignored.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = completed_keys(out)
    todo = [t for t in tasks if t.key not in done]
    t0 = time.monotonic()
    ran = failed = 0
    description = "nothing to run"
    if todo:
        rows = JsonLines(out)
        try:
            with _given(executor) if executor else open_executor(workers, cluster) as (pool, description):
                futures = [pool.submit(run_task, fn, t) for t in todo]
                for future in tqdm(as_completed(futures), total=len(futures), desc=f"sweep on {description}",
                                   unit="task", disable=not progress):
                    try:
                        row = future.result()
                    except Exception as exc:   # run_task never raises: the task did not reach a worker
                        raise SweepError(f"a worker could not run {getattr(fn, '__qualname__', fn)!r}: {exc!r} "
                                         "(define the function at module level in an importable module)") from exc
                    rows.write(row)
                    ran += row["status"] == "ok"
                    failed += row["status"] != "ok"
        finally:
            rows.close()
    return SweepSummary(total=len(tasks), skipped=len(tasks) - len(todo), ran=ran, failed=failed,
                        elapsed_s=time.monotonic() - t0, executor=description)
