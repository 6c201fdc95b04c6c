"""Digital baseline vs JSCC: latent PSNR against SNR through the training channel, with chance and ceilings.

    .venv/bin/python bench/digital_baseline.py                       # the comparison (a few minutes)
    .venv/bin/python bench/digital_baseline.py --smoke               # seconds: CI smoke check
    .venv/bin/python bench/digital_baseline.py --measure-thresholds  # re-measure the default MCS table

Codecs, on the same K = 128 symbols per latent: the shipped JSCC codec with CALA (``load_downlink().codec``)
and :class:`dekag.digital.DigitalCodec` (quantised DCT coefficients or latent elements, whichever
``DigitalCodec.fit`` finds better on the fit latents; CRC, 5G LDPC, QAM; MCS chosen from the
SNR). Both see the same condition (true SNR and delay spread, as fed back) and, at each point, the same
fading and noise (Sionna's generator is reseeded per point and codec). Channels: ``awgn`` (y = x + n, the
decoder told the true noise variance) and the differentiable training channel
(``TrainingChannel(ChannelConfig(), K)``: LS estimation on pilots, LMMSE equalisation; unbiased symbols with
their effective noise variance) at TDL-E 30 ns (strong line of sight: AWGN-like), TDL-A 300 ns and TDL-C
1000 ns (Rayleigh, frequency selective).

SNR grid −5…25 dB: the JSCC codec was trained on 0–20 dB; the points above show where the curves cross.

Latents: ``seg`` (default) generates fresh latents with the shipped package's aligned edge model (seeds
300 000…, all ten classes, the world's training templates, the package's sampler: what the edge node
sends); 80 % fit the digital quantiser's statistics, 20 % are the test set. The JSCC codec was trained on
S_EG latents of seeds 200 000… (bench/make_seg_latents.py), so the test latents are held out for both.
``standin`` uses the bundled-digits stand-in (smoke only).

Latent PSNR of one latent = 10·log10(range² / MSE), range = peak-to-peak of the SENT latent, MSE over its
elements (as the user node computes it); each figure is the mean over test latents of that dB value.
Chance = the dataset mean latent (what the digital decoder outputs when every codeword fails); ceilings =
the digital latent with no channel errors (quantisation only, at the MCS of that SNR) and the JSCC decoder
on the unperturbed symbols told the condition's noise variance.

Writes ``bench/results/digital_baseline.json`` and ``.png`` (``--measure-thresholds``:
``digital_baseline_thresholds.json``), prints markdown.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import provenance
from dekag.digital import DigitalCodec, DigitalCodecConfig, frame_layout, select_mcs
from dekag.digital.mcs import mcs_table
from dekag.jscc import (
    ChannelConfig,
    Condition,
    LatentSet,
    TrainingChannel,
    standin_latents,
)
from dekag.jscc.training_channel import seed_sionna

RESULTS = Path(__file__).resolve().parent / "results"
SNRS_DB = [-5.0, -2.5, 0.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0, 22.5, 25.0]  # beyond 20 dB: where they cross
CHANNELS = {  # name: (TDL model or None for AWGN, RMS delay spread s)
    "awgn": (None, 30e-9), "tdl_e_30ns": ("E", 30e-9), "tdl_a_300ns": ("A", 300e-9), "tdl_c_1000ns": ("C", 1000e-9)}
SEG_SEED0 = 300_000
TARGET_BLER = 0.1


# -- latents ------------------------------------------------------------------------------------------------
def seg_latents(downlink, per_class: int) -> LatentSet:
    """Fresh latents of the package's aligned edge model (see the module docstring)."""
    from bench.make_seg_latents import seg_prompts
    from dekag import ldm
    from dekag.makd.align import to_edge_prompt
    from dekag.miniature.world import load_world

    ldm.quiet_library_output()
    world = load_world()
    pipe = downlink.aligned_edge(world)
    prompts, _, seeds = seg_prompts(per_class, SEG_SEED0)
    z = ldm.generate_latents(pipe, [to_edge_prompt(p, downlink) for p in prompts], seeds, **downlink.sampling)
    return LatentSet(z.float().contiguous(), f"aligned edge of the shipped package, {len(z)} fresh latents "
                                             f"(seeds {SEG_SEED0}…)")


