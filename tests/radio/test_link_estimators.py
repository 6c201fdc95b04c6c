"""Receiver estimates against the emulator's truth over a few frames (the full grid is bench/estimator_grid.py)."""
from __future__ import annotations

import numpy as np
import pytest

import radio

CFG = radio.FrameConfig()


def _run(profile: str, snr_db: float, ds_s: float, frames: int, seed: int, impairments=None):
    rng = np.random.default_rng(seed)
    tx, rx = radio.Transmitter(CFG), radio.Receiver(CFG)
    ch = radio.Emulator(CFG, profile=profile, snr_db=snr_db, delay_spread_s=ds_s, seed=seed,
                        impairments=impairments or radio.Impairments())
    out = []
    for i in range(frames):
        sym = ((rng.standard_normal(240) + 1j * rng.standard_normal(240)) / np.sqrt(2)).astype(np.complex64)
        rx_iq, truth = ch(tx.modulate(sym, frame_id=i))
        rx.reset()
        found = [f for f in rx.receive(rx_iq, final=True) if abs(f.start - truth.start) <= CFG.cp_length]
        out.append((found[0] if found else None, truth))
    return out


@pytest.mark.parametrize("impairments", [None, radio.Impairments.typical()], ids=["clean", "impaired"])
def test_snr_cfo_and_channel_estimates_track_the_truth(impairments) -> None:
    res = _run("TDL-C", 15.0, 100e-9, 30, seed=3, impairments=impairments)
    found = [(f, t) for f, t in res if f is not None]
    assert len(found) >= 29
    assert sum(f.crc_ok for f, _ in found) >= 28
    err = np.array([f.snr_db - t.snr_db for f, t in found])
    assert abs(err.mean()) < 1.0 and np.sqrt(np.mean(err ** 2)) < 1.5
    # the realised SNR varies with the fade: the estimate follows it
    assert np.corrcoef([f.snr_db for f, _ in found], [t.snr_db for _, t in found])[0, 1] > 0.8
    cfo = np.array([f.cfo_hz - t.cfo_hz for f, t in found])
    assert np.sqrt(np.mean(cfo ** 2)) < 0.02 * CFG.subcarrier_spacing_hz
    assert all(abs(f.start - t.start) <= 2 for f, t in found)


def test_snr_estimate_spans_the_range() -> None:
    means = {}
    for snr in (0.0, 10.0, 20.0):
        found = [(f, t) for f, t in _run("AWGN", snr, 100e-9, 10, seed=4) if f is not None]
        assert len(found) == 10
        means[snr] = np.mean([f.snr_db - t.snr_db for f, t in found])
        assert abs(means[snr]) < 1.0, means


def test_delay_spread_estimate_orders_channels() -> None:
    """Mean estimated delay spread grows with the true one (100 → 1000 ns, TDL-A, 20 dB) and lands near it."""
    est = {}
    for ds in (100e-9, 1000e-9):
        found = [(f, t) for f, t in _run("TDL-A", 20.0, ds, 10, seed=5) if f is not None]
        assert len(found) >= 9
        est[ds] = np.mean([f.delay_spread_s for f, _ in found]) / np.mean([t.delay_spread_s for _, t in found])
        assert np.mean([f.delay_spread_s for f, _ in found]) > 0
    assert 0.5 < est[1000e-9] < 1.5, est
    assert est[100e-9] < 4.0, est  # 100 ns is below the ≈350 ns resolution of 2.88 MHz: bounded, not exact


def test_several_frames_in_one_call_share_one_truth() -> None:
    """Multi-frame buffers: one realisation and one truth per call; ``start`` is the first frame's."""
    tx = radio.Transmitter(CFG)
    rng = np.random.default_rng(8)
    frames = [tx.modulate(((rng.standard_normal(100) + 1j * rng.standard_normal(100)) / np.sqrt(2)), frame_id=i)
              for i in (1, 2, 3)]
    gap = np.zeros(400, np.complex64)
    iq = np.concatenate([frames[0], gap, frames[1], gap, frames[2]])
    ch = radio.Emulator(CFG, profile="TDL-C", snr_db=20.0, delay_spread_s=100e-9, seed=6,
                        impairments=radio.Impairments().only("start_offset"))
    rx_iq, truth = ch(iq)
    found = radio.Receiver(CFG).receive(rx_iq, final=True)
    assert [f.header.frame_id for f in found] == [1, 2, 3]
    offsets = np.cumsum([0] + [len(f) + len(gap) for f in frames[:2]])
    np.testing.assert_allclose([f.start for f in found], truth.start + offsets, atol=2)
    assert all(abs(f.snr_db - truth.snr_db) < 1.5 for f in found)  # static channel: one realised SNR
