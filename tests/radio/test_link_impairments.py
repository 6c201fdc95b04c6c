"""Full link (Transmitter → Emulator → Receiver): each hardware impairment on its own is recovered."""
from __future__ import annotations

import numpy as np
import pytest

import radio

CFG = radio.FrameConfig()
RNG = np.random.default_rng(0)
SYMBOLS = ((RNG.standard_normal(480) + 1j * RNG.standard_normal(480)) / np.sqrt(2)).astype(np.complex64)
IQ = radio.Transmitter(CFG).modulate(SYMBOLS, frame_id=7)
SNR_DB = 20.0

CASES = [
    ("cfo", {}),                                   # 10 ppm = 24 kHz = 0.8 subcarrier spacing
    ("cfo", {"cfo_ppm": -40.0}),                   # -96 kHz: integer part -3 subcarriers
    ("start_offset", {}),
    ("sample_clock", {"sample_clock_ppm": 40.0}),
    ("dc_offset", {"dc_offset_dbc": -15.0}),
    ("iq_imbalance", {"iq_amplitude_db": 0.5, "iq_phase_deg": 3.0}),  # image rejection 29 dB
    ("phase_noise", {"phase_noise_linewidth_hz": 100.0}),
    ("quantization", {}),
]


def _link(profile: str, name: str, values: dict, seed: int):
    imp = radio.Impairments(**values).only(name)
    ch = radio.Emulator(CFG, profile=profile, snr_db=SNR_DB, delay_spread_s=100e-9, seed=seed, impairments=imp)
    rx_iq, truth = ch(IQ)
    rx = radio.Receiver(CFG)
    return rx.receive(rx_iq, final=True), truth, rx


@pytest.mark.parametrize("profile", ["AWGN", "TDL-C"])
@pytest.mark.parametrize(("name", "values"), CASES, ids=[f"{n}{v}" for n, v in CASES])
def test_each_impairment_recovered_on_its_own(profile: str, name: str, values: dict) -> None:
    for seed in (1, 2):
        frames, truth, _ = _link(profile, name, values, seed)
        assert len(frames) == 1, f"{len(frames)} frames"
        f = frames[0]
        assert f.status == "ok" and f.crc_ok and f.header.frame_id == 7
        assert f.symbols.shape == SYMBOLS.shape
        assert abs(f.start - truth.start) <= 2
        # phase noise of 100 Hz linewidth drifts ~0.2 rad over the 67 µs LTS pair: ~1 kHz apparent CFO (1σ)
        assert abs(f.cfo_hz - truth.cfo_hz) < (0.15 if name == "phase_noise" else 0.01) * CFG.subcarrier_spacing_hz
        # equalised symbols: error well below the symbol power (MMSE at 20 dB; TDL-C may fade)
        err_db = 10 * np.log10(np.mean(np.abs(f.symbols - SYMBOLS) ** 2))
        assert err_db < (-15.0 if profile == "AWGN" else -5.0)
        if profile == "AWGN" and name not in ("phase_noise",):
            assert f.snr_db == pytest.approx(truth.snr_db, abs=1.0)
        assert not f.clipped  # 20 dB back-off at DAC and ADC: the preamble's 19.6 dB rail peak does not clip


def test_saturated_adc_is_flagged() -> None:
    """ADC gain 3 dB above full scale: the emulator reports heavy clipping; the receiver flags the frame."""
    frames, truth, rx = _link("AWGN", "quantization", {"adc_backoff_db": -3.0}, seed=1)
    assert truth.adc_clipped_fraction > 0.3
    assert all(f.clipped for f in frames) and rx.stats.clipped_frames == len(frames)
