"""The metaword: a new token in the edge tokenizer/text encoder, trained by textual inversion.

Only the metaword's embedding row changes (the other rows are restored after every optimiser step, as in
diffusers' ``examples/textual_inversion``). Saved in the textual-inversion format that
``pipe.load_textual_inversion(path, token=...)`` reads: ``{token: [1, D]}`` in safetensors.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from dekag.errors import DekagError
from dekag.makd.precision import make_accelerator, training_step


class MetawordError(DekagError, ValueError):
    """The metaword or its initialiser word cannot be used with this tokenizer."""


def add_metaword(pipe, token: str, init_word: str) -> int:
    """Add ``token`` to ``pipe.tokenizer`` and ``pipe.text_encoder`` initialised from ``init_word``'s embedding.

    Returns the new token id. ``init_word`` must be a single token of the tokenizer.
    """
    init_ids = pipe.tokenizer.encode(init_word, add_special_tokens=False)
    if len(init_ids) != 1:
        raise MetawordError(f"initialiser word {init_word!r} is {len(init_ids)} tokens; it must be exactly one")
    if pipe.tokenizer.add_tokens([token]) != 1:
        raise MetawordError(f"token {token!r} already exists in the tokenizer")
    token_id = pipe.tokenizer.convert_tokens_to_ids(token)
    pipe.text_encoder.resize_token_embeddings(len(pipe.tokenizer), mean_resizing=False)
    emb = pipe.text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        emb[token_id] = emb[init_ids[0]]
    return token_id


def train_metaword(pipe, token_id: int, loss_fn: Callable[[], torch.Tensor], steps: int, lr: float,
                   start_step: int = 0, on_step: Callable[[int, torch.optim.Optimizer], None] | None = None,
                   optimizer_state: dict | None = None, accelerator=None) -> list[float]:
    """Optimise row ``token_id`` of the text-encoder input embedding with ``loss_fn`` (UNet/VAE frozen).

    ``on_step(step, optimizer)`` is called after each step (progress bars, checkpoints). ``accelerator``
    (:func:`~dekag.makd.precision.make_accelerator`) sets the mixed precision; default float32 on the
    embedding's device. The embedding matrix must be float32. Returns the losses.
    """
    pipe.unet.requires_grad_(False)
    pipe.text_encoder.requires_grad_(False)
    emb = pipe.text_encoder.get_input_embeddings().weight
    if emb.dtype != torch.float32:
        raise TypeError(f"the trained embedding matrix must be float32, got {emb.dtype}")
    emb.requires_grad_(True)
    frozen = emb.detach().clone()
    keep = torch.ones(emb.shape[0], dtype=torch.bool)
    keep[token_id] = False
    opt = torch.optim.AdamW([emb], lr=lr, weight_decay=0.0)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    accelerator = accelerator or make_accelerator(device=emb.device)
    opt = accelerator.prepare(opt)
    losses = []
    for step in range(start_step, steps):
        losses.append(training_step(accelerator, opt, loss_fn))
        with torch.no_grad():
            emb[keep] = frozen[keep]
        if on_step is not None:
            on_step(step + 1, opt)
    emb.requires_grad_(False)
    return losses


def metaword_state_dict(pipe, token: str) -> dict[str, torch.Tensor]:
    """``{token: [1, D]}``, the textual-inversion state dict of ``token``."""
    token_id = pipe.tokenizer.convert_tokens_to_ids(token)
    if token_id == pipe.tokenizer.unk_token_id:
        raise MetawordError(f"{token!r} is not in the tokenizer")
    return {token: pipe.text_encoder.get_input_embeddings().weight[token_id:token_id + 1].detach().clone()}


def save_metaword(pipe, token: str, path: str | Path) -> Path:
    """Write ``token``'s embedding as a diffusers textual-inversion safetensors file."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(metaword_state_dict(pipe, token), str(path), metadata={"format": "pt"})
    return path
