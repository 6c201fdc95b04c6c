"""Sweep engine speed-up: one study-like grid run serially, over local processes, and on a Dask cluster.

Each task is a real frame-pipeline grid point (what the studies run): an emulator (TDL channel, Sionna)
built for the point and seed, ``--frames`` frames through Transmitter → emulator → Receiver, the
SNR and delay-spread estimation errors returned as the row. Measured side by side in one run:

* ``serial``     — :func:`experiments.sweep.run_task` in a loop in this process (imports already paid),
  with one thread (as each worker runs: :func:`experiments.sweep.one_thread_per_process`) and, on the first
  two tasks only, with the libraries' default threads (what one process does today);
* ``processes``  — :func:`experiments.sweep.run_sweep` on the local process pool (2 workers);
* ``dask``       — the same call on a two-worker Dask ``LocalCluster`` on loopback (started beforehand and
  timed separately: an existing cluster is already up);
* each parallel mode twice: *cold* (fresh workers: spawn and the per-worker import of torch and Sionna
  are inside the wall time) and *warm* (the same workers again, as a study running several grids on
  one executor, or a long sweep after its first tasks);
* per-task overhead: no-op tasks through each warm executor.

On a shared machine the wall times depend on what else runs (the load average is recorded before and
after); the CPU time of each task (``cpu_s``, from the rows) does not, to first order. The expected time on
``n`` free cores is modelled as ``T(n) = start + N · (t_task / n + overhead)``, with ``t_task`` the mean
CPU time per task of the serial run, ``overhead`` the no-op time per task of the warm executor and
``start`` the cold-minus-warm difference (worker spawn and imports, inflated by the load here); with warm
workers the speed-up on ``n`` free cores is ``t_task / (t_task / n + overhead)``.

Usage: ``python bench/sweep_scaling.py [--frames 6] [--seeds 4] [--smoke] [--out PATH]``.
Writes ``bench/results/sweep_scaling.json`` and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.provenance import provenance
from experiments.run_folder import read_jsonl
from experiments.sweep import grid, open_executor, run_sweep, run_task


def frame_pipeline_point(point: dict, seed: int, method: str) -> dict:
    """One grid point: ``point['frames']`` frames through a fresh emulator; estimation errors as the row."""
    import radio

    cfg = radio.FrameConfig()
    emulator = radio.Emulator(cfg, profile=point["profile"], snr_db=point["snr_db"],
                              delay_spread_s=point["delay_spread_s"], seed=seed)
    rng = np.random.default_rng(seed)
    tx, snr_err, ds_err = radio.Transmitter(cfg), [], []
    for i in range(point["frames"]):
        symbols = (rng.standard_normal(480) + 1j * rng.standard_normal(480)) / np.sqrt(2)
        iq = np.concatenate([tx.modulate(symbols, frame_id=i), np.zeros(400, np.complex64)])
        rx, truth = emulator(iq)
        frames = [f for f in radio.Receiver(cfg).receive(rx, final=True) if f.status == "ok"]
        if frames:
            snr_err.append(frames[0].snr_db - truth.snr_db)
            ds_err.append(frames[0].delay_spread_s - truth.delay_spread_s)
    return {"decoded": len(snr_err), "snr_error_db": float(np.mean(snr_err)) if snr_err else None,
            "delay_spread_error_s": float(np.mean(ds_err)) if ds_err else None}


def no_op(point: dict, seed: int, method: str) -> dict:
    return {}


def _timed_sweep(fn, tasks, out: Path, executor) -> float:
    t0 = time.monotonic()
    summary = run_sweep(fn, tasks, out, executor=executor, progress=False)
    if summary.ran != len(tasks):
        raise SystemExit(f"sweep ran {summary.ran} of {len(tasks)} tasks ({summary.failed} failed): see {out}")
    return time.monotonic() - t0


def cold_and_warm(tasks, noop_tasks, tmp: Path, name: str, **where) -> dict:
    """Wall times of the grid on fresh workers, then again on the same workers, then the no-op tasks."""
    with open_executor(**where) as executor:
        cold = _timed_sweep(frame_pipeline_point, tasks, tmp / f"{name}-cold.jsonl", executor)
        warm = _timed_sweep(frame_pipeline_point, tasks, tmp / f"{name}-warm.jsonl", executor)
        noop = _timed_sweep(no_op, noop_tasks, tmp / f"{name}-noop.jsonl", executor)
    warm_rows = read_jsonl(tmp / f"{name}-warm.jsonl")
    return {"cold_s": cold, "warm_s": warm, "overhead_ms_per_task": noop / len(noop_tasks) * 1e3,
            "mean_task_wall_s_warm": float(np.mean([r["elapsed_s"] for r in warm_rows])),
            "mean_task_cpu_s_warm": float(np.mean([r["cpu_s"] for r in warm_rows])),
            "worker_processes": len({r["worker"] for r in warm_rows})}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6, help="frames per task")
    parser.add_argument("--seeds", type=int, default=4, help="seeds per point (4 points)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--noop-tasks", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="1 frame, 1 seed, 20 no-op tasks")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sweep_scaling.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.frames, args.seeds, args.noop_tasks = 1, 1, 20
    points = [{"profile": "TDL-C", "snr_db": s, "delay_spread_s": d, "frames": args.frames}
              for s in (5.0, 15.0) for d in (100e-9, 300e-9)]
    tasks = grid(points, seeds=range(args.seeds))
    noop_tasks = grid([{"i": i} for i in range(args.noop_tasks)], seeds=[0])

    import dask
    import torch
    from distributed import LocalCluster
    from threadpoolctl import threadpool_limits

    run_task(frame_pipeline_point, tasks[0])       # pay torch/Sionna imports here, outside the timings
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        default_rows = [run_task(frame_pipeline_point, t) for t in tasks[:2]]   # can be very slow: two tasks
        default_task_s = float(np.mean([r["elapsed_s"] for r in default_rows]))
        threads = torch.get_num_threads()
        with threadpool_limits(limits=1):
            torch.set_num_threads(1)
            t0 = time.monotonic()
            rows = [run_task(frame_pipeline_point, t) for t in tasks]
            serial_s = time.monotonic() - t0
            torch.set_num_threads(threads)
        task_s = float(np.mean([r["elapsed_s"] for r in rows]))
        task_cpu_s = float(np.mean([r["cpu_s"] for r in rows]))
        modes = {"processes": cold_and_warm(tasks, noop_tasks, tmp, "p", workers=args.workers)}
        t0 = time.monotonic()
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}), \
                LocalCluster(n_workers=args.workers, threads_per_worker=1, host="127.0.0.1", scheduler_port=0,
                             dashboard_address=None, local_directory=tmp / "dask") as cluster:
            cluster_start_s = time.monotonic() - t0
            modes["dask"] = cold_and_warm(tasks, noop_tasks, tmp, "d", cluster=cluster.scheduler_address)
    n = len(tasks)
    for m in modes.values():
        m["speedup_cold"] = serial_s / m["cold_s"]
        m["speedup_warm"] = serial_s / m["warm_s"]
        m["start_s"] = max(m["cold_s"] - m["warm_s"], 0.0)

    def model(kind: str, cores: int, tasks_n: int, cold: bool) -> float:
        m = modes[kind]
        return cold * m["start_s"] + tasks_n * (task_cpu_s / cores + m["overhead_ms_per_task"] / 1e3)

    report = {
        "benchmark": "sweep_scaling", "smoke": args.smoke, "tasks": n, "frames_per_task": args.frames,
        "workers": args.workers, "cpu_count": os.cpu_count(), "load_average_before": load_before,
        "load_average_after": os.getloadavg(), "serial_s": serial_s, "serial_default_threads_task_s": default_task_s,
        "torch_default_threads": threads, "mean_task_s": task_s, "mean_task_cpu_s": task_cpu_s, "modes": modes,
        "dask_cluster_start_s": cluster_start_s,
        "expected_wall_s_1000_tasks": {f"{kind} {cores} cores {'cold' if cold else 'warm'}": model(kind, cores, 1000, cold)
                                       for kind in modes for cores in (2, 16, 64) for cold in (True, False)},
        "expected_speedup_warm": {f"{kind} {cores} cores": task_cpu_s / (task_cpu_s / cores + modes[kind]["overhead_ms_per_task"] / 1e3)
                                  for kind in modes for cores in (2, 16, 64)},
        "model": "T(n) = start (cold only) + N (t_task / n + overhead); t_task = CPU time per task, serial run",
        "provenance": provenance(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"| mode | cold wall (s) | speed-up | warm wall (s) | speed-up | overhead (ms/task) |\n|---|---|---|---|---|---|\n"
          f"| serial, 1 thread ({n} tasks × {task_s:.2f} s) | {serial_s:.1f} | 1.00 | | | |\n"
          f"| serial, default threads ({threads} torch) | {default_task_s * n:.1f} (2 tasks × {n / 2:g}) | "
          f"{task_s / default_task_s:.2f} | | | |")
    for name, m in modes.items():
        print(f"| {name} ({args.workers} workers) | {m['cold_s']:.1f} | {m['speedup_cold']:.2f} | {m['warm_s']:.1f} | "
              f"{m['speedup_warm']:.2f} | {m['overhead_ms_per_task']:.2f} |")
    print(f"dask cluster start {cluster_start_s:.1f} s; load average before {load_before[0]:.2f}; CPU per task: "
          f"serial {task_cpu_s:.2f} s, " + ", ".join(f"{k} {m['mean_task_cpu_s_warm']:.2f} s" for k, m in modes.items()))
    print("expected speed-up on free cores, warm workers: "
          + ", ".join(f"{k} {v:.1f}" for k, v in report["expected_speedup_warm"].items()))
    return report


if __name__ == "__main__":
    main()
