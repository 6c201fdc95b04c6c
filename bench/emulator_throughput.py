"""Emulator throughput (MS/s) next to Sionna's ``TimeChannel`` on the same settings, in one run, on one core.

Both pass a buffer of ``--samples`` complex samples at 3.84 MS/s through a TDL-C channel (100 ns, 2.4 GHz)
with AWGN; Sionna's ``TimeChannel`` runs with batch 1 (one buffer per call, as the emulator) and with batch 16
(its best case per sample). Cases: static channel, 30 m/s Doppler, and (emulator only) every impairment on.

    .venv/bin/python bench/emulator_throughput.py            # full run
    .venv/bin/python bench/emulator_throughput.py --smoke    # tiny sizes (CI)

Writes ``bench/results/emulator_throughput.json`` (``--out`` to change) and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import radio  # noqa: E402
from common import provenance  # noqa: E402


def _time_per_call(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=19_200, help="samples per buffer (19 200 = 5 ms)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for a CI smoke check")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "emulator_throughput.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.samples, args.repeats = 1_000, 2
    torch.set_num_threads(1)

    from sionna.phy.channel import TimeChannel

    from radio.channel_models import SeededTDL

    cfg = radio.FrameConfig()
    fs, n = cfg.sample_rate_hz, args.samples
    rng = np.random.default_rng(0)
    x = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)
    rows = []
    cases = [("static", 0.0, radio.Impairments()), ("30 m/s Doppler", 30.0, radio.Impairments()),
             ("30 m/s Doppler + all impairments", 30.0, radio.Impairments.typical())]
    for name, speed, imp in cases:
        em = radio.Emulator(cfg, profile="TDL-C", snr_db=10.0, delay_spread_s=100e-9, max_speed_mps=speed,
                            seed=1, impairments=imp)
        t_em = _time_per_call(lambda: em(x), args.repeats)
        row = {"case": name, "samples": n, "emulator_msps": n / t_em / 1e6}
        if imp == radio.Impairments():
            tdl = SeededTDL(model="C", delay_spread=100e-9, carrier_frequency=2.4e9, max_speed=speed, device="cpu")
            tdl.generator = torch.Generator().manual_seed(1)
            tc = TimeChannel(tdl, bandwidth=fs, num_time_samples=n, maximum_delay_spread=1e-6, device="cpu")
            for batch in (1, 16):
                xs = torch.from_numpy(np.tile(x, (batch, 1, 1, 1)))  # [batch, num_tx, num_tx_ant, n]
                with torch.no_grad():
                    t_s = _time_per_call(lambda: tc(xs, 0.075), max(2, args.repeats // 4))
                row[f"sionna_timechannel_b{batch}_msps"] = batch * n / t_s / 1e6
            row["speedup_vs_sionna_b1"] = row["emulator_msps"] / row["sionna_timechannel_b1_msps"]
        rows.append(row)
        print(json.dumps(row), flush=True)

    report = {"benchmark": "emulator_throughput", "smoke": args.smoke, "threads": 1, "rows": rows,
              "load_average_1min": os.getloadavg()[0],  # the VM is shared: timings depend on it
              "settings": {"profile": "TDL-C", "delay_spread_s": 100e-9, "sample_rate_hz": fs,
                           "carrier_frequency_hz": 2.4e9, "snr_db": 10.0}, **provenance()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\n(1-min load average {os.getloadavg()[0]:.1f})")
    print("\n| case | samples/call | emulator MS/s | Sionna TimeChannel MS/s (batch 1) | (batch 16) | speed-up (b1) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        s1, s16 = r.get("sionna_timechannel_b1_msps"), r.get("sionna_timechannel_b16_msps")
        sp = r.get("speedup_vs_sionna_b1")
        print(f"| {r['case']} | {r['samples']} | {r['emulator_msps']:.2f} | "
              f"{'—' if s1 is None else f'{s1:.3f}'} | {'—' if s16 is None else f'{s16:.3f}'} | "
              f"{'—' if sp is None else f'{sp:.0f}×'} |")
    return rows


if __name__ == "__main__":
    main()
