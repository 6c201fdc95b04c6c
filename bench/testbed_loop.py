"""End-to-end speed of the emulated testbed loop with the shipped miniature models.

Runs `dekag-testbed run` twice in one go — edge and user in one process over the in-process emulator,
and the three-process ZeroMQ loop (edge, channel, user) — and reports, side by side: frames/s and
images/s once running (model loading excluded), time per stage, CSI age at the encoder in frames,
and the share of frames encoded on fresh feedback. JSON to bench/results/testbed_loop.json.

    .venv/bin/python bench/testbed_loop.py            # 24 frames each
    .venv/bin/python bench/testbed_loop.py --smoke    # 3 frames each (the test suite runs this)
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from common.provenance import provenance
from experiments.cli import main as cli
from experiments.config import default_config
from experiments.run_folder import read_jsonl
from radio.feedback import free_tcp_endpoint

RESULTS = Path(__file__).resolve().parent / "results"


def measure(backend: str, frames: int, workdir: Path) -> dict:
    cfg = default_config().replace(edge={"num_frames": frames},
                                   link={"backend": backend, "tx_endpoint": free_tcp_endpoint(),
                                         "rx_endpoint": free_tcp_endpoint()},
                                   feedback={"endpoint": free_tcp_endpoint()})
    cfg.save(workdir / f"{backend}.toml")
    out = workdir / backend
    rc = cli(["run", "--config", str(workdir / f"{backend}.toml"), "--out", str(out)])
    rows = read_jsonl(out / "frames.jsonl")
    user = [r for r in read_jsonl(out / "user.results.jsonl") if r.get("frame_id") is not None]
    times = sorted(r["unix_time_s"] for r in user)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    stages: dict[str, list[float]] = {}
    for r in rows:
        for k, v in r.get("latency_ms", {}).items():
            stages.setdefault(k, []).append(v)
    ages = [r["csi_age_frames"] for r in rows if r.get("csi_age_frames") is not None]
    return {"backend": backend, "exit_code": rc, "frames": frames, "decoded": len(user),
            "frames_per_s": (len(times) - 1) / span if span == span and span > 0 else None,
            "images_per_s": (len(times) - 1) / span if span == span and span > 0 else None,
            "stage_ms_median": {k: float(np.median(v)) for k, v in stages.items()},
            "csi_age_frames": {"max": max(ages) if ages else None, "mean": float(np.mean(ages)) if ages else None},
            "feedback_share": float(np.mean([r.get("condition_source") == "feedback" for r in rows[1:]]))
            if len(rows) > 1 else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", default=str(RESULTS / "testbed_loop.json"))
    a = p.parse_args(argv)
    frames = 3 if a.smoke else a.frames
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(b, frames, Path(tmp)) for b in ("emulator", "zmq")]
    ratio = (rows[1]["frames_per_s"] / rows[0]["frames_per_s"]
             if rows[0]["frames_per_s"] and rows[1]["frames_per_s"] else None)
    result = {"rows": rows, "zmq_over_in_process_frames_per_s": ratio, "smoke": a.smoke, **provenance()}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    stage_names = sorted({k for r in rows for k in r["stage_ms_median"]})
    print("| loop | decoded/sent | frames/s | CSI age max (frames) | fresh feedback | "
          + " | ".join(f"{s} ms" for s in stage_names) + " |")
    print("|---|---|---|---|---|" + "---|" * len(stage_names))
    for r in rows:
        fps = f"{r['frames_per_s']:.2f}" if r["frames_per_s"] else "–"
        print(f"| {r['backend']} | {r['decoded']}/{r['frames']} | {fps} | {r['csi_age_frames']['max']} | "
              f"{r['feedback_share']:.0%} | " + " | ".join(f"{r['stage_ms_median'].get(s, float('nan')):.1f}"
                                                         for s in stage_names) + " |")
    print(f"\nthree-process / in-process frames/s: {ratio:.2f}" if ratio else "")
    return 0 if all(r["exit_code"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
