"""Figures and the one-page summary of a run folder, from the rows its nodes wrote.

``dekag-testbed report RUN_DIR`` (also run at the end of ``dekag-testbed run``) joins the edge's rows
(condition used, CSI age, gates, stage latencies) with the user's rows (estimates, truth, PSNR,
consistency) by frame id, writes ``frames.jsonl`` (the joined rows), the figures in ``figures/``
and ``summary.md``. It works on a partial folder (a crashed or interrupted run) too.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402

from experiments import plots  # noqa: E402
from experiments.run_folder import JsonLines, read_jsonl  # noqa: E402


def join_frames(root: Path) -> list[dict[str, Any]]:
    """One row per frame id: the edge's row, updated with the user's (user keys win, latencies merged)."""
    edge = {r["frame_id"]: r for r in read_jsonl(root / "edge.results.jsonl") if "frame_id" in r}
    user = {r["frame_id"]: r for r in read_jsonl(root / "user.results.jsonl") if r.get("frame_id") is not None}
    rows = []
    for fid in sorted(set(edge) | set(user)):
        e, u = edge.get(fid, {}), user.get(fid, {})
        row = {k: v for k, v in e.items() if k != "provenance"}
        row.update({k: v for k, v in u.items() if k != "provenance"})
        row["latency_ms"] = {**e.get("latency_ms", {}), **u.get("latency_ms", {})}
        row["received"] = fid in user and u.get("status") == "ok"
        rows.append(row)
    return rows


def _stats(values: list[float]) -> str:
    v = np.array([x for x in values if isinstance(x, (int, float)) and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return "–"
    return f"{v.mean():.2f} (min {v.min():.2f}, max {v.max():.2f}, n={v.size})"


def _events(root: Path) -> list[dict[str, Any]]:
    return [e for role in ("edge", "user", "channel", "run") for e in read_jsonl(root / f"{role}.events.jsonl")]


def summarise(root: Path, rows: list[dict[str, Any]]) -> str:
    events = _events(root)
    counts: dict[str, int] = {}
    for e in events:
        key = f"{e['role']}:{e['event']}"
        counts[key] = counts.get(key, 0) + 1
    sent = sum(1 for r in rows if r.get("transmitted"))
    received = sum(1 for r in rows if r.get("received"))
    snr_err = [r["snr_db_est"] - r["snr_db_true"] for r in rows if "snr_db_true" in r and "snr_db_est" in r]
    ds_err = [(r["delay_spread_s_est"] - r["delay_spread_s_true"]) * 1e9 for r in rows
              if "delay_spread_s_true" in r and "delay_spread_s_est" in r]
    stages: dict[str, list[float]] = {}
    for r in rows:
        for k, v in r.get("latency_ms", {}).items():
            stages.setdefault(k, []).append(v)
    lines = [f"# Run summary: {root.name}", "",
             f"- frames generated at the edge: {len(rows)}; transmitted: {sent}; decoded at the user: {received}",
             f"- condition source at the encoder: "
             f"{sum(r.get('condition_source') == 'feedback' for r in rows)} feedback, "
             f"{sum(r.get('condition_source') == 'fallback' for r in rows)} fallback",
             f"- CSI age at the encoder (frames): {_stats([r.get('csi_age_frames') for r in rows])}",
             f"- latent PSNR (dB), decoder gated on own estimate/header as configured: "
             f"{_stats([r.get('psnr_latent_db') for r in rows])}",
             f"- latent PSNR with the other condition source (dB): "
             f"{_stats([r.get('psnr_latent_header_db', r.get('psnr_latent_estimate_db')) for r in rows])}",
             f"- image PSNR (dB): {_stats([r.get('psnr_image_db') for r in rows])}",
             f"- consistency with the cloud image (feature cosine): {_stats([r.get('consistency_cos') for r in rows])}",
             f"- SNR estimate − truth (dB): {_stats(snr_err)}",
             f"- delay-spread estimate − truth (ns): {_stats(ds_err)}", "",
             "## Time per stage (ms)", "", "| stage | mean | max |", "|---|---|---|"]
    for k, v in stages.items():
        v = [x for x in v if isinstance(x, (int, float))]
        if v:
            lines.append(f"| {k} | {np.mean(v):.1f} | {np.max(v):.1f} |")
    lines += ["", "`transmit` is the time until the radio took the burst (with the in-process emulator it includes "
              "the channel); `channel` is the emulator alone; `feedback_wait` is the edge waiting for the report "
              "on the previous frame.", "", "## Events", "", "| node:event | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items())]
    figures = sorted((root / "figures").glob("*.png"))
    if figures:
        lines += ["", "## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in figures]
    return "\n".join(lines) + "\n"


def _grid_rows(root: Path, rows: list[dict[str, Any]], limit: int = 8) -> list[tuple[str, list[np.ndarray]]]:
    ids = [r["frame_id"] for r in rows][:limit]
    out = []
    for label, suffix in (("cloud (reference)", "cloud"), ("edge, sent", "edge"), ("user, received", "rx")):
        imgs = [mpimg.imread(p)[..., :3] if (p := root / "images" / f"frame_{fid:06d}_{suffix}.png").exists()
                else None for fid in ids]
        out.append((label, imgs))
    return out


def measure_late(root: Path, rows: list[dict[str, Any]]) -> int:
    """Fill in the metrics of frames the user decoded without the edge's reference at hand (two hosts:
    copy the edge's ``refs/`` into the folder first). Returns how many rows were measured."""
    todo = [r for r in rows if r.get("received") and "psnr_latent_db" not in r
            and (root / "rx" / f"frame_{r['frame_id']:06d}.safetensors").is_file()
            and (root / "refs" / f"frame_{r['frame_id']:06d}.safetensors").is_file()]
    if not todo:
        return 0
    from experiments.config import TestbedConfig
    from experiments.knowledge import UserRuntime

    runtime = UserRuntime.load(TestbedConfig.load(root / "config.toml"))
    for r in todo:
        name = f"frame_{r['frame_id']:06d}.safetensors"
        latent = runtime.load_latent(root / "rx" / name)
        r.update(runtime.measure(latent, runtime.to_image(latent), root / "refs" / name), measured_late=True)
    return len(todo)


def build_report(root: str | Path) -> Path:
    """Write ``frames.jsonl``, figures and ``summary.md`` for the run folder; returns the summary path."""
    root = Path(root)
    rows = join_frames(root)
    measure_late(root, rows)
    joined = root / "frames.jsonl"
    joined.unlink(missing_ok=True)
    out = JsonLines(joined)
    for r in rows:
        out.write(r)
    out.close()
    fig = root / "figures"
    plots.psnr_over_time(rows, fig)
    plots.estimated_vs_true(rows, fig)
    plots.image_grid(_grid_rows(root, rows), fig)
    for name in ("constellation", "pdp"):
        data = root / "figures" / f"{name}.json"
        if data.exists():
            d = json.loads(data.read_text())
            if name == "constellation":
                plots.constellation(np.array(d["re"]) + 1j * np.array(d["im"]), fig)
            else:
                plots.power_delay_profile(np.array(d["re"]) + 1j * np.array(d["im"]), d["sample_rate_hz"], fig)
    summary = root / "summary.md"
    summary.write_text(summarise(root, rows))
    return summary
