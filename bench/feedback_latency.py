"""CSI feedback latency on loopback: publisher and subscriber in two processes.

One-way latency = subscriber's ``time.monotonic()`` after the message is received and validated −
the report's ``timestamp_s`` (the publisher's ``time.monotonic()``; CLOCK_MONOTONIC is system-wide,
so the two are comparable on one host). Variants measured side by side in one run:

* ``conflate``   — the production setting: SUB with CONFLATE (latest wins);
* ``queue``      — SUB without CONFLATE (every message queued);
* ``curve``      — CONFLATE plus CurveZMQ encryption and authentication.

Usage: ``python bench/feedback_latency.py [--count 2000] [--interval-ms 1.0] [--smoke] [--out PATH]``.
Writes ``bench/results/feedback_latency.json`` and prints a markdown table. Target: p99 < 1 ms.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import provenance  # noqa: E402
from radio.feedback import Condition, CsiPublisher, CsiSubscriber, CurveKeys, free_tcp_endpoint, generate_curve_keys  # noqa: E402

VARIANTS = ("conflate", "queue", "curve")


WARMUP = 20
"""Reports sent before the measured ones (frame_id 0): the first messages on a new TCP connection are slow."""


def run_publisher(endpoint: str, count: int, interval_s: float, settle_s: float, curve_dir: str) -> None:
    """Publisher process: bind, let the subscriber connect, send ``count`` reports ``interval_s`` apart."""
    curve = CurveKeys(Path(curve_dir)) if curve_dir else None
    with CsiPublisher(endpoint, curve=curve) as pub:
        time.sleep(settle_s)
        next_t = time.monotonic()
        for k in range(-WARMUP + 1, count + 1):
            time.sleep(max(0.0, next_t - time.monotonic()))
            pub.publish(frame_id=max(k, 0), snr_db=10.0 + (k % 10), delay_spread_s=1e-7)
            next_t += interval_s
        time.sleep(0.2)


def measure(variant: str, count: int, interval_s: float, settle_s: float, keys: CurveKeys | None) -> dict:
    endpoint = free_tcp_endpoint()
    latencies: list[float] = []

    def on_accept(report, received_at):
        if report.frame_id > 0:
            latencies.append(received_at - report.timestamp_s)

    curve = keys if variant == "curve" else None
    # fork: the publisher process starts at once (no re-import); pyzmq gives the child its own context
    proc = mp.get_context("fork").Process(target=run_publisher, args=(
        endpoint, count, interval_s, settle_s, str(keys.directory) if curve else ""))
    proc.start()
    with CsiSubscriber(endpoint, max_age_s=1.0, fallback=Condition(10.0, 1e-7), conflate=variant != "queue",
                       curve=curve) as sub:
        sub.on_accept = on_accept
        deadline = time.monotonic() + settle_s + (count + WARMUP) * interval_s + 30.0
        while time.monotonic() < deadline and (sub.latest is None or sub.latest.frame_id < count):
            sub.poll(0.1)
            if not proc.is_alive() and not sub.poll(0.2):
                break
        proc.join(timeout=30)
        if proc.exitcode:
            raise RuntimeError(f"publisher process failed with exit code {proc.exitcode}")
        counters = sub.counters.as_dict()
    lat_us = np.asarray(latencies) * 1e6
    return {"variant": variant, "sent": count, "received": len(lat_us),
            "p50_us": float(np.percentile(lat_us, 50)), "p99_us": float(np.percentile(lat_us, 99)),
            "max_us": float(lat_us.max()), "mean_us": float(lat_us.mean()), "counters": counters}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=2000, help="reports per variant")
    ap.add_argument("--interval-ms", type=float, default=1.0, help="time between reports (a frame period)")
    ap.add_argument("--settle-s", type=float, default=0.5, help="wait after bind before sending (PUB/SUB join)")
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI (50 reports per variant)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "feedback_latency.json")
    args = ap.parse_args(argv)
    count = 50 if args.smoke else args.count
    settle_s = 0.3 if args.smoke else args.settle_s
    with tempfile.TemporaryDirectory() as tmp:
        keys = generate_curve_keys(Path(tmp) / "keys")
        rows = [measure(v, count, args.interval_ms / 1e3, settle_s, keys) for v in VARIANTS]
    result = {"benchmark": "feedback_latency", "smoke": args.smoke, "interval_ms": args.interval_ms,
              "transport": "tcp://127.0.0.1, two processes", "target_p99_us": 1000.0, "rows": rows,
              "provenance": provenance()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"CSI feedback one-way latency, loopback TCP, two processes, {count} reports every "
          f"{args.interval_ms} ms (after {WARMUP} warm-up reports)\n")
    print("| variant | received/sent | p50 (µs) | p99 (µs) | max (µs) | p99 vs conflate |")
    print("|---|---|---|---|---|---|")
    base = rows[0]["p99_us"]
    for r in rows:
        print(f"| {r['variant']} | {r['received']}/{r['sent']} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | "
              f"{r['max_us']:.0f} | {r['p99_us'] / base:.2f}× |")
    print(f"\nwritten {args.out}")
    return result


if __name__ == "__main__":
    main()
