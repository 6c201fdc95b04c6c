"""Header channel code: polar SCL-8 + CRC-16 against the 8× repetition code it replaced, on the same
640 BPSK resource elements; decode time; CRC false-accept on noise.

Three parts (all on the coded-bit level, one BPSK value per resource element, per-RE SNR = Es/N0):

* ``bler``: block error rate (wrong header or CRC fail) vs Es/N0 over AWGN and over independent
  Rayleigh fading per resource element (the header's interleaver spreads the bits over subcarriers and
  symbols; the receiver knows the channel). Repetition: each of the 80 bits on 8 REs, maximum-ratio
  combined, then CRC-16 (the old header). Polar: ``radio.header_code.PolarHeaderCode`` then CRC-16.
* ``timing``: decode time per header, fast path and SCL, batch 1 and batch 64.
* ``false_accept``: LLRs of pure noise (scaled as the receiver's for a noise channel estimate between
  its SNR gate and +3 dB) through the full decoder (fast path, then SCL-8), counting blocks whose
  CRC-11 passed and blocks whose CRC-16 then also passed (a wrongly accepted header), with the
  one-sided 95 % upper bound of the false-accept rate. Runs for ``--noise-headers`` blocks or
  ``--max-seconds``, writing its count after every chunk of 1024, and resumes a stopped run.

    .venv/bin/python bench/header_code.py bler timing          # ~5 min
    nohup .venv/bin/python bench/header_code.py false_accept --noise-headers 1000448 &   # ~1.5 h, resumable
    .venv/bin/python bench/header_code.py --smoke               # seconds

Results: ``bench/results/header_code_<part>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from radio.header import HEADER_BITS, FrameHeader
from radio.header_code import N_CODED, PolarHeaderCode

REPETITION = N_CODED // HEADER_BITS
RESULTS = Path(__file__).parent / "results"


def random_headers(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` valid 80-bit headers with CRC-16, shape (count, 80) uint8."""
    return np.stack([FrameHeader(frame_id=int(rng.integers(65536)), payload_len=int(rng.integers(1, 2**20)),
                                 numerology_id=int(rng.integers(16)), snr_db=float(rng.uniform(-5, 30)),
                                 delay_spread_s=float(rng.uniform(0, 4e-6))).to_bits() for _ in range(count)])


def channel_llr(coded: np.ndarray, snr_db: float, fading: bool, rng: np.random.Generator) -> np.ndarray:
    """BPSK over AWGN or per-RE Rayleigh (known gain), LLR = ln P(1)/P(0), shape of ``coded``."""
    es = 10 ** (snr_db / 10)
    gain = rng.exponential(size=coded.shape) if fading else np.ones(coded.shape)  # |h|²
    # matched-filter output Re(h* y) / |h| = sqrt(|h|² Es) x + N(0, 1/2)
    y = np.sqrt(gain * es) * (1.0 - 2.0 * coded) + rng.standard_normal(coded.shape) * np.sqrt(0.5)
    return -4.0 * np.sqrt(gain * es) * y


def repetition_decode(llr: np.ndarray) -> np.ndarray:
    """The old header: coded bit j carries header bit j % 80; MRC = sum of LLRs. (B, 640) → (B, 80)."""
    return (llr.reshape(llr.shape[0], REPETITION, HEADER_BITS).sum(axis=1) > 0).astype(np.uint8)


def block_errors(bits: np.ndarray, decoded: np.ndarray, ok: np.ndarray) -> int:
    """Blocks lost: decoder failed, CRC-16 failed, or (never seen) accepted with wrong bits."""
    good = ok & np.array([FrameHeader.from_bits(b) is not None for b in decoded]) & (decoded == bits).all(axis=1)
    return int((~good).sum())


def bler(blocks: int, seed: int) -> dict:
    code, rng = PolarHeaderCode(), np.random.default_rng(seed)
    rows = []
    for fading, grid in ((False, np.arange(-10.0, 4.1, 1.0)), (True, np.arange(-8.0, 14.1, 2.0))):
        for snr in grid:
            bits = random_headers(rng, blocks)
            rep_llr = channel_llr(np.tile(bits, REPETITION), snr, fading, rng)
            rep = block_errors(bits, repetition_decode(rep_llr), np.ones(blocks, bool))
            pol_llr = channel_llr(code.encode(bits), snr, fading, rng)
            dec, ok = code.decode(pol_llr)
            pol = block_errors(bits, dec, ok)
            rows.append({"channel": "rayleigh_per_re" if fading else "awgn", "es_n0_db": float(snr),
                         "blocks": blocks, "repetition_bler": rep / blocks, "polar_bler": pol / blocks})
            print(rows[-1], flush=True)
    return {"rows": rows}


def timing(repeats: int, seed: int) -> dict:
    import torch

    torch.set_num_threads(1)
    code, rng = PolarHeaderCode(), np.random.default_rng(seed)
    bits = random_headers(rng, 64)
    out = {}
    t = time.perf_counter()
    code.decode_list(channel_llr(code.encode(bits[:1]), 0.0, False, rng))  # import + build
    out["first_list_decode_s_incl_import"] = time.perf_counter() - t
    for batch in (1, 64):
        for name, snr in (("fast", 10.0), ("list", -3.0)):
            llr = channel_llr(code.encode(bits[:batch]), snr, False, rng)
            fn = code.decode_fast if name == "fast" else code.decode_list
            best = np.inf
            for _ in range(repeats):
                t = time.perf_counter()
                fn(llr)
                best = min(best, time.perf_counter() - t)
            out[f"{name}_batch{batch}_ms_per_header"] = 1e3 * best / batch
    llr = channel_llr(code.encode(bits[:1]), 0.0, False, rng)
    t = time.perf_counter()
    for _ in range(repeats):
        np.tile(llr, 1)[:, :HEADER_BITS * REPETITION].reshape(1, REPETITION, HEADER_BITS).sum(axis=1)
    out["repetition_batch1_ms_per_header"] = 1e3 * (time.perf_counter() - t) / repeats
    print(out, flush=True)
    return out


