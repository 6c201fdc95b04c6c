"""Emulator throughput (MS/s on one core) at the narrow and the wide numerology, new against a baseline revision.

Cases, each at 3.84 MS/s (the default numerology) and at 30.72 MS/s (1024-point FFT, the widest preset a
Pluto captures in burst mode): a static TDL-C channel (100 ns, 2.4 GHz, 10 dB), 30 m/s Doppler, and 30 m/s
Doppler with every impairment of ``Impairments.typical()``. One buffer of ``--duration-ms`` (default 5 ms:
19 200 / 153 600 samples) per call, as the channel node passes bursts. The cases are timed round-robin,
``--repeats`` calls each; a row reports the median over calls of process CPU time (the one-core rate, what
"real time on one core" asks for) and of wall time (inflated by other jobs on a shared machine), and the
real-time factor ``CPU MS/s ÷ sample rate``.

``--baseline REV`` also times the same cases against the code of git revision REV (its ``radio`` and
``common`` exported to a temporary folder and imported in a subprocess), alternating new / old / new so
both see the same machine load; the new rate is the median over its two passes. At 3.84 MS/s the static
and Doppler cases are also timed through Sionna's ``TimeChannel`` (batch 1 and 16) for scale.

    .venv/bin/python bench/emulator_throughput.py --baseline 69535e9   # full run, old vs new
    .venv/bin/python bench/emulator_throughput.py --smoke              # tiny sizes (CI), no baseline

Writes ``bench/results/emulator_throughput.json`` (``--out`` to change) and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import radio  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RATES = {"narrow": dict(sample_rate_hz=3.84e6, fft_size=128, cp_length=16, num_used_subcarriers=96,
                        preamble_cp_length=64),
         "wide": dict(preset="custom", sample_rate_hz=30.72e6, fft_size=1024, cp_length=128, num_used_subcarriers=768,
                      preamble_cp_length=256)}
CASES = {"static": 0.0, "30 m/s Doppler": 30.0, "30 m/s Doppler + all impairments": 30.0}
CHANNEL = dict(profile="TDL-C", snr_db=10.0, delay_spread_s=100e-9, carrier_frequency_hz=2.4e9)


def measure(duration_ms: float, repeats: int) -> list[dict]:
    """Time every (rate, case) round-robin with the ``radio`` on the path; uses only the API the baseline
    shares (keyword construction, ``Impairments.typical()``)."""
    torch.set_num_threads(1)
    emulators, buffers = {}, {}
    for rate, numerology in RATES.items():
        cfg = radio.FrameConfig(**numerology)
        n = round(cfg.sample_rate_hz * duration_ms * 1e-3)
        rng = np.random.default_rng(0)
        buffers[rate] = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)
        for case, speed in CASES.items():
            imp = radio.Impairments.typical() if "impairments" in case else radio.Impairments()
            emulators[rate, case] = radio.Emulator(cfg, max_speed_mps=speed, seed=1, impairments=imp, **CHANNEL)
    cpu = {key: [] for key in emulators}
    wall = {key: [] for key in emulators}
    for key, em in emulators.items():
        em(buffers[key[0]])  # warm-up: caches, first-call allocations
    for _ in range(repeats):
        for key, em in emulators.items():
            t_wall, t_cpu = time.perf_counter(), time.process_time()
            em(buffers[key[0]])
            cpu[key].append(time.process_time() - t_cpu)
            wall[key].append(time.perf_counter() - t_wall)
    rows = []
    for (rate, case), em in emulators.items():
        n, fs = len(buffers[rate]), em.cfg.sample_rate_hz
        rows.append({"rate": rate, "sample_rate_hz": fs, "case": case, "samples": n,
                     "cpu_msps": n / float(np.median(cpu[rate, case])) / 1e6,
                     "wall_msps": n / float(np.median(wall[rate, case])) / 1e6})
    return rows


def sionna_time_channel_msps(duration_ms: float, repeats: int) -> dict[tuple[str, str], dict]:
    """Sionna's ``TimeChannel`` on the narrow static and Doppler cases (batch 1 and 16), CPU MS/s."""
    from sionna.phy.channel import TimeChannel

    from radio.channel_models import SeededTDL

    fs = RATES["narrow"]["sample_rate_hz"]
    n = round(fs * duration_ms * 1e-3)
    rng = np.random.default_rng(0)
    x = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)
    out = {}
    for case in ("static", "30 m/s Doppler"):
        tdl = SeededTDL(model="C", delay_spread=100e-9, carrier_frequency=2.4e9, max_speed=CASES[case], device="cpu")
        tdl.generator = torch.Generator().manual_seed(1)
        tc = TimeChannel(tdl, bandwidth=fs, num_time_samples=n, maximum_delay_spread=1e-6, device="cpu")
        for batch in (1, 16):
            xs = torch.from_numpy(np.tile(x, (batch, 1, 1, 1)))  # [batch, num_tx, num_tx_ant, n]
            with torch.no_grad():
                tc(xs, 0.075)
                times = []
                for _ in range(repeats):
                    t0 = time.process_time()
                    tc(xs, 0.075)
                    times.append(time.process_time() - t0)
            out.setdefault(("narrow", case), {})[f"sionna_timechannel_b{batch}_cpu_msps"] = (
                batch * n / float(np.median(times)) / 1e6)
    return out


