"""Loopback delay: where a transmitted burst's first sample lands in the received stream.

Probe: ``probe_length`` samples of band-limited noise (unit-magnitude random phases on the bins within
±``band`` · fs/2, flat spectrum, nothing at DC) with a cyclic prefix and suffix of ``_GUARD`` samples,
followed by zeros (one burst is twice the probe long). Per capture:

1. the peak of the cross-correlation with the probe gives the integer delay ``k``;
2. thanks to the cyclic guards the window ``y[k:k+L]`` is a circular shift of the probe by the
   fractional delay ``τ``, so ``H = FFT(y[k:k+L]) / X`` has the phase slope ``−2π τ / L`` per bin;
   ``τ`` is the fractional delay (group delay of filters and cable).

A carrier offset smears both steps: captures are derotated by ``cfo_hz`` first (from the profile's
``oscillator_ppm``: run ``oscillator`` before ``delay`` when TX and RX are separate devices; one Pluto in
cabled loopback shares one crystal and has none).

``delay_samples = k + τ`` counts from the first sample of the capture that follows ``transmit``. That
is the loopback latency for stream backends (the emulator, ZeroMQ, a non-cyclic Pluto without flushed
buffers). With a cyclic Pluto burst the capture starts at an arbitrary point of the repetition, so
only the fractional part (``fractional_delay_samples``, in [−0.5, 0.5)) is a property of the device.

Tolerances (tests): emulator AWGN 20 dB with a random start offset: **integer delay exact and
|delay − truth.start| ≤ 0.05 samples** on every capture; fake Pluto with a fractional delay in its
channel, cyclic TX: **fractional part within ±0.05 samples**.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from calibration.probe import capture
from radio.backends import RadioBackend
from radio.device_profile import DeviceProfile, derotate

TOLERANCE_SAMPLES = 0.05
_GUARD = 64


def probe(length: int, band: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``[length]`` complex64 unit-power probe and the FFT bin indices it occupies (``[m]`` int)."""
    bins = np.fft.fftfreq(length) * 2                      # normalised to fs/2
    used = np.flatnonzero((np.abs(bins) <= band) & (bins != 0))
    spectrum = np.zeros(length, complex)
    spectrum[used] = np.exp(2j * np.pi * rng.random(used.size))
    x = np.fft.ifft(spectrum)
    return (x / np.sqrt(np.mean(np.abs(x) ** 2))).astype(np.complex64), used


def fractional_delay(y: np.ndarray, x: np.ndarray, used: np.ndarray) -> float:
    """Delay (samples, |τ| < 1) of ``y`` against ``x``, circularly shifted, from the phase slope of ``Y/X``.

    Coarse slope from the products of adjacent bins, then a least-squares line through the phases
    left after removing it (``used``: the occupied FFT bins, ``[m]``).
    """
    n = len(x)
    h = np.fft.fft(y)[used] / np.fft.fft(x)[used]
    k = np.fft.fftfreq(n, 1 / n)[used]                       # signed bin index
    adjacent = np.flatnonzero(np.diff(k) == 1)
    coarse = -np.angle(np.sum(h[adjacent + 1] * np.conj(h[adjacent]))) * n / (2 * np.pi)
    flat = h * np.exp(2j * np.pi * k * coarse / n)
    residual = np.angle(flat / np.mean(flat))
    slope = np.polyfit(k, residual, 1)[0]
    return float(coarse - slope * n / (2 * np.pi))


@dataclass
class DelayResult:
    """Attributes:
        delay_samples: per capture, integer + fractional delay, samples.
        fractional_delay_samples: mean fractional part, samples in [−0.5, 0.5).
        sample_rate_hz: to convert to seconds.
        correlation: |cross-correlation| of the last capture (for the plot), normalised to its peak.
    """

    delay_samples: list[float]
    fractional_delay_samples: float
    sample_rate_hz: float
    correlation: list[float]

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "correlation"}

    @property
    def mean_delay_samples(self) -> float:
        return float(np.mean(self.delay_samples))

    def update(self, profile: DeviceProfile) -> DeviceProfile:
        return replace(profile, loopback_delay_samples=self.mean_delay_samples)

    def plot(self, path: Path) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
        c = np.asarray(self.correlation)
        a1.plot(np.arange(c.size), 20 * np.log10(c + 1e-9), lw=0.7)
        a1.axvline(self.delay_samples[-1], color="r", ls="--", label=f"{self.delay_samples[-1]:.2f} samples")
        a1.set(xlabel="lag (samples)", ylabel="|correlation| (dB re peak)", ylim=(-60, 3),
               title="correlation with the probe (last capture)")
        a1.legend(fontsize=8)
        a2.plot(np.arange(1, len(self.delay_samples) + 1), self.delay_samples, "o-")
        a2.set(xlabel="capture", ylabel="delay (samples)", title="delay per capture")
        fig.suptitle(f"Loopback delay: {self.mean_delay_samples:.2f} samples "
                     f"({self.mean_delay_samples / self.sample_rate_hz * 1e6:.2f} µs), fractional part "
                     f"{self.fractional_delay_samples:+.3f}")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def measure_delay(backend: RadioBackend, *, captures: int = 4, probe_length: int = 1024, band: float = 0.75,
                  cfo_hz: float = 0.0, seed: int = 0) -> DelayResult:
    """Measure the loopback delay over ``captures`` bursts (probe + equal gap), capturing 3 burst lengths each.

    Args:
        band: probe bandwidth as a fraction of fs/2 (0.75: the frame's used band).
        cfo_hz: known carrier offset, removed before the correlation.
    """
    x, used = probe(probe_length, band, np.random.default_rng(seed))
    burst = np.concatenate([x[-_GUARD:], x, x[:_GUARD], np.zeros(probe_length - 2 * _GUARD, np.complex64)])
    delays, fractions = [], []
    for _ in range(captures):
        y = derotate(capture(backend, burst, 3 * burst.size), cfo_hz, backend.sample_rate_hz)
        corr = np.abs(np.correlate(y, x, mode="valid"))      # lag k: sum_n y[k + n] x*[n]
        # the first peak past the guard: a whole repetition of a cyclic burst lies within reach
        k = _GUARD + int(np.argmax(corr[_GUARD:_GUARD + burst.size]))
        tau = fractional_delay(y[k:k + probe_length], x, used)
        delays.append(k - _GUARD + tau)
        fractions.append(tau)
    frac = float(np.angle(np.mean(np.exp(2j * np.pi * np.asarray(fractions)))) / (2 * np.pi))  # circular mean
    return DelayResult(delay_samples=[float(d) for d in delays], fractional_delay_samples=frac,
                       sample_rate_hz=backend.sample_rate_hz, correlation=(corr / corr.max()).tolist())