NOISE_CHUNK = 1024
"""Noise headers per decoder batch of ``false_accept`` (SCL-8 costs ~5 ms per header at 64 to 1024)."""
NOISE_SNR_DB = (-10.0, 3.0)
"""Range of the per-header SNR that sets the noise LLRs' scale: from the receiver's SNR gate
(``ReceiverConfig.min_snr_db``) to above it, where noise candidates that reach the decoder lie."""


def noise_llr(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """LLRs the receiver computes from pure noise, shape (count, 640) float32, and each header's SNR (dB).

    The receiver's LLR is ``−4/N0 · Re(conj(H) y)``; for noise ``y`` and a channel estimate of SNR
    ``|H|²/N0`` it is N(0, 8 |H|²/N0): its scale (not its shape) depends on the estimate, so each header
    draws an SNR uniformly (dB) over :data:`NOISE_SNR_DB`.
    """
    snr_db = rng.uniform(*NOISE_SNR_DB, count)
    std = np.sqrt(8.0 * 10 ** (snr_db / 10))[:, None]
    return (std * rng.standard_normal((count, N_CODED))).astype(np.float32), snr_db


def upper_95(events: int, trials: int) -> float:
    """One-sided 95 % Clopper-Pearson upper bound of a rate from ``events`` in ``trials``."""
    from scipy.stats import beta

    return float(beta.ppf(0.95, events + 1, trials - events)) if events < trials else 1.0


def false_accept(total: int, max_seconds: float, seed: int, out: Path) -> dict:
    """Noise headers through the receiver's decoder (``PolarHeaderCode.decode``: fast path, then SCL-8)
    and the CRC-16, in chunks of :data:`NOISE_CHUNK` (or ``total`` if fewer) whose noise is seeded by (seed, chunk index):
    resumable from ``out`` (a run of the same seed continues where it stopped), which is rewritten
    after every chunk."""
    import torch

    torch.set_num_threads(1)
    code, size = PolarHeaderCode(), min(NOISE_CHUNK, total)
    counts = {"noise_headers": 0, "fast_path_accepted": 0, "decoder_crc11_passed": 0,
              "crc16_also_passed_false_accepts": 0, "seconds": 0.0}
    if out.exists():
        old = json.loads(out.read_text())
        if old.get("seed") == seed and old.get("chunk") == size and old.get("noise_snr_db") == list(NOISE_SNR_DB):
            counts = {key: old[key] for key in counts}
    t0 = time.perf_counter() - counts["seconds"]

    def result() -> dict:
        n, k = counts["noise_headers"], counts["crc16_also_passed_false_accepts"]
        return {**counts, "false_accept_rate_upper_95": upper_95(k, n) if n else 1.0,
                "crc11_pass_rate": counts["decoder_crc11_passed"] / n if n else None, "seed": seed, "chunk": size,
                "noise_snr_db": list(NOISE_SNR_DB)}

    while counts["noise_headers"] < total and time.perf_counter() - t0 < max_seconds:
        chunk = counts["noise_headers"] // size
        llr, _ = noise_llr(np.random.default_rng([seed, chunk]), size)
        counts["fast_path_accepted"] += int(code.decode_fast(llr)[1].sum())
        bits, ok = code.decode(llr)
        counts["decoder_crc11_passed"] += int(ok.sum())
        counts["crc16_also_passed_false_accepts"] += sum(FrameHeader.from_bits(b) is not None for b in bits[ok])
        counts["noise_headers"] += size
        counts["seconds"] = time.perf_counter() - t0
        out.write_text(json.dumps(result(), indent=1))
    print(result(), flush=True)
    return result()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["bler", "timing"], help="bler, timing, false_accept")
    parser.add_argument("--blocks", type=int, default=2000, help="headers per BLER point")
    parser.add_argument("--noise-headers", type=int, default=100_000)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--smoke", action="store_true", help="every part, tiny")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if set(args.parts) - {"bler", "timing", "false_accept"}:
        parser.error(f"unknown part in {args.parts}")
    if args.smoke:
        args.parts, args.blocks, args.noise_headers = ["bler", "timing", "false_accept"], 20, 64
    args.out_dir.mkdir(parents=True, exist_ok=True)
    from common import provenance

    report = {}
    for part in args.parts:
        path = args.out_dir / f"header_code_{part}.json"
        if part == "bler":
            report[part] = bler(args.blocks, args.seed)
        elif part == "timing":
            report[part] = timing(3 if args.smoke else 20, args.seed)
        else:
            report[part] = false_accept(args.noise_headers, args.max_seconds, args.seed, path)
        path.write_text(json.dumps({"benchmark": f"header_code_{part}", "smoke": args.smoke, **report[part],
                                    **provenance()}, indent=1))
    return report


if __name__ == "__main__":
    main()
