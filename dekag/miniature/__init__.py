"""The miniature cloud/edge world: 32×32 digit images, a shared VAE (latent 4×8×8), a larger cloud LDM, a
smaller edge LDM that never saw the subject class, and a feature network for consistency metrics.

Everything trains on a CPU in minutes (``python -m dekag.miniature.train_world``) and ships as small
safetensors checkpoints in ``dekag/miniature/checkpoints/``; :func:`dekag.miniature.world.load_world` loads them.
"""
