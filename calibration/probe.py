"""Probe signals every calibration routine sends, and the estimators that read them back.

A routine transmits one burst (a Pluto repeats it cyclically, stream backends send it once) and
captures the samples that come back; nothing here depends on which backend moved them.

* :func:`tone` — a complex exponential whose frequency is snapped to a whole number of cycles per
  burst, so a cyclic replay is continuous.
* :func:`tone_frequency` — frequency of the strongest tone in a search window: FFT peak, then the
  phase slope of block averages after mixing down (DC and the IQ image average out).
* :func:`tone_fit` — least-squares ``y ≈ a e^{jωn} + b e^{−jωn} + d``: the tone, its IQ image and DC.
* :func:`frame_burst` / :func:`receive_frames` — frames of the air interface and what
  :class:`radio.Receiver` makes of a capture.
"""
from __future__ import annotations

import numpy as np

from radio import FrameConfig, Receiver, Transmitter
from radio.backends import RadioBackend
from radio.receiver import ReceivedFrame

_BLOCK = 256


def tone(num_samples: int, freq_hz: float, sample_rate_hz: float) -> tuple[np.ndarray, float]:
    """``[num_samples]`` complex64 unit-power tone and its frequency (Hz), snapped to an integer number
    of cycles in ``num_samples`` so that a cyclic replay has no phase jump."""
    cycles = round(freq_hz / sample_rate_hz * num_samples)
    f = cycles * sample_rate_hz / num_samples
    return np.exp(2j * np.pi * cycles / num_samples * np.arange(num_samples)).astype(np.complex64), f


def capture(backend: RadioBackend, burst: np.ndarray, num_samples: int) -> np.ndarray:
    """Transmit ``burst`` and return the next ``num_samples`` received samples (complex64)."""
    backend.transmit(burst)
    return backend.receive(num_samples)


def tone_frequency(y: np.ndarray, sample_rate_hz: float, near_hz: float, search_hz: float) -> float:
    """Frequency (Hz) of the strongest tone of ``y`` within ``near_hz ± search_hz``.

    Coarse: the peak of a 4× zero-padded FFT. Fine: mix down by it, average blocks of 256 samples,
    and fit a line to the unwrapped phases of the block means (its slope is the residual frequency).
    Accuracy at 20 dB SNR over 32768 samples: well below 1 Hz.
    """
    y = np.asarray(y, np.complex128)
    n = y.size
    nfft = 4 * n
    spec = np.abs(np.fft.fft(y, nfft))
    freqs = np.fft.fftfreq(nfft, 1 / sample_rate_hz)
    window = np.abs(freqs - near_hz) <= search_hz
    if not window.any():
        raise ValueError(f"search window {near_hz} ± {search_hz} Hz holds no FFT bin")
    coarse = float(freqs[window][np.argmax(spec[window])])
    blocks = n // _BLOCK
    if blocks < 4:
        return coarse
    t = np.arange(blocks * _BLOCK)
    mixed = y[:blocks * _BLOCK] * np.exp(-2j * np.pi * coarse / sample_rate_hz * t)
    means = mixed.reshape(blocks, _BLOCK).mean(axis=1)
    phase = np.unwrap(np.angle(means))
    slope = np.polyfit(np.arange(blocks), phase, 1)[0]       # rad per block
    return coarse + slope * sample_rate_hz / (2 * np.pi * _BLOCK)


def tone_fit(y: np.ndarray, freq_hz: float, sample_rate_hz: float) -> tuple[complex, complex, complex]:
    """Least-squares amplitudes ``(a, b, d)`` of ``y[n] ≈ a e^{jωn} + b e^{−jωn} + d``, ``ω = 2π f / fs``:
    the tone, its mirror image (IQ imbalance) and the DC offset, in the units of ``y``."""
    n = np.arange(len(y))
    w = 2 * np.pi * freq_hz / sample_rate_hz
    basis = np.stack([np.exp(1j * w * n), np.exp(-1j * w * n), np.ones(len(y))], axis=1)
    coef, *_ = np.linalg.lstsq(basis, np.asarray(y, np.complex128), rcond=None)
    return complex(coef[0]), complex(coef[1]), complex(coef[2])


def frame_burst(cfg: FrameConfig, num_frames: int, payload_len: int, gap: int,
                rng: np.random.Generator) -> np.ndarray:
    """``num_frames`` frames of ``payload_len`` random unit-power symbols, each followed by ``gap`` zeros
    (complex64, unit power inside the frames)."""
    tx = Transmitter(cfg)
    parts = []
    for i in range(num_frames):
        symbols = (rng.standard_normal(payload_len) + 1j * rng.standard_normal(payload_len)) / np.sqrt(2)
        parts += [tx.modulate(symbols, frame_id=i), np.zeros(gap, np.complex64)]
    return np.concatenate(parts)


def receive_frames(cfg: FrameConfig, y: np.ndarray) -> list[ReceivedFrame]:
    """Frames :class:`radio.Receiver` decodes (header CRC passed) from one capture."""
    return [f for f in Receiver(cfg).receive(y, final=True) if f.status == "ok"]
