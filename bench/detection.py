"""Frame loss (preamble not detected + header failed) by realised SNR, the JSCC payload's latent PSNR beside
it, and false detections on noise.

* ``loss``: one frame per emulator call (``radio.Emulator``, impairments ``Impairments.typical()``), AWGN and
  TDL-A/C/E at 100, 300 and 1000 ns, nominal SNRs around the target; each frame's payload is the shipped
  JSCC codec's 128 symbols for a miniature-world VAE latent (``--gaussian`` for random symbols). Per
  *realised*-SNR bin (the emulator's truth for that frame): frames sent, not detected, header failed, ok, and
  the latent PSNR (dB, peak = the latents' peak-to-peak range) of the decoded payloads — the codec decoded
  with the receiver's SNR/delay-spread condition, as the user node does.
* ``false_alarm``: complex Gaussian noise through the receiver in 2²⁰-sample chunks for ``--noise-seconds``
  seconds of samples at the preset's rate: frames reported (any status, i.e. false detections), candidates
  examined, weak candidates not reported, CPU seconds; and the extrapolation to 10 minutes of samples.

The benchmark only uses the API the previous receiver had too, so the same script measures it
(``PYTHONPATH=<old checkout> python bench/detection.py loss --label old``).

    PYTHONPATH=. .venv/bin/python bench/detection.py loss --frames 40       # ~15 min on one core
    PYTHONPATH=. .venv/bin/python bench/detection.py false_alarm --noise-seconds 60
    PYTHONPATH=. .venv/bin/python bench/detection.py --smoke

Results: ``bench/results/detection_<part>_<preset>[_<label>].json``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

RESULTS = Path(__file__).parent / "results"
CELLS = [("AWGN", 0.0, snr) for snr in (-8.0, -7.0, -6.0, -5.0, -4.0, -2.0)] + [
    (p, ds, snr) for p, ds, snr in itertools.product(("TDL-A", "TDL-C", "TDL-E"), (100e-9, 300e-9, 1000e-9),
                                                     (-4.0, 0.0, 4.0))]
BIN_EDGES_DB = (-np.inf, -8.0, -7.0, -6.0, -5.0, -4.0, -3.0, -2.0, 0.0, 5.0, np.inf)
PAYLOAD = 128


def frame_config(preset: str):
    import radio

    return radio.FrameConfig() if preset == "narrow" else radio.FrameConfig(preset=preset)


class Payloads:
    """JSCC symbols of miniature-world latents (or Gaussian symbols) and the latent PSNR of a decode."""

    def __init__(self, gaussian: bool, seed: int):
        self.rng = np.random.default_rng(seed)
        self.codec = None
        if gaussian:
            return
        import torch

        from dekag.downlink import load_downlink
        from dekag.jscc.latents import vae_latents

        torch.set_num_threads(1)
        self.codec = load_downlink().codec
        self.latents = vae_latents().latents[:256]
        self.peak = float(self.latents.max() - self.latents.min())

    def draw(self) -> tuple[np.ndarray, int]:
        """(symbols (128,) complex64, latent index or -1)."""
        if self.codec is None:
            s = self.rng.standard_normal(PAYLOAD) + 1j * self.rng.standard_normal(PAYLOAD)
            return (s / np.sqrt(2)).astype(np.complex64), -1
        import torch

        i = int(self.rng.integers(len(self.latents)))
        with torch.no_grad():
            sym = self.codec.encode(self.latents[i:i + 1], (0.0, 300e-9))[0].numpy().astype(np.complex64)
        return sym, i

    def psnr(self, index: int, frame) -> float | None:
        if self.codec is None:
            return None
        import torch

        from dekag.jscc.codec import symbols_from_numpy
        from dekag.jscc.evaluate import psnr_db

        e = np.clip(frame.noise_var.astype(np.float64), 1e-6, 1 - 1e-6)  # MMSE → unbiased (the user node's)
        s, nv = (frame.symbols / (1 - e)).astype(np.complex64), (e / (1 - e)).astype(np.float32)
        with torch.no_grad():
            z = self.codec.decode(symbols_from_numpy(s, PAYLOAD), torch.from_numpy(nv)[None],
                                  (frame.snr_db, frame.delay_spread_s))
        return psnr_db(self.latents[index:index + 1], z, self.peak)


def loss(preset: str, frames: int, gaussian: bool, seed: int, cells: list) -> dict:
    import radio

    cfg = frame_config(preset)
    tx = radio.Transmitter(cfg)
    payloads = Payloads(gaussian, seed)
    nb = len(BIN_EDGES_DB) - 1
    sent, missed, header_failed, psnr = np.zeros(nb, int), np.zeros(nb, int), np.zeros(nb, int), [[] for _ in range(nb)]
    t0 = time.perf_counter()
    for c, (profile, ds, snr) in enumerate(cells):
        ch = radio.Emulator(cfg, profile=profile, snr_db=snr, delay_spread_s=ds or 100e-9, seed=seed + c,
                            impairments=radio.Impairments.typical())
        for i in range(frames):
            sym, idx = payloads.draw()
            guard = np.zeros(cfg.symbol_length * 4, np.complex64)
            iq, truth = ch(np.concatenate([guard, tx.modulate(sym, frame_id=i), guard]))
            b = int(np.searchsorted(BIN_EDGES_DB, truth.snr_db, side="right")) - 1
            sent[b] += 1
            start = truth.start + guard.size
            found = [f for f in radio.Receiver(cfg).receive(iq, final=True) if abs(f.start - start) <= cfg.cp_length]
            if not found:
                missed[b] += 1
            elif not (found[0].status == "ok" and found[0].header.frame_id == i):
                header_failed[b] += 1
            elif idx >= 0:
                psnr[b].append(payloads.psnr(idx, found[0]))
        print(f"[{c + 1}/{len(cells)}] {profile} {ds * 1e9:.0f} ns {snr:+.0f} dB ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    rows = []
    for b in range(nb):
        lo, hi = BIN_EDGES_DB[b], BIN_EDGES_DB[b + 1]
        rows.append({"realised_snr_db_from": lo if math.isfinite(lo) else None,
                     "realised_snr_db_to": hi if math.isfinite(hi) else None,
                     "sent": int(sent[b]), "not_detected": int(missed[b]), "header_failed": int(header_failed[b]),
                     "loss": (missed[b] + header_failed[b]) / sent[b] if sent[b] else None,
                     "latent_psnr_db_mean": float(np.mean(psnr[b])) if psnr[b] else None,
                     "latent_psnr_frames": len(psnr[b])})
    above = [r for r in rows if r["realised_snr_db_from"] is not None and r["realised_snr_db_from"] >= -5.0]
    lost = sum(r["not_detected"] + r["header_failed"] for r in above)
    total = sum(r["sent"] for r in above)
    return {"preset": preset, "frames_per_cell": frames, "cells": [list(c) for c in cells], "rows": rows,
            "loss_at_realised_snr_ge_-5db": lost / total if total else None, "frames_at_realised_snr_ge_-5db": total,
            "payload": "gaussian" if gaussian else "shipped JSCC codec, miniature-world VAE latents",
            "seconds": time.perf_counter() - t0}


def false_alarm(preset: str, seconds_of_samples: float, seed: int) -> dict:
    import radio

    cfg = frame_config(preset)
    rx = radio.Receiver(cfg)
    rng = np.random.default_rng(seed)
    chunk, total, reported, statuses = 2**20, 0, 0, {}
    target = int(seconds_of_samples * cfg.sample_rate_hz)
    cpu = 0.0
    while total < target:
        x = (rng.standard_normal(chunk, np.float32) + 1j * rng.standard_normal(chunk, np.float32)).astype(np.complex64)
        t = time.process_time()
        frames = rx.receive(x)
        cpu += time.process_time() - t
        total += chunk
        reported += len(frames)
        for f in frames:
            statuses[f.status] = statuses.get(f.status, 0) + 1
    stats = rx.stats.as_dict()
    ten_min = 600 * cfg.sample_rate_hz
    return {"preset": preset, "noise_samples": total, "seconds_of_samples": total / cfg.sample_rate_hz,
            "false_detections": reported, "statuses": statuses, "receiver_stats": stats,
            "false_detections_per_10_min_upper_95": 3.0 * ten_min / total if reported == 0 else reported * ten_min / total,
            "cpu_seconds": cpu, "receiver_msps": total / cpu / 1e6}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["loss", "false_alarm"], help="loss, false_alarm")
    parser.add_argument("--preset", default="narrow")
    parser.add_argument("--frames", type=int, default=40, help="frames per cell (loss)")
    parser.add_argument("--noise-seconds", type=float, default=60.0, help="seconds of samples (false_alarm)")
    parser.add_argument("--gaussian", action="store_true", help="Gaussian payload instead of the JSCC codec")
    parser.add_argument("--label", default="", help="suffix of the result file (e.g. old)")
    parser.add_argument("--seed", type=int, default=90)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if set(args.parts) - {"loss", "false_alarm"}:
        parser.error(f"unknown part in {args.parts}")
    cells = CELLS
    if args.smoke:
        cells, args.frames, args.noise_seconds = [("AWGN", 0.0, -4.0), ("TDL-C", 300e-9, 0.0)], 2, 0.5
    args.out_dir.mkdir(parents=True, exist_ok=True)
    from common import provenance

    report = {}
    for part in args.parts:
        result = (loss(args.preset, args.frames, args.gaussian or args.smoke, args.seed, cells) if part == "loss"
                  else false_alarm(args.preset, args.noise_seconds, args.seed))
        report[part] = result
        name = f"detection_{part}_{args.preset}" + (f"_{args.label}" if args.label else "")
        (args.out_dir / f"{name}.json").write_text(json.dumps(
            {"benchmark": f"detection_{part}", "smoke": args.smoke, **result, **provenance()}, indent=1))
        print(json.dumps({k: v for k, v in result.items() if k not in ("rows", "cells")}, indent=1))
        for r in result.get("rows", []):
            print(r)
    return report


if __name__ == "__main__":
    main()
