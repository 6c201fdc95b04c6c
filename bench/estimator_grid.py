"""Receiver estimators against the emulator's truth over SNR × TDL profile × delay spread, impairments on.

Grid (per numerology preset, ``--preset``): SNR {0, 5, 10, 15, 20} dB (``--snrs``) × TDL {A, C, E} × RMS
delay spread {30, 100, 300, 1000, 3000} ns,
``--frames`` frames per cell (default 200), one frame (480 Gaussian payload symbols) per emulator call,
every impairment of ``radio.Impairments.typical()`` on, static channel. Per cell:

* detection rate (a frame reported within one CP of the true start), header CRC pass rate, false frames;
* SNR bias and RMSE (dB) against the realised SNR;
* delay-spread bias (s) and relative RMSE ``sqrt(mean(((est - true) / true)²))`` against the realised
  path-level RMS delay spread (an estimate below resolution counts with the floor value it reports), and the
  share of frames flagged ``delay_spread_below_resolution``;
* CFO RMSE in Hz and as a fraction of the subcarrier spacing;
* channel-estimate NMSE (dB) of the receiver's filtered estimate and of its plain LS estimate against the
  true channel on the used subcarriers. The receiver reports its estimate for its own FFT window and carrier
  phase, so the true channel is aligned first: integer delay (± the preamble CP) and common phase are fitted on
  the LS estimate (unbiased), and the same alignment is used for both. NMSE = Σ error / Σ channel energy
  over the cell's frames (a per-frame mean would be ruled by the deepest fades), plus the per-frame median.

    .venv/bin/python bench/estimator_grid.py              # full grid, 2 processes
    .venv/bin/python bench/estimator_grid.py --smoke      # 2 cells × 4 frames
    .venv/bin/python bench/estimator_grid.py --preset wide-30.72 --snrs 10 20 --frames 20   # one preset, reduced

Rows go to ``bench/results/estimator_grid[_<preset>].jsonl`` as cells finish; the summary (rows + provenance)
to ``bench/results/estimator_grid[_<preset>].json``; a markdown table is printed.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

SNRS_DB = (0.0, 5.0, 10.0, 15.0, 20.0)
PROFILES = ("TDL-A", "TDL-C", "TDL-E")
ALL_PROFILES = ("TDL-A", "TDL-B", "TDL-C", "TDL-D", "TDL-E")
DELAY_SPREADS_S = (30e-9, 100e-9, 300e-9, 1000e-9, 3000e-9)
PAYLOAD_SYMBOLS = 480
REALISED_SNR_EDGES_DB = (-np.inf, -5.0, 0.0, 5.0, 10.0, 15.0, np.inf)
DEFAULT_OUT = Path(__file__).parent / "results" / "estimator_grid.json"


def _align(h_true: np.ndarray, h_ls: np.ndarray, k: np.ndarray, n: int, max_delay: int) -> np.ndarray:
    """True channel moved to the estimate's FFT window and carrier phase (fit on the LS estimate)."""
    best, best_err = h_true, math.inf
    for delay in range(-max_delay, max_delay + 1):
        g = h_true * np.exp(-2j * np.pi * k * delay / n)
        c = np.vdot(g, h_ls)
        g = g * np.exp(1j * np.angle(c))
        err = float(np.sum(np.abs(h_ls - g) ** 2))
        if err < best_err:
            best, best_err = g, err
    return best


