"""Receiver throughput (MS/s, one core) per numerology preset, next to a numpy FFT-only bound of the same
sizes, in one run.

Per preset (``--presets``, default all four): a stream of frames (payload ``L`` symbols, 700 noise samples between frames, AWGN at 15 dB, CFO
0.4 subcarrier) is fed to ``radio.Receiver.receive`` in chunks of ``--chunk`` samples. The
"testbed" row is the shape the testbed's links send: 128 JSCC symbols per frame, each followed by
an 8192-sample zero guard (noise only at the receiver), same SNR and CFO. Times are the least
CPU time of this single-threaded process over ``--repeats`` runs (BLAS/OpenMP pinned to one thread). The bound
is what a receiver that did nothing but the OFDM FFTs would cost: one N-point FFT per
``cp + N`` samples of the same stream, batched per chunk; ``fraction_of_fft_bound`` is the receiver's speed as a
fraction of it (issue 9's goal: ≥ 10 %, with ≥ 30 MS/s on the testbed stream at every preset). A noise-only stream measures the
detector alone (its metric and the candidates that noise opens). The receiver is built once per preset
(as a link does) and reset before each run.

    .venv/bin/python bench/receiver_throughput.py            # full run
    .venv/bin/python bench/receiver_throughput.py --smoke    # tiny sizes (CI)

Writes ``bench/results/receiver_throughput.json`` (``--out`` to change; rows carry their ``preset``) and
prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.fft  # noqa: E402

import radio  # noqa: E402
from common import provenance  # noqa: E402


def _stream(cfg: radio.FrameConfig, payload: int, gap: int, frames: int, rng: np.random.Generator
            ) -> np.ndarray:
    tx = radio.Transmitter(cfg)
    parts = []
    for i in range(frames):
        s = (rng.standard_normal(payload) + 1j * rng.standard_normal(payload)) / np.sqrt(2)
        parts += [np.zeros(gap, np.complex64), tx.modulate(s, frame_id=i)]
    x = np.concatenate(parts)
    x = x * np.exp(2j * np.pi * 0.4 * np.arange(x.size) / cfg.fft_size)
    sigma2 = cfg.fft_size / cfg.num_used_subcarriers / 10 ** 1.5
    x = x + np.sqrt(sigma2 / 2) * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size))
    return x.astype(np.complex64)


def _best_time(fn, repeats: int) -> float:
    """Least CPU time of this (single-threaded) process over ``repeats`` calls: one core's cost,
    insensitive to the process being descheduled on a shared machine."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return float(np.min(times))


def _cases(cfg: radio.FrameConfig, payloads: list[int], samples: int, rng: np.random.Generator) -> list:
    shapes = [(f"frames, payload {p}", p, 700) for p in payloads]
    shapes.append(("testbed: payload 128, 8192-zero guard", 128, 8192))
    layout = radio.Receiver(cfg).layout
    cases = []
    for name, payload, gap in shapes:
        frames = max(1, samples // (layout.frame_length(payload) + gap))
        cases.append((name, payload, _stream(cfg, payload, gap, frames, rng), frames))
    noise = (rng.standard_normal(samples) + 1j * rng.standard_normal(samples)) / np.sqrt(2)
    cases.append(("noise only (detector)", 0, noise.astype(np.complex64), 0))
    return cases


def _rows(preset: str, args: argparse.Namespace, rng: np.random.Generator) -> list[dict]:
    cfg = radio.FrameConfig(preset=preset)
    sl = cfg.symbol_length
    rx = radio.Receiver(cfg)
    rows = []
    for name, payload, x, frames in _cases(cfg, args.payloads, args.samples, rng):
        chunks = [x[i:i + args.chunk] for i in range(0, x.size, args.chunk)]
        decoded = []

        def run_receiver():
            rx.reset()
            out = []
            for c in chunks:
                out += rx.receive(c)
            out += rx.flush()
            decoded[:] = out

        def run_fft_bound():
            for c in chunks:
                m = c.size // sl
                scipy.fft.fft(c[:m * sl].reshape(m, sl)[:, cfg.cp_length:], axis=1)

        t_rx = _best_time(run_receiver, args.repeats)
        t_fft = _best_time(run_fft_bound, args.repeats)
        rows.append({"preset": preset, "case": name, "payload_symbols": payload, "samples": int(x.size),
                     "frames_sent": frames, "frames_decoded": sum(f.status == "ok" for f in decoded),
                     "receiver_us_per_frame": t_rx / frames * 1e6 if frames else None,
                     "receiver_msps": x.size / t_rx / 1e6, "fft_bound_msps": x.size / t_fft / 1e6,
                     "receiver_over_fft_time": t_rx / t_fft, "fraction_of_fft_bound": t_fft / t_rx, "chunk": args.chunk,
                     "sample_rate_hz": cfg.sample_rate_hz, "realtime_factor": x.size / t_rx / cfg.sample_rate_hz,
                     "noise_candidates": rx.stats.candidates if not frames else None, "smoke": args.smoke})
    # fixed cost of a frame: its receiver time minus what the detector alone spends on its samples
    detector_msps = rows[-1]["receiver_msps"]
    for r in rows[:-1]:
        r["decode_us_per_frame"] = (r["receiver_us_per_frame"]
                                    - r["samples"] / r["frames_sent"] / detector_msps)
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["narrow", "wide-7.68", "wide-15.36", "wide-30.72"])
    parser.add_argument("--payloads", type=int, nargs="*", default=[800, 8000],
                        help="payload lengths (complex symbols per frame) of the 700-gap streams")
    parser.add_argument("--samples", type=int, default=2_000_000, help="approximate stream length")
    parser.add_argument("--chunk", type=int, default=65_536, help="samples per receive() call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for a CI smoke check")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "receiver_throughput.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.presets, args.payloads, args.samples, args.chunk, args.repeats = ["narrow"], [80], 20_000, 8_192, 1
    rng = np.random.default_rng(0)
    rows = [r for preset in args.presets for r in _rows(preset, args, rng)]
    print("| preset | stream | frames decoded / sent | receiver MS/s (× real time) | µs per frame (of which decoding) "
          "| FFT-only bound MS/s | receiver time / FFT time |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        per = (f"{r['receiver_us_per_frame']:.0f} ({r['decode_us_per_frame']:.0f})" if r["frames_sent"]
               else "–")
        print(f"| {r['preset']} | {r['case']} | {r['frames_decoded']} / {r['frames_sent']} "
              f"| {r['receiver_msps']:.1f} ({r['realtime_factor']:.1f}×) | {per} "
              f"| {r['fft_bound_msps']:.1f} | {r['receiver_over_fft_time']:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "provenance": provenance()}, indent=1))
    return rows


if __name__ == "__main__":
    main()