def measure_baseline(revision: str, duration_ms: float, repeats: int) -> list[dict]:
    """:func:`measure` against ``radio`` and ``common`` as of git ``revision``, in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "radio", "common"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        result = Path(tmp) / "rows.json"
        env = {**os.environ, "PYTHONPATH": tmp}
        subprocess.run([sys.executable, __file__, "--measure-only", str(result), "--duration-ms", str(duration_ms),
                        "--repeats", str(repeats)], check=True, env=env, cwd=tmp)
        return json.loads(result.read_text())


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=float, default=5.0, help="buffer length per call, ms of samples")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per case and pass")
    parser.add_argument("--baseline", help="git revision to time side by side (e.g. 69535e9)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for a CI smoke check")
    parser.add_argument("--measure-only", type=Path, help=argparse.SUPPRESS)  # baseline subprocess: rows → file
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "emulator_throughput.json")
    args = parser.parse_args(argv)
    if args.measure_only:
        args.measure_only.write_text(json.dumps(measure(args.duration_ms, args.repeats)))
        return []
    if args.smoke:
        args.duration_ms, args.repeats = 0.1, 2

    passes = [measure(args.duration_ms, args.repeats)]
    old = None
    if args.baseline:
        old = measure_baseline(args.baseline, args.duration_ms, args.repeats)
        passes.append(measure(args.duration_ms, args.repeats))
    sionna = sionna_time_channel_msps(args.duration_ms, max(2, args.repeats // 4))
    rows = []
    for i, row in enumerate(passes[0]):
        key = (row["rate"], row["case"])
        for unit in ("cpu_msps", "wall_msps"):
            row[unit] = float(np.median([p[i][unit] for p in passes]))
        row["realtime_factor"] = row["cpu_msps"] * 1e6 / row["sample_rate_hz"]
        if old is not None:
            row["baseline_cpu_msps"], row["baseline_wall_msps"] = old[i]["cpu_msps"], old[i]["wall_msps"]
            row["speedup_cpu"] = row["cpu_msps"] / old[i]["cpu_msps"]
        row.update(sionna.get(key, {}))
        rows.append(row)

    from common import provenance

    report = {"benchmark": "emulator_throughput", "smoke": args.smoke, "threads": 1, "duration_ms": args.duration_ms,
              "repeats": args.repeats, "baseline_revision": args.baseline, "rows": rows,
              "load_average_1min": os.getloadavg()[0],  # the VM is shared: wall times depend on it
              "settings": {**CHANNEL, "rates": RATES}, **provenance()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"(1-min load average {os.getloadavg()[0]:.1f}; medians of {args.repeats} calls per pass)\n")
    print("| rate | case | samples/call | MS/s CPU (wall) | × real time | baseline MS/s CPU (wall) | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        base = (f"{r['baseline_cpu_msps']:.2f} ({r['baseline_wall_msps']:.2f}) | {r['speedup_cpu']:.1f}×"
                if "baseline_cpu_msps" in r else "— | —")
        print(f"| {r['sample_rate_hz'] / 1e6:.2f} MS/s | {r['case']} | {r['samples']} | {r['cpu_msps']:.1f} "
              f"({r['wall_msps']:.1f}) | {r['realtime_factor']:.2f} | {base} |")
    for r in rows:
        if "sionna_timechannel_b1_cpu_msps" in r:
            print(f"Sionna TimeChannel, {r['case']} at 3.84 MS/s: {r['sionna_timechannel_b1_cpu_msps']:.3f} MS/s "
                  f"(batch 1), {r['sionna_timechannel_b16_cpu_msps']:.3f} (batch 16)")
    return rows


if __name__ == "__main__":
    main()
