"""The emulator's channel against Sionna's own: average power-delay profile, RMS delay spread, unit power.

Statistics: per lag, the mean tap power over n realisations has standard error sqrt(var / n); the emulator's
and Sionna's estimates are independent, so their difference is compared with 5 standard errors (a false
alarm rate of ~1e-6 per lag). Only lags holding ≥ 1 % of the power are compared.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sionna.phy.channel import GenerateTimeChannel
from sionna.phy.channel.tr38901 import rms_delay_spread

import radio
from radio.channel_models import TDL_PROFILES, SeededTDL

N_REALISATIONS = 1000


def _rms_spread_s(pdp: np.ndarray, lags: np.ndarray, fs: float) -> float:
    p = pdp / pdp.sum()
    mean = (p * lags).sum()
    return float(np.sqrt((p * lags ** 2).sum() - mean ** 2) / fs)


def _emulator_impulse_responses(profile: str, delay_spread_s: float):
    """``[n, num_lags]`` tap powers measured by sending one impulse per call at 300 dB SNR."""
    cfg = radio.FrameConfig()
    ch = radio.Emulator(cfg, profile=profile, snr_db=300.0, delay_spread_s=delay_spread_s, seed=3)
    taps = np.empty((N_REALISATIONS, ch.model.num_lags))
    path_powers = []
    for i in range(N_REALISATIONS):
        rx, truth = ch(np.ones(1, np.complex64))
        assert truth.start == -ch.model.l_min
        taps[i] = np.abs(rx) ** 2
        path_powers.append(truth.realisation.path_powers)
    return ch, taps, np.mean(path_powers, axis=0)


@pytest.mark.parametrize("profile", TDL_PROFILES)
@pytest.mark.parametrize("delay_spread_s", [300e-9])
def test_average_pdp_and_delay_spread_match_sionna(profile: str, delay_spread_s: float) -> None:
    torch.set_num_threads(1)
    ch, ours, mean_path_powers = _emulator_impulse_responses(profile, delay_spread_s)
    fs = ch.cfg.sample_rate_hz
    tdl = SeededTDL(model=profile[-1], delay_spread=delay_spread_s, carrier_frequency=2.4e9, device="cpu")
    tdl.generator = torch.Generator().manual_seed(12345)
    gen = GenerateTimeChannel(tdl, bandwidth=fs, num_time_samples=1, l_min=ch.model.l_min,
                              l_max=ch.model.l_max, device="cpu")
    h = gen(N_REALISATIONS).numpy()  # [n, 1, 1, 1, 1, num_lags (time), num_lags]
    theirs = np.abs(h.reshape(N_REALISATIONS, -1, ch.model.num_lags)[:, 0]) ** 2

    # Sionna's taps are not normalised: scale them by the emulator's expected tap energy (one constant).
    expected_energy = theirs.mean(0).sum()
    theirs = theirs / expected_energy
    mo, mt = ours.mean(0), theirs.mean(0)
    se = np.sqrt(ours.var(0) / N_REALISATIONS + theirs.var(0) / N_REALISATIONS)
    big = mt > 0.01
    assert big.sum() >= 2
    np.testing.assert_array_less(np.abs(mo - mt)[big], 5 * se[big])

    # Unit average tap energy over realisations (5 standard errors).
    energy = ours.sum(1)
    assert abs(energy.mean() - 1.0) < 5 * energy.std() / np.sqrt(N_REALISATIONS)

    # RMS delay spread of the average discrete-time PDP: the same as Sionna's within 5 %.
    lags = np.arange(ch.model.l_min, ch.model.l_max + 1)
    assert _rms_spread_s(mo, lags, fs) == pytest.approx(_rms_spread_s(mt, lags, fs), rel=0.05)

    # Path level: the RMS delay spread of the average path PDP is the configured one (Sionna's formula).
    delays, nominal_powers = ch.model.mean_path_profile()
    nominal = float(rms_delay_spread(torch.tensor(delays), torch.tensor(nominal_powers)))
    assert nominal == pytest.approx(delay_spread_s, rel=0.01)
    realised = float(rms_delay_spread(torch.tensor(delays), torch.tensor(mean_path_powers)))
    assert realised == pytest.approx(nominal, rel=0.05)


def test_flat_rayleigh_and_awgn() -> None:
    cfg = radio.FrameConfig()
    ray = radio.Emulator(cfg, profile="Rayleigh", snr_db=300.0, seed=5)
    gains = []
    for _ in range(N_REALISATIONS):
        rx, truth = ray(np.ones(4, np.complex64))
        assert rx.shape == (4,) and truth.start == 0 and truth.delay_spread_s == 0.0
        np.testing.assert_allclose(rx, rx[0], atol=1e-6)  # flat, static: one complex gain
        gains.append(abs(rx[0]) ** 2)
    gains = np.asarray(gains)
    assert abs(gains.mean() - 1.0) < 5 / np.sqrt(N_REALISATIONS)  # exponential: std = mean = 1
    # Rayleigh amplitude: P(|h|² < 0.1) = 1 - exp(-0.1) = 0.095
    assert abs(np.mean(gains < 0.1) - 0.0952) < 5 * np.sqrt(0.0952 * 0.9048 / N_REALISATIONS)

    awgn = radio.Emulator(cfg, profile="AWGN", snr_db=300.0, seed=5)
    x = np.exp(1j * np.arange(10)).astype(np.complex64)
    rx, truth = awgn(x)
    np.testing.assert_allclose(rx, x, atol=1e-6)
    assert truth.snr_db == pytest.approx(300.0) and truth.delay_spread_s == 0.0