# -- metrics ------------------------------------------------------------------------------------------------
def latent_psnr_db(sent: torch.Tensor, received: torch.Tensor) -> torch.Tensor:
    """[B] per-latent PSNR: peak = peak-to-peak range of each sent latent (as the user node computes it)."""
    peak = sent.flatten(1).amax(1) - sent.flatten(1).amin(1)
    mse = (sent - received).double().square().flatten(1).mean(1).clamp_min(1e-12)
    return 10 * torch.log10(peak.double().square() / mse)


# -- channels -----------------------------------------------------------------------------------------------
class Channels:
    """AWGN and training-channel passes with the same randomness for every codec at a point."""

    def __init__(self, num_symbols: int, seed: int = 0) -> None:
        self.training = TrainingChannel(ChannelConfig(), num_symbols, seed=seed)
        self.models = self.training.config.tdl_models

    def __call__(self, name: str, symbols: torch.Tensor, snr_db: float, point_seed: int):
        model, spread = CHANNELS[name]
        b = symbols.shape[0]
        if model is None:
            g = torch.Generator().manual_seed(point_seed)
            no = 10 ** (-snr_db / 10)
            noise = torch.complex(torch.randn(symbols.shape, generator=g), torch.randn(symbols.shape, generator=g))
            return symbols + math.sqrt(no / 2) * noise, torch.full((b,), no)
        seed_sionna(point_seed)
        return self.training(symbols, torch.full((b,), snr_db), torch.full((b,), spread),
                             torch.full((b,), self.models.index(model), dtype=torch.long))


# -- MCS thresholds -----------------------------------------------------------------------------------------
def bler(cfg: DigitalCodecConfig, row: tuple, snr_db: float, latents: torch.Tensor, seed: int) -> float:
    """Codeword error rate of one MCS row (forced) over AWGN at ``snr_db``."""
    codec = DigitalCodec(replace(cfg, mcs_table=((row[0], row[1], 0.0),), margin_db=0.0))
    codec.set_latent_stats(latents)
    cond = Condition(snr_db, 30e-9)
    g = torch.Generator().manual_seed(seed)
    sym = codec.encode(latents, cond)
    no = 10 ** (-snr_db / 10)
    y = sym + math.sqrt(no / 2) * torch.complex(torch.randn(sym.shape, generator=g), torch.randn(sym.shape, generator=g))
    return codec.decode_report(y, no, cond).codeword_failure_rate


def measure_thresholds(cfg: DigitalCodecConfig, frames: int, step_db: float = 0.25) -> list[dict]:
    """Per MCS row: AWGN SNR at codeword error rate ``TARGET_BLER`` (log-interpolated), K = cfg.num_symbols."""
    latents = torch.randn(frames, *cfg.latent_shape, generator=torch.Generator().manual_seed(0))
    out = []
    for i, (m, r, _) in enumerate(cfg.mcs_table):
        snr = round(4 * 10 * math.log10(2 ** (m * r) - 1)) / 4  # Shannon limit: BLER ≈ 1 below it
        curve = [(snr, bler(cfg, (m, r), snr, latents, i))]
        while curve[-1][1] >= TARGET_BLER:
            snr += step_db
            curve.append((snr, bler(cfg, (m, r), snr, latents, i)))
        (s0, p0), (s1, p1) = curve[-2], curve[-1]
        lp0, lp1 = math.log(max(p0, 1e-4)), math.log(max(p1, 1 / frames / 2))
        thr = s0 + (s1 - s0) * (math.log(TARGET_BLER) - lp0) / (lp1 - lp0)
        out.append({"bits_per_symbol": m, "code_rate": r, "threshold_snr_db": round(thr, 1),
                    "shannon_limit_db": curve[0][0], "curve": curve})
        print(f"[thresholds] {mcs_table([(m, r, 0)])[0].name}: {thr:.2f} dB", flush=True)
    return out


