"""The sweep engine: grid, rows with provenance, resume, failures, local processes and a real two-worker Dask
cluster on loopback."""
from __future__ import annotations

import json

import dask
import numpy as np
import pytest
from distributed import LocalCluster
from sweep_tasks import noisy_mean, thread_limits

from experiments.run_folder import read_jsonl
from experiments.sweep import SweepError, Task, grid, open_executor, run_sweep

POINTS = [{"mu": 0.0}, {"mu": 5.0}, {"mu": -2.0, "scale": 3}]


def _expected(task: Task) -> float:
    return float(np.random.default_rng(task.seed).normal(dict(task.point)["mu"], 1.0, 1000).mean())


def test_grid_keys_are_stable_and_unique():
    tasks = grid(POINTS, seeds=[0, 1], methods=["a", "b"])
    assert len(tasks) == 12 and tasks[0].key == json.dumps({"point": {"mu": 0.0}, "seed": 0, "method": "a"}, sort_keys=True)
    assert grid([{"b": 1, "a": 2}], [0])[0].key == grid([{"a": 2, "b": 1}], [0])[0].key
    with pytest.raises(SweepError, match="duplicate"):
        grid([{"mu": 1}, {"mu": 1}], [0])
    with pytest.raises(SweepError, match="empty"):
        grid(POINTS, seeds=[])


def test_local_processes_resume_from_the_rows_already_written(tmp_path):
    out = tmp_path / "rows.jsonl"
    tasks = grid(POINTS, seeds=[0, 1, 2], methods=["m"])
    first = run_sweep(noisy_mean, tasks[:4], out, workers=2, progress=False)     # an interrupted run
    assert (first.ran, first.skipped, first.failed) == (4, 0, 0) and first.executor == "processes(2)"
    again = run_sweep(noisy_mean, tasks, out, workers=2, progress=False)
    assert (again.ran, again.skipped, again.total) == (5, 4, 9)
    rows = read_jsonl(out)
    assert sorted(r["key"] for r in rows) == sorted(t.key for t in tasks)           # each task exactly once
    by_key = {r["key"]: r for r in rows}
    for t in tasks:
        row = by_key[t.key]
        assert row["status"] == "ok" and row["mean"] == pytest.approx(_expected(t)) and row["cpu_s"] >= 0
        assert row["provenance"]["git_revision"] and "numpy" in row["provenance"]["versions"]
    assert run_sweep(noisy_mean, tasks, out, progress=False).ran == 0               # nothing left


def test_local_workers_run_one_blas_thread_each(tmp_path):
    run_sweep(thread_limits, grid([{"i": 0}], [0]), tmp_path / "rows.jsonl", workers=1, progress=False)
    row = read_jsonl(tmp_path / "rows.jsonl")[0]
    assert row["status"] == "ok" and row["omp_env"] == "1" and row["max_pool_threads"] == 1


def test_failures_are_recorded_and_retried(tmp_path):
    out = tmp_path / "rows.jsonl"
    tasks = grid(POINTS[:2], seeds=[0], methods=["ok", "fail"])
    s = run_sweep(noisy_mean, tasks, out, workers=1, progress=False)
    assert (s.ran, s.failed) == (2, 2)
    errors = [r for r in read_jsonl(out) if r["status"] == "error"]
    assert {r["method"] for r in errors} == {"fail"} and "method fails at mu=" in errors[0]["error"]
    assert "Traceback" in errors[0]["traceback"]
    assert run_sweep(noisy_mean, tasks, out, workers=1, progress=False).failed == 2   # retried, not skipped


def test_a_function_workers_cannot_import_is_a_clear_error(tmp_path):
    with pytest.raises(SweepError, match="module level"):
        run_sweep(lambda p, s, m: {}, grid(POINTS[:1], [0]), tmp_path / "rows.jsonl", workers=1, progress=False)


def test_unreachable_cluster_is_a_clear_error():
    with pytest.raises(SweepError, match="cannot reach the Dask scheduler"), \
            open_executor(cluster="tcp://127.0.0.1:9", connect_timeout_s=0.5):
        pass


@pytest.fixture
def dask_cluster(tmp_path):
    """A real two-worker Dask cluster on loopback (nanny-spawned worker processes, one thread each)."""
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}), \
            LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", scheduler_port=0,
                         dashboard_address=None, local_directory=tmp_path / "dask") as cluster:
        yield cluster.scheduler_address


def test_sweep_on_a_two_worker_dask_cluster_same_rows_and_resume(tmp_path, dask_cluster):
    tasks = grid(POINTS, seeds=[0, 1], methods=["m"])
    out = tmp_path / "rows.jsonl"
    first = run_sweep(noisy_mean, tasks[:2], out, cluster=dask_cluster, progress=False)
    assert first.executor == f"dask({dask_cluster}, 2 workers)" and first.ran == 2
    rest = run_sweep(noisy_mean, tasks, out, cluster=dask_cluster, progress=False)
    assert (rest.ran, rest.skipped) == (4, 2)
    rows = {r["key"]: r for r in read_jsonl(out)}
    assert len(rows) == 6
    for t in tasks:   # the same values the local processes compute: one code path
        assert rows[t.key]["mean"] == pytest.approx(_expected(t)) and rows[t.key]["provenance"]["versions"]