def run_cell(args: tuple) -> dict:
    """Send ``frames`` frames through one grid cell; return its summary row."""
    snr_db, profile, ds_s, frames, seed, impaired, preset = args
    import torch

    torch.set_num_threads(1)
    import radio
    from radio.delay_spread import ESTIMATORS
    from radio.emulator import used_subcarriers

    cfg = radio.FrameConfig(preset=preset)
    k = used_subcarriers(cfg)
    tx = radio.Transmitter(cfg)
    rx = radio.Receiver(cfg)
    ch = radio.Emulator(cfg, profile=profile, snr_db=snr_db, delay_spread_s=ds_s, seed=seed,
                        impairments=radio.Impairments.typical() if impaired else radio.Impairments())
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    found = crc = false_frames = clipped = below = 0
    snr_err, ds_true, ds_est, cfo_err, err, err_ls, power = [], [], [], [], [], [], []
    ds_by: dict[str, list[float]] = {name: [] for name in ESTIMATORS}
    statuses: dict[str, int] = {}
    bins = np.zeros((len(REALISED_SNR_EDGES_DB) - 1, 3), int)  # per realised-SNR bin: sent, detected, CRC ok
    for i in range(frames):
        sym = ((rng.standard_normal(PAYLOAD_SYMBOLS) + 1j * rng.standard_normal(PAYLOAD_SYMBOLS))
               / np.sqrt(2)).astype(np.complex64)
        rx_iq, truth = ch(tx.modulate(sym, frame_id=i % 65536))
        clipped += truth.adc_clipped_fraction > 0
        b = int(np.searchsorted(REALISED_SNR_EDGES_DB, truth.snr_db, side="right")) - 1
        bins[b, 0] += 1
        rx.reset()
        reported = rx.receive(rx_iq, final=True)
        match = [f for f in reported if abs(f.start - truth.start) <= cfg.cp_length]
        false_frames += len(reported) - len(match[:1])
        if not match:
            continue
        f = match[0]
        found += 1
        bins[b, 1] += 1
        bins[b, 2] += bool(f.crc_ok)
        statuses[f.status] = statuses.get(f.status, 0) + 1
        crc += bool(f.crc_ok and f.header.frame_id == i % 65536)
        snr_err.append(f.snr_db - truth.snr_db)
        ds_true.append(truth.delay_spread_s)
        ds_est.append(f.delay_spread_s)
        for name in ESTIMATORS:  # every estimator on the frame's LS channel (error variance N0/2)
            ds_by[name].append(rx.ds.resolve(getattr(rx.ds, name)(f.channel_ls, f.noise_power / 2))[0])
        below += bool(f.delay_spread_below_resolution)
        cfo_err.append(f.cfo_hz - truth.cfo_hz)
        h_true = _align(truth.frequency_response(cfg)[0], f.channel_ls, k, cfg.fft_size, cfg.preamble_cp_length)
        power.append(float(np.sum(np.abs(h_true) ** 2)))
        err.append(float(np.sum(np.abs(f.channel - h_true) ** 2)))
        err_ls.append(float(np.sum(np.abs(f.channel_ls - h_true) ** 2)))
    snr_err, cfo_err = np.asarray(snr_err), np.asarray(cfo_err)
    ds_true, ds_est = np.asarray(ds_true), np.asarray(ds_est)

    def stat(fn, arr):
        return float(fn(arr)) if len(arr) else None

    rel = (ds_est - ds_true) / ds_true if len(ds_true) else np.zeros(0)

    def rel_rmse(est, truth):
        return float(np.sqrt(np.mean(((np.asarray(est) - truth) / truth) ** 2))) if len(est) else None
    return {
        "preset": preset, "snr_db": snr_db, "profile": profile, "delay_spread_s": ds_s, "frames": frames, "seed": seed,
        "delay_spread_resolution_s": rx.ds.resolution_s, "below_resolution_rate": below / found if found else None,
        "detection_rate": found / frames, "crc_pass_rate": crc / frames, "false_frames": false_frames,
        "statuses": statuses, "frames_with_adc_clipping": clipped, "impairments": bool(impaired),
        "by_realised_snr": [{"snr_db_from": lo if np.isfinite(lo) else None, "snr_db_to": hi if np.isfinite(hi) else None, "sent": int(n), "detected": int(d), "crc_ok": int(c)}
                            for lo, hi, (n, d, c) in zip(REALISED_SNR_EDGES_DB[:-1], REALISED_SNR_EDGES_DB[1:], bins)],
        "snr_bias_db": stat(np.mean, snr_err), "snr_rmse_db": stat(lambda a: np.sqrt(np.mean(a ** 2)), snr_err),
        "ds_true_mean_s": stat(np.mean, ds_true), "ds_est_mean_s": stat(np.mean, ds_est),
        "ds_bias_s": stat(np.mean, ds_est - ds_true),
        "ds_rel_rmse": stat(lambda a: np.sqrt(np.mean(a ** 2)), rel),
        "ds_rel_median_abs_error": stat(lambda a: np.median(np.abs(a)), rel),
        "ds_rel_rmse_nominal": rel_rmse(ds_est, ds_s),
        "ds_realised_over_nominal_sd": stat(lambda a: np.std(a / ds_s), ds_true),
        "ds_estimators": {name: {"mean_s": stat(np.mean, np.asarray(v)), "rel_rmse": rel_rmse(v, ds_true),
                                 "rel_rmse_nominal": rel_rmse(v, ds_s),
                                 "below_resolution_rate": stat(np.mean, np.asarray(v) <= rx.ds.resolution_s)}
                          for name, v in ds_by.items()},
        "cfo_rmse_hz": stat(lambda a: np.sqrt(np.mean(a ** 2)), cfo_err),
        "cfo_rmse_subcarriers": stat(lambda a: np.sqrt(np.mean(a ** 2)) / cfg.subcarrier_spacing_hz, cfo_err),
        "nmse_db": stat(lambda a: 10 * np.log10(np.sum(a) / np.sum(power)), np.asarray(err)),
        "nmse_ls_db": stat(lambda a: 10 * np.log10(np.sum(a) / np.sum(power)), np.asarray(err_ls)),
        "nmse_median_db": stat(lambda a: 10 * np.log10(np.median(a / np.asarray(power))), np.asarray(err)),
        "nmse_ls_median_db": stat(lambda a: 10 * np.log10(np.median(a / np.asarray(power))), np.asarray(err_ls)),
        "seconds": time.perf_counter() - t0,
    }