# -- timing -------------------------------------------------------------------------------------------------
def time_decode(codec, latents: torch.Tensor, snr_db: float, spread_s: float, reps: int) -> dict[str, float]:
    """Median encode and decode ms per latent at batch 1 and at batch len(latents), noiseless-ish input."""
    out = {}
    for batch in (1, len(latents)):
        lat, cond = latents[:batch], Condition(snr_db, spread_s)
        sym = codec.encode(lat, cond)
        nv = torch.full((batch,), 10 ** (-snr_db / 10))
        enc, dec = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            codec.encode(lat, cond)
            t1 = time.perf_counter()
            codec.decode(sym, nv, cond)
            t2 = time.perf_counter()
            enc.append((t1 - t0) / batch * 1e3)
            dec.append((t2 - t1) / batch * 1e3)
        out[f"batch{batch}"] = {"encode_ms_per_latent": statistics.median(enc),
                                "decode_ms_per_latent": statistics.median(dec)}
    return out


# -- the comparison -----------------------------------------------------------------------------------------
@torch.no_grad()
def compare(jscc, digital: dict[str, DigitalCodec], test: torch.Tensor, channels: Channels, snrs: list[float],
            channel_names: list[str]) -> list[dict]:
    """Rows {channel, snr_db, method, latent_psnr_db, …} for JSCC, each digital codec, chance and ceilings."""
    head = next(iter(digital.values()))
    chance = latent_psnr_db(test, head.mean_latent().expand_as(test)).mean().item()
    rows = []
    for ci, name in enumerate(channel_names):
        spread = CHANNELS[name][1]
        for si, snr in enumerate(snrs):
            seed = 10_000 + 100 * ci + si
            cond = Condition(snr, spread)
            base = {"channel": name, "snr_db": snr, "delay_spread_s": spread}
            y, nv = channels(name, jscc.encode(test, cond), snr, seed)
            rows.append({**base, "method": "jscc", "latent_psnr_db": latent_psnr_db(test, jscc.decode(y, nv, cond))
                         .mean().item()})
            ceiling = jscc.decode(jscc.encode(test, cond), 10 ** (-snr / 10), cond)
            rows.append({**base, "method": "jscc_ceiling", "latent_psnr_db": latent_psnr_db(test, ceiling).mean().item()})
            rows.append({**base, "method": "chance", "latent_psnr_db": chance})
            for label, codec in digital.items():
                y, nv = channels(name, codec.encode(test, cond), snr, seed)
                rep = codec.decode_report(y, nv, cond)
                mcs = codec.mcs_for(cond)[0]
                rows.append({**base, "method": label, "latent_psnr_db": latent_psnr_db(test, rep.latent).mean().item(),
                             "mcs": mcs.name, "mcs_index": mcs.index, "payload_bits": codec.layout(mcs).payload_bits,
                             "codeword_failure_rate": rep.codeword_failure_rate,
                             "margin_db": codec.config.margin_db})
                if label == "digital":
                    rows.append({**base, "method": "digital_ceiling", "mcs": mcs.name, "latent_psnr_db":
                                 latent_psnr_db(test, codec.quantised(test, cond)).mean().item()})
            print(f"[digital_baseline] {name} {snr:+.1f} dB: " + ", ".join(
                f"{r['method']} {r['latent_psnr_db']:.1f}" for r in rows if r["channel"] == name
                and r["snr_db"] == snr), flush=True)
    return rows


