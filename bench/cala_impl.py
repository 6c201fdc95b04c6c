"""CALA implementation choice: plain torch (``dekag.jscc.cala.CalaLayer``) vs peft custom-module dispatch.

    .venv/bin/python bench/cala_impl.py [--smoke]

Builds the same CALA-adapted codec twice: with :func:`dekag.jscc.apply_cala`, and with peft
(``LoraConfig._register_custom_module({nn.Conv2d: GatedLoraConv2d})`` + ``inject_adapter_in_model``,
gates read from the same condition context, gate MLPs attached per layer). Copies the weights across,
checks both give the same output, and times a training step (encode + decode + backward, no channel)
side by side. Writes ``bench/results/cala_impl.json`` and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import provenance  # noqa: E402
from dekag.jscc import CalaConfig, CalaLayer, CodecConfig, Condition, JsccCodec, apply_cala  # noqa: E402
from dekag.jscc.condition import current_condition  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def peft_cala(base: JsccCodec, cfg: CalaConfig) -> JsccCodec:
    """The same CALA through peft: every encoder/decoder conv gets a gated LoRA of rank R."""
    from peft import LoraConfig, inject_adapter_in_model
    from peft.tuners.lora.layer import Conv2d as LoraConv2d

    class GatedLoraConv2d(LoraConv2d):
        def forward(self, x, *args, **kwargs):
            result = self.base_layer(x, *args, **kwargs)
            for name in self.active_adapters:
                logits = self.lora_gate[name](current_condition())
                g = cfg.rank * torch.softmax(logits, -1) if cfg.gate == "softmax" else torch.sigmoid(logits)
                h = self.lora_A[name](x) * g[:, :, None, None]
                result = result + self.lora_B[name](h) * self.scaling[name]
            return result

    codec = JsccCodec(base.config)
    codec.load_state_dict(base.state_dict())
    targets = [f"{s}.{i}" for s in ("encoder", "decoder") for i, m in enumerate(getattr(codec, s))
               if isinstance(m, nn.Conv2d)]
    lcfg = LoraConfig(r=cfg.rank, lora_alpha=cfg.rank, target_modules=targets, init_lora_weights=True)
    lcfg._register_custom_module({nn.Conv2d: GatedLoraConv2d})
    codec = inject_adapter_in_model(lcfg, codec)
    for m in codec.modules():
        if isinstance(m, GatedLoraConv2d):
            m.lora_gate = nn.ModuleDict({"default": nn.Sequential(
                nn.Linear(2, cfg.gate_hidden), nn.SiLU(), nn.Linear(cfg.gate_hidden, cfg.rank))})
    return codec


def copy_into_peft(ours: JsccCodec, theirs: JsccCodec) -> None:
    """Copy CalaLayer weights (a, b, gate) into the peft layers at the same positions."""
    for stack in ("encoder", "decoder"):
        for a, b in zip(getattr(ours, stack), getattr(theirs, stack)):
            if isinstance(a, CalaLayer):
                b.lora_A["default"].weight.data.copy_(a.lora_a.weight)
                b.lora_B["default"].weight.data.copy_(a.lora_b[:, :, None, None])
                b.lora_gate["default"].load_state_dict(a.gate.state_dict())


def step_times(codecs: list[JsccCodec], lat: torch.Tensor, cond: Condition, reps: int) -> list[float]:
    """Median ms of encode + decode + backward per codec, measured interleaved (shared-CPU fairness)."""
    times: list[list[float]] = [[] for _ in codecs]
    for rep in range(reps + 2):
        for i, codec in enumerate(codecs):
            params = [p for p in codec.parameters() if p.requires_grad]
            t0 = time.perf_counter()
            loss = (codec.decode(codec.encode(lat, cond), 0.1, cond) - lat).square().mean()
            torch.autograd.grad(loss, params)
            if rep >= 2:
                times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) * 1e3 for t in times]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/cala_impl[_smoke].json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    base = JsccCodec(CodecConfig())
    rows = []
    for gate in ("softmax", "sigmoid"):
        cfg = CalaConfig(rank=8, gate=gate)
        ours = JsccCodec(CodecConfig())
        ours.load_state_dict(base.state_dict())
        apply_cala(ours, cfg)
        for m in ours.modules():
            if isinstance(m, CalaLayer):
                nn.init.normal_(m.lora_b, std=0.05)
        theirs = peft_cala(base, cfg)
        copy_into_peft(ours, theirs)
        b = 8 if args.smoke else 64
        lat = torch.randn(b, 4, 8, 8)
        cond = Condition(torch.linspace(0, 20, b), torch.logspace(-7.5, -5.5, b))
        with torch.no_grad():
            diff = float((ours.encode(lat, cond) - theirs.encode(lat, cond)).abs().max())
        n_ours = sum(p.numel() for p in ours.parameters() if p.requires_grad)
        n_theirs = sum(p.numel() for p in theirs.parameters() if p.requires_grad)
        reps = 3 if args.smoke else 60
        t_ours, t_theirs = step_times([ours, theirs], lat, cond, reps)
        rows.append({"gate": gate, "batch": b, "max_abs_output_difference": diff, "trainable_params_plain": n_ours,
                     "trainable_params_peft": n_theirs, "train_step_ms_plain": t_ours, "train_step_ms_peft": t_theirs,
                     "peft_over_plain_time": t_theirs / t_ours})
    report = {"bench": "cala_impl", "smoke": args.smoke, "provenance": provenance(), "rows": rows}
    out = Path(args.out) if args.out else RESULTS / f"cala_impl{'_smoke' if args.smoke else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print("| gate | batch | max |Δ output| | trainable (plain / peft) | step ms plain | step ms peft | peft/plain |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['gate']} | {r['batch']} | {r['max_abs_output_difference']:.1e} | {r['trainable_params_plain']} / "
              f"{r['trainable_params_peft']} | {r['train_step_ms_plain']:.2f} | {r['train_step_ms_peft']:.2f} | "
              f"{r['peft_over_plain_time']:.2f} |")
    return report


if __name__ == "__main__":
    main()
