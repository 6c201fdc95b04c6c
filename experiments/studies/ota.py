"""Study ``ota``: the over-the-air lab run as a study — the real edge and user nodes, the real ZeroMQ feedback,
the Pluto backend — over a TX-gain sweep; runnable end to end here through the fake device.

Each point runs the two nodes (in one process) over one radio in cabled loopback: here a
:class:`~radio.backends.FakePluto` whose air is a TDL channel with CFO and phase noise and whose path loss
stands for the attenuators; in the lab a real Pluto with its TX cabled to its RX (or, with
``dekag-testbed edge``/``user`` on two hosts, the runbook below). Each point's run folder (rows, figures,
summary) is kept in ``runs/`` of the study folder. Beside the loop, the digital baseline goes through the same
radio at the same gain (held-out latents, MCS from the SNR the loop measured). PSNR is plotted against the
SNR the receiver measured, since over the air there is no ground truth.

Runbook (also in the README's lab section):

* **Wiring.** TX1 → SMA cable → fixed attenuators → RX1 (one Pluto in loopback, or Pluto A → Pluto B). Never
  cable TX to RX without at least 30 dB of attenuation; 40–60 dB lets TX gains from −40 to 0 dB span the
  codec's 0–20 dB range. Antennas instead of cable: keep 1 m or more between them.
* **Frequencies.** Both sides on the same ``center_frequency_hz``; use a band you may transmit in (e.g. 915 MHz
  or 2.4 GHz ISM where permitted) or stay cabled. The default numerology occupies 2.88 MHz.
* **Gains.** Manual RX gain (the backend sets ``manual`` first); start with ``tx_gain_db = −40`` and raise it in
  5 dB steps while the user's ``snr_db_est`` is below what you want; the ADC must not clip (the user's rows
  flag ``clipped`` frames).
* **Safety.** Transmit only into cable and attenuators or within your licence; switch TX off
  (``tx_gain_db = −89.75``) before changing cabling.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from experiments.config import default_config
from experiments.report import join_frames
from experiments.studies.base import (StudyConfig, chance_psnr, context, curves_over_measured_snr, frames_of,
                                      markdown_table, write_summary)
from experiments.studies.sim_to_air import _decode as decode_frame
from experiments.studies.sim_to_air import _Radio, _replay
from experiments.sweep import Task, grid
from radio.backends import FakePluto, PlutoBackend
from radio.emulator import Emulator, EmulatorConfig
from radio.feedback import free_tcp_endpoint
from radio.impairments import Impairments


@dataclass
class Config(StudyConfig):
    """The ``ota`` sweep: :class:`~experiments.studies.base.StudyConfig` (its first profile and delay spread
    are the fake air's channel) plus

    Attributes:
        tx_gains_db: TX gain per point, dB.
        rx_gain_db: RX gain (manual), dB.
        attenuation_db: path loss between TX and RX (the attenuators; the fake device's ``path_loss_db``).
        center_frequency_hz: LO of TX and RX.
    """

    profiles: list[str] = field(default_factory=lambda: ["C"])
    delay_spread_ns: list[float] = field(default_factory=lambda: [300.0])
    frames: int = 6
    tx_gains_db: list[float] = field(default_factory=lambda: [-42.0, -32.0, -22.0])
    rx_gain_db: float = 30.0
    attenuation_db: float = 26.0
    center_frequency_hz: float = 915e6


SMOKE = Config(tka_run="", latents="", frames=2, tx_gains_db=[-22.0])


def tasks(cfg: Config, config_path: str) -> list[Task]:
    return grid([{"config": config_path, "tx_gain_db": g} for g in cfg.tx_gains_db], cfg.seeds, ["all"])


def _testbed_config(cfg: Config, gain: float, seed: int):
    radio = {"sample_rate_hz": 3.84e6, "center_frequency_hz": cfg.center_frequency_hz, "tx_gain_db": gain,
             "rx_gain_db": cfg.rx_gain_db}
    return default_config().replace(seed=seed, link={"backend": "pluto", "edge_pluto": radio, "user_pluto": radio},
                                    edge={"num_frames": cfg.frames}, feedback={"endpoint": free_tcp_endpoint()})


@torch.no_grad()
def evaluate(point: dict, seed: int, method: str) -> dict:
    from experiments.nodes import run_over_backend

    ctx = context(point["config"])
    cfg = Config.load(point["config"])
    gain = point["tx_gain_db"]
    key = zlib.crc32(f"{seed}|{gain}".encode())
    tb = _testbed_config(cfg, gain, seed)
    air = Emulator(ctx.pipeline.frame, EmulatorConfig(profile=f"TDL-{cfg.profiles[0]}", snr_db=80.0,
                                                      delay_spread_s=cfg.delay_spread_ns[0] * 1e-9, seed=key,
                                                      impairments=Impairments(cfo=True, phase_noise=True)))
    device = FakePluto(channel=lambda x: air(np.asarray(x, np.complex64))[0][: len(x)],
                       path_loss_db=cfg.attenuation_db, seed=key)
    out = Path(point["config"]).parent / "runs" / f"gain_{gain:g}dB_seed{seed}"
    guard = tb.link.guard_samples
    with PlutoBackend(tb.link.edge_pluto, device=device) as backend:
        rc = run_over_backend(tb, out, backend, lambda row: 2 * (row["frame_samples"] + guard))
    if rc != 0:
        raise RuntimeError(f"the loop at TX gain {gain} dB exited {rc}; see {out}")
    rows = join_frames(out)
    node_peak = ctx.package_latent_peak or ctx.peak        # the peak the user node's PSNR was computed with
    chance_mse = ctx.peak ** 2 / 10 ** (chance_psnr(ctx) / 10)
    loop = [node_peak ** 2 / 10 ** (r["psnr_latent_db"] / 10) if r.get("received") and "psnr_latent_db" in r
            else chance_mse for r in rows]
    measured = [r["snr_db_est"] for r in rows if r.get("received") and r.get("snr_db_est") is not None]
    snr = float(np.median(measured)) if measured else None
    mse = {"the loop: JSCC + CALA, live nodes": loop}
    if ctx.codecs.digital is not None:
        mse["digital baseline, same radio"] = _digital(ctx, point, cfg, seed, key, snr)
    return {"mse": mse, "measured_snr_db": snr, "decoded": len(measured), "sent": len(rows),
            "csi_age_frames": [r.get("csi_age_frames") for r in rows], "run": str(out),
            "consistency_cos": [r.get("consistency_cos") for r in rows if r.get("received")],
            "psnr_image_db": [r.get("psnr_image_db") for r in rows if r.get("received")]}


def _digital(ctx, point: dict, cfg: Config, seed: int, key: int, snr: float | None) -> list[float]:
    """The digital baseline through the same fake radio and gain (MCS from the SNR the loop measured)."""
    from dekag.jscc.codec import symbols_to_numpy
    from experiments.closed_loop import header_quantised

    codec, d = ctx.codecs.digital, ctx.codecs.domain
    z = frames_of(ctx, seed, cfg.frames, key % 997)
    condition = header_quantised((snr if snr is not None else d.snr_db_min, d.centre[1]))
    path = Path(point["config"]).parent / "captures" / f"digital_{point['tx_gain_db']:g}dB_seed{seed}"
    for p in path.parent.glob(path.name + ".sigmf-*"):
        p.unlink()
    radio_point = {"profile": cfg.profiles[0], "delay_spread_ns": cfg.delay_spread_ns[0],
                   "tx_gain_db": point["tx_gain_db"]}
    radio = _Radio(ctx, radio_point, cfg, key, path)
    try:
        sizes = [radio.send(symbols_to_numpy(codec.encode(z[j:j + 1], condition)[0]), j, condition)
                 for j in range(cfg.frames)]
    finally:
        radio.close()
    mean = ctx.codecs.cala.latent_mean[None, :, None, None]
    frames = _replay(ctx, path, cfg.frames, sizes)
    return [float((((mean if f is None else decode_frame(codec, f, (f.header.snr_db, f.header.delay_spread_s)))
                    - z[j:j + 1]) ** 2).mean()) for j, f in enumerate(frames)]


def report(cfg: Config, rows: list[dict], out: Path) -> str:
    ctx = context(str((out / "config.toml").resolve()))
    chance = chance_psnr(ctx)
    curves = curves_over_measured_snr(
        rows, ctx, "Over the air (fake Pluto in cabled loopback): the live loop and the digital baseline",
        "SNR measured by the receiver (dB)", out / "psnr_vs_measured_snr.png")
    points = [{"tx_gain_db": r["point"]["tx_gain_db"], "measured_snr_db": r["measured_snr_db"],
               "decoded": r["decoded"], "sent": r["sent"],
               "consistency_cos": _mean(r["consistency_cos"]), "psnr_image_db": _mean(r["psnr_image_db"]),
               "csi_age_frames_max": max((a for a in r["csi_age_frames"] if a is not None), default=None),
               "run": r["run"]} for r in sorted(rows, key=lambda r: r["point"]["tx_gain_db"])]
    write_summary(out, {"study": "ota", "latents": ctx.source, "peak": ctx.peak, "chance_db": chance,
                        "psnr_db": curves, "points": points})
    table = ["| TX gain dB | measured SNR dB | decoded / sent | image PSNR dB | consistency | CSI age max |",
             "|---:|---:|---:|---:|---:|---:|"]
    table += [f"| {p['tx_gain_db']:g} | {_fmt(p['measured_snr_db'], 1)} "
              f"| {p['decoded']} / {p['sent']} | {_fmt(p['psnr_image_db'])} | {_fmt(p['consistency_cos'], 3)} | "
              f"{p['csi_age_frames_max']} |" for p in points]
    runbook = (__doc__ or "").split("Runbook (also in the README's lab section):")[1].strip()
    return "\n".join(["# Study `ota`: the lab run as a study (here through the fake Pluto)", "",
                      f"Each point is a whole run of the edge and user nodes over the Pluto backend (run folders in "
                      f"`runs/`). Latent PSNR (peak {ctx.peak:.2f}); lost frames counted at chance ({chance:.2f} dB).",
                      "", *table, "", markdown_table(curves, "measured SNR dB"), "",
                      "What it shows: the whole loop end to end on the radio backend — the gains that reach the "
                      "codec's SNR range, what the loop and the digital baseline deliver there.", "",
                      "![PSNR vs measured SNR](psnr_vs_measured_snr.png)", "", "## Runbook", "", runbook, ""])


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"
