"""``dekag-testbed train``: T-KA (:mod:`dekag.jscc.train`) with the links that need the radio.

``training.link = "frames"`` in the T-KA config trains through the real frame pipeline
(:class:`experiments.frame_link.FrameLink`); ``"simulated"`` through the Sionna training channel::

    dekag-testbed train --config experiments/configs/tka_frames.toml \\
        --latents runs/seg/latents.safetensors --run-dir runs/tka_frames
"""
from __future__ import annotations

from dekag.jscc import train
from dekag.jscc.config import TkaConfig


def frame_link(cfg: TkaConfig):
    from experiments.frame_link import FrameLink

    return FrameLink(cfg.channel, cfg.codec.num_symbols, seed=cfg.training.seed)


def main(argv: list[str] | None = None) -> None:
    train.main(argv, links={"frames": frame_link})


if __name__ == "__main__":
    main()
