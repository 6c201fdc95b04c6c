"""MAKD (generation knowledge alignment): metaword (textual inversion) then G-LoRA on the edge UNet.

* :mod:`dekag.makd.loss` — the noise-prediction loss both stages minimise on edge-VAE latents of S_CG;
* :mod:`dekag.makd.metaword` — the metaword token: add, train (one embedding row), save/load;
* :mod:`dekag.makd.glora` — G-LoRA on the UNet attention projections (peft), diffusers LoRA format;
* :mod:`dekag.makd.align` — the schedule, the baselines, evaluation, checkpoints/resume, CLI.
"""