def _fmt(v, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def markdown(rows: list[dict]) -> str:
    lines = ["| SNR dB | TDL | DS ns | det % | CRC % | SNR bias / RMSE dB | DS true / est ns | DS rel RMSE | "
             "below res. % | CFO RMSE Hz (sc) | NMSE dB (LS) |", "|" + "---|" * 11]
    for r in sorted(rows, key=lambda r: (r["profile"], r["delay_spread_s"], r["snr_db"])):
        lines.append(
            f"| {r['snr_db']:.0f} | {r['profile'][-1]} | {r['delay_spread_s'] * 1e9:.0f} | "
            f"{100 * r['detection_rate']:.1f} | {100 * r['crc_pass_rate']:.1f} | "
            f"{_fmt(r['snr_bias_db'], '+.2f')} / {_fmt(r['snr_rmse_db'], '.2f')} | "
            f"{_fmt(r['ds_true_mean_s'] and r['ds_true_mean_s'] * 1e9, '.0f')} / "
            f"{_fmt(r['ds_est_mean_s'] and r['ds_est_mean_s'] * 1e9, '.0f')} | {_fmt(r['ds_rel_rmse'], '.2f')} | "
            f"{_fmt(r.get('below_resolution_rate') and 100 * r['below_resolution_rate'], '.0f')} | "
            f"{_fmt(r['cfo_rmse_hz'], '.0f')} ({_fmt(r['cfo_rmse_subcarriers'], '.3f')}) | "
            f"{_fmt(r['nmse_db'], '.1f')} ({_fmt(r['nmse_ls_db'], '.1f')}) |")
    return "\n".join(lines)


def delay_spread_markdown(rows: list[dict]) -> str:
    """Per estimator, profile and delay spread: relative RMSE against the realised (path-level) spread and,
    in brackets, against the nominal one, at each SNR of the grid (``a / b`` for 10 / 20 dB), and the share
    of frames flagged below resolution."""
    snrs = sorted({r["snr_db"] for r in rows})
    spreads = sorted({r["delay_spread_s"] for r in rows})
    lines = ["| estimator | TDL | " + " | ".join(f"{d * 1e9:.0f} ns" for d in spreads) + " |",
             "|" + "---|" * (2 + len(spreads))]
    cell = {(r["profile"], r["delay_spread_s"], r["snr_db"]): r for r in rows}
    for name in rows[0]["ds_estimators"]:
        for prof in sorted({r["profile"] for r in rows}):
            out = []
            for d in spreads:
                vals = [cell[(prof, d, s)]["ds_estimators"][name] for s in snrs if (prof, d, s) in cell]
                if not vals:  # a grid that is not a full product (``--smoke``)
                    out.append("—")
                    continue
                rr = " / ".join(_fmt(v["rel_rmse"], ".2f") for v in vals)
                rn = " / ".join(_fmt(v["rel_rmse_nominal"], ".2f") for v in vals)
                below = max((v["below_resolution_rate"] or 0.0) for v in vals)
                out.append(f"{rr} ({rn})" + (f", flagged ≤ {100 * below:.0f} %" if below else ""))
            lines.append(f"| {name} | {prof[-1]} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def targets(rows: list[dict]) -> dict:
    """The issue's targets, evaluated on the grid."""
    det = [r for r in rows if r["snr_db"] >= 0 and r["delay_spread_s"] <= 1000e-9]
    snr = [r for r in rows if r["delay_spread_s"] <= 1000e-9 and r["snr_rmse_db"] is not None]
    wide = rows and rows[0].get("preset", "narrow") != "narrow"
    ds_max = 3000e-9 if wide else 1000e-9
    ds = [r for r in rows if 100e-9 <= r["delay_spread_s"] <= ds_max and r["snr_db"] >= 10
          and r["ds_rel_rmse"] is not None]

    def failing(rs, ok):
        return [f"{r['profile']} {r['delay_spread_s'] * 1e9:.0f} ns {r['snr_db']:.0f} dB" for r in rs if not ok(r)]

    return {
        "detection >= 99.9 % (SNR >= 0 dB, DS <= 1000 ns)": failing(det, lambda r: r["detection_rate"] >= 0.999),
        "SNR RMSE <= 0.5 dB (DS <= 1000 ns)": failing(snr, lambda r: r["snr_rmse_db"] <= 0.5),
        f"DS relative RMSE <= 25 % (100-{ds_max * 1e9:.0f} ns, SNR >= 10 dB)":
            failing(ds, lambda r: r["ds_rel_rmse"] <= 0.25),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--processes", type=int, default=2, choices=(1, 2))
    parser.add_argument("--smoke", action="store_true", help="2 cells × 4 frames, one process")
    parser.add_argument("--no-impairments", action="store_true", help="every hardware impairment off (diagnosis)")
    parser.add_argument("--preset", default="narrow", help="numerology preset (radio/numerology_presets.json)")
    parser.add_argument("--snrs", type=float, nargs="+", default=list(SNRS_DB), help="nominal SNRs (dB)")
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=ALL_PROFILES)
    parser.add_argument("--delay-spreads-ns", type=float, nargs="+", default=[1e9 * d for d in DELAY_SPREADS_S],
                        help="nominal RMS delay spreads (ns)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    cells = list(itertools.product(args.snrs, args.profiles, [1e-9 * d for d in args.delay_spreads_ns]))
    if args.preset != "narrow" and args.out == DEFAULT_OUT:
        args.out = DEFAULT_OUT.with_name(f"estimator_grid_{args.preset}.json")
    if args.smoke:
        cells, args.frames, args.processes = [(10.0, "TDL-C", 100e-9), (20.0, "TDL-A", 300e-9)], 4, 1
    jobs = [(snr, prof, ds, args.frames, 1000 + i, not args.no_impairments, args.preset)
            for i, (snr, prof, ds) in enumerate(cells)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines_path = args.out.with_suffix(".jsonl")
    rows = []
    with lines_path.open("w") as lines:
        if args.processes == 1:
            results = map(run_cell, jobs)
        else:
            pool = multiprocessing.get_context("spawn").Pool(args.processes)
            results = pool.imap_unordered(run_cell, jobs)
        for row in results:
            rows.append(row)
            lines.write(json.dumps(row) + "\n")
            lines.flush()
            print(f"[{len(rows)}/{len(jobs)}] {row['profile']} {row['delay_spread_s'] * 1e9:.0f} ns "
                  f"{row['snr_db']:.0f} dB: det {row['detection_rate']:.3f} crc {row['crc_pass_rate']:.3f} "
                  f"({row['seconds']:.0f} s)", flush=True)
        if args.processes != 1:
            pool.close()
            pool.join()

    import radio
    from common import provenance

    report = {"benchmark": "estimator_grid", "preset": args.preset, "smoke": args.smoke, "frames_per_cell": args.frames,
              "payload_symbols": PAYLOAD_SYMBOLS,
              "impairments": (radio.Impairments() if args.no_impairments else radio.Impairments.typical()).to_dict(),
              "targets_failing": targets(rows), "rows": rows, **provenance()}
    args.out.write_text(json.dumps(report, indent=1))
    print()
    print(markdown(rows))
    print()
    print(delay_spread_markdown(rows))
    print()
    for name, fails in report["targets_failing"].items():
        print(f"- {name}: {'met' if not fails else 'missed in ' + ', '.join(fails)}")
    return rows


if __name__ == "__main__":
    main()
