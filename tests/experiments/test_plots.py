import numpy as np

from experiments import plots


def test_each_plot_writes_png_and_svg(tmp_path):
    rows = [{"frame_id": i, "psnr_latent_db": 20 + i, "snr_db_true": i, "snr_db_est": i + 0.1,
             "delay_spread_s_true": 1e-7, "delay_spread_s_est": 1.2e-7} for i in range(5)]
    outs = [plots.psnr_over_time(rows, tmp_path), plots.estimated_vs_true(rows, tmp_path),
            plots.constellation(np.exp(1j * np.linspace(0, 6, 50)), tmp_path),
            plots.power_delay_profile(np.array([1, 0.5, 0.1]), 3.84e6, tmp_path),
            plots.image_grid([("a", [np.zeros((8, 8, 3))] * 3)], tmp_path)]
    for png in outs:
        assert png.stat().st_size > 1000 and png.with_suffix(".svg").exists()


def test_nothing_to_plot_returns_none(tmp_path):
    assert plots.psnr_over_time([], tmp_path) is None
    assert plots.estimated_vs_true([{"frame_id": 1}], tmp_path) is None
    assert plots.constellation(np.array([]), tmp_path) is None
