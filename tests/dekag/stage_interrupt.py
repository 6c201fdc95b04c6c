"""Test helper: run a MAKD stage that crashes right after its step-2 checkpoint, then run it again."""
from __future__ import annotations

import pytest

from dekag.makd import align


def interrupt_then_resume(monkeypatch: pytest.MonkeyPatch, run_stage, before_each=lambda: None) -> dict:
    """``run_stage()`` is interrupted after the checkpoint of step 2, then rerun; returns the rerun's stats.
    ``before_each()`` runs before both attempts (e.g. to disturb the global RNG)."""
    real_save = align.save_checkpoint

    def crash_after_two(path, step, *args):
        real_save(path, step, *args)
        if step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(align, "save_checkpoint", crash_after_two)
    before_each()
    with pytest.raises(KeyboardInterrupt):
        run_stage()
    monkeypatch.setattr(align, "save_checkpoint", real_save)
    return run_stage()


def share_metaword(src, dst) -> None:
    """Let run folder ``dst`` reuse ``src``'s S_CG and metaword stage (so only a LoRA stage runs there)."""
    dst.mkdir()
    for f in ("scg.safetensors", "metaword"):
        (dst / f).symlink_to(src / f)
