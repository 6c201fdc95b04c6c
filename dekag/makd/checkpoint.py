"""Mid-stage training checkpoints for resume: trained tensors, AdamW state, step and RNG state in one
safetensors file (optimizer hyper-parameters as JSON metadata; no pickle)."""
from __future__ import annotations

import json
from pathlib import Path

import torch


def save_checkpoint(path: Path, step: int, tensors: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                    generator: torch.Generator) -> None:
    """Atomically write ``path`` (``tensors`` under ``w.``, optimizer state under ``opt.``, RNG under ``rng``)."""
    from safetensors.torch import save_file

    sd = optimizer.state_dict()
    flat = {f"w.{k}": v.detach().contiguous().clone() for k, v in tensors.items()}
    for idx, state in sd["state"].items():
        for key, val in state.items():
            flat[f"opt.{idx}.{key}"] = torch.as_tensor(val).detach().clone()
    flat["rng"] = generator.get_state()
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(flat, str(tmp), metadata={"step": str(step), "param_groups": json.dumps(sd["param_groups"])})
    tmp.replace(path)


def load_checkpoint(path: Path) -> tuple[int, dict[str, torch.Tensor], dict, torch.Tensor] | None:
    """``(step, tensors, optimizer_state_dict, rng_state)`` or ``None`` if ``path`` does not exist."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        flat = {k: f.get_tensor(k) for k in f.keys()}
    tensors = {k[2:]: v for k, v in flat.items() if k.startswith("w.")}
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in flat.items():
        if k.startswith("opt."):
            _, idx, key = k.split(".", 2)
            state.setdefault(int(idx), {})[key] = v
    opt_sd = {"state": state, "param_groups": json.loads(meta["param_groups"])}
    return int(meta["step"]), tensors, opt_sd, flat["rng"]