def plot(rows: list[dict], channel_names: list[str], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(channel_names), figsize=(4.2 * len(channel_names), 6.5), squeeze=False,
                             sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    styles = {"jscc": ("C0", "-", "o"), "digital": ("C3", "-", "s"), "jscc_ceiling": ("C0", ":", None),
              "digital_ceiling": ("C3", ":", None), "chance": ("0.5", "--", None)}
    for j, name in enumerate(channel_names):
        ax, ax_f = axes[0, j], axes[1, j]
        for method in sorted({r["method"] for r in rows}):
            rs = sorted((r for r in rows if r["channel"] == name and r["method"] == method), key=lambda r: r["snr_db"])
            color, ls, marker = styles.get(method, (None, "-.", "^"))
            style = {"color": color, "ls": ls, "marker": marker, "ms": 4, "label": method}
            if method not in styles:  # digital at another margin: context, drawn light
                style.update(lw=0.8, ms=2, alpha=0.6)
            ax.plot([r["snr_db"] for r in rs], [r["latent_psnr_db"] for r in rs], **style)
            if "codeword_failure_rate" in rs[0]:
                ax_f.plot([r["snr_db"] for r in rs], [r["codeword_failure_rate"] for r in rs], **style)
        ax.set(title=f"latent PSNR vs SNR, {name} (K = 128)", ylabel="latent PSNR (dB)")
        ax_f.set(xlabel="SNR (dB)", ylabel="failed codewords", ylim=(-0.03, 1.03),
                 title="digital: fraction of failed codewords")
        for a in (ax, ax_f):
            a.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(report: dict) -> str:
    rows, lines = report["rows"], []
    methods = [m for m in ("digital", "digital_ceiling", "jscc", "jscc_ceiling", "chance")
               if any(r["method"] == m for r in rows)]
    for name in report["channels"]:
        lines += [f"#### {name}: mean latent PSNR (dB)", "",
                  "| SNR (dB) | MCS | " + " | ".join(methods) + " | failed codewords |",
                  "|---|---|" + "---|" * len(methods) + "---|"]
        for snr in report["snrs_db"]:
            at = {r["method"]: r for r in rows if r["channel"] == name and r["snr_db"] == snr}
            lines.append(f"| {snr:g} | {at['digital']['mcs']} | "
                         + " | ".join(f"{at[m]['latent_psnr_db']:.1f}" for m in methods)
                         + f" | {at['digital']['codeword_failure_rate']:.2f} |")
        lines.append("")
    margins = sorted({r["method"] for r in rows if r["method"].startswith("digital_margin")})
    if margins:
        lines += ["#### digital at other margins: mean latent PSNR over the SNR grid (dB)", "",
                  f"| channel | digital ({report['digital_config']['margin_db']:g} dB, default) | "
                  + " | ".join(margins) + " |", "|---|" + "---|" * (1 + len(margins))]
        for name in report["channels"]:
            lines.append(f"| {name} | " + " | ".join(
                f"{statistics.mean(r['latent_psnr_db'] for r in rows if r['channel'] == name and r['method'] == m):.2f}"
                for m in ["digital"] + margins) + " |")
        lines.append("")
    lines += ["#### decode time per latent (ms, CPU, 1 thread)", "", "| codec | batch 1 | batch 64 |", "|---|---|---|"]
    for label, t in report["timing_cpu_1thread"].items():
        lines.append(f"| {label} | {t['batch1']['decode_ms_per_latent']:.2f} | "
                     f"{t[next(k for k in t if k != 'batch1')]['decode_ms_per_latent']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="stand-in latents, 3 SNRs, 2 channels (seconds)")
    ap.add_argument("--source", choices=("seg", "standin"), default=None, help="latents (default seg; smoke standin)")
    ap.add_argument("--per-class", type=int, default=64, help="seg latents per digit class (N = 10 × this)")
    ap.add_argument("--margins", type=float, nargs="*", default=[], help="extra digital margins (dB) to compare")
    ap.add_argument("--ldpc-iterations", type=int, default=None, help="BP iterations (default: the config's)")
    ap.add_argument("--measure-thresholds", action="store_true", help="re-measure the MCS table's AWGN thresholds")
    ap.add_argument("--frames", type=int, default=400, help="frames per SNR when measuring thresholds")
    ap.add_argument("--out", default=None, help="JSON path")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    suffix = "_smoke" if args.smoke else ""
    cfg = DigitalCodecConfig()
    if args.ldpc_iterations:
        cfg = replace(cfg, ldpc_iterations=args.ldpc_iterations)
    if args.measure_thresholds:
        out = Path(args.out) if args.out else RESULTS / f"digital_baseline_thresholds{suffix}.json"
        rows = measure_thresholds(cfg, 40 if args.smoke else args.frames)
        report = {"bench": "digital_baseline_thresholds", "target_bler": TARGET_BLER, "channel": "awgn",
                  "num_symbols": cfg.num_symbols, "ldpc_iterations": cfg.ldpc_iterations, "rows": rows,
                  "provenance": provenance()}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
        print("mcs_table = (" + ", ".join(f"({r['bits_per_symbol']}, {r['code_rate']:.6g}, {r['threshold_snr_db']})"
                                          for r in rows) + ")")
        return report

    from dekag.downlink import load_downlink

    downlink = load_downlink()
    jscc = downlink.codec
    source = args.source or ("standin" if args.smoke else "seg")
    latents = standin_latents(0) if source == "standin" else seg_latents(downlink, args.per_class)
    fit, test = latents.split(0.2, seed=0)
    if args.smoke:
        test = test[:8]
    snrs = [-5.0, 10.0, 20.0] if args.smoke else SNRS_DB
    channel_names = ["awgn", "tdl_a_300ns"] if args.smoke else list(CHANNELS)
    chosen = DigitalCodec.fit(DigitalCodecConfig.matching(jscc.config, ldpc_iterations=cfg.ldpc_iterations), fit)
    base = chosen.config                                       # its transform chosen on the fit latents
    digital = {"digital": chosen}
    digital.update({f"digital_margin_{m:g}dB": DigitalCodec(replace(base, margin_db=m)) for m in args.margins})
    other = DigitalCodec(replace(base, transform="identity" if base.transform == "dct" else "dct"))
    for codec in [c for c in (*digital.values(), other) if c is not chosen]:
        codec.set_latent_stats(fit)

    t0 = time.perf_counter()
    rows = compare(jscc, digital, test, Channels(jscc.num_symbols), snrs, channel_names)
    seconds = time.perf_counter() - t0
    at_row = {mcs.name: mcs.threshold_snr_db + base.margin_db + 0.01 for mcs in mcs_table(base.mcs_table)}
    ceilings = {label: {name: latent_psnr_db(test, codec.quantised(test, (snr, 30e-9))).mean().item()
                        for name, snr in at_row.items()}
                for label, codec in ((base.transform, chosen), (other.config.transform, other))}
    reps = 2 if args.smoke else 10
    timing_batch = test[:min(64, len(test))]
    timing = {"jscc": time_decode(jscc, timing_batch, 10.0, 100e-9, reps)}
    for name, snr in at_row.items():
        timing[f"digital {name}"] = time_decode(digital["digital"], timing_batch, snr, 100e-9, reps)
    mid = mcs_table(base.mcs_table)[len(base.mcs_table) // 2]
    for iterations in (5, 10):
        codec = DigitalCodec(replace(base, ldpc_iterations=iterations))
        codec.set_latent_stats(fit)
        timing[f"digital {mid.name}, {iterations} BP iterations"] = time_decode(codec, timing_batch, at_row[mid.name],
                                                                                100e-9, reps)
    report = {
        "bench": "digital_baseline", "smoke": args.smoke, "latent_source": latents.source,
        "num_fit_latents": len(fit), "num_test_latents": len(test), "num_symbols": jscc.num_symbols,
        "psnr_definition": "per latent 10·log10(range²/MSE), range = peak-to-peak of the sent latent; mean over "
                           "test latents of the dB values",
        "condition": "true SNR and RMS delay spread given to both codecs", "channels": channel_names,
        "snrs_db": snrs, "digital_config": base.to_dict(),
        "mcs_per_snr_db": {f"{s:g}": select_mcs(base.mcs_table, s, base.margin_db).name for s in snrs},
        "payload_bits_per_mcs": {m.name: frame_layout(m, base.num_symbols).payload_bits
                                 for m in mcs_table(base.mcs_table)},
        "transform": {"chosen": base.transform, "rule": "DigitalCodec.fit: lower quantisation error on the fit latents",
                      "quantisation_error_db_on_fit": {c.config.transform: c.quantisation_error_db(fit)
                                                       for c in (chosen, other)}},
        "quantisation_only_psnr_db_per_mcs": ceilings,
        "timing_cpu_1thread": timing, "compare_seconds": round(seconds, 1), "rows": rows,
        "provenance": provenance(),
    }
    out = Path(args.out) if args.out else RESULTS / f"digital_baseline{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    plot(rows, channel_names, out.with_suffix(".png"))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
