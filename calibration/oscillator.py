"""Oscillator offset in ppm: the carrier offset a device receives, from a tone of known frequency.

Method: transmit a tone at ``f0`` (default fs/8, snapped to whole cycles per burst), capture, and
estimate the received tone's frequency (:func:`calibration.probe.tone_frequency`, searched within
±``search_ppm`` of the carrier). The offset is ``cfo_hz = f_rx − f0`` and
``ppm = cfo_hz / f_c · 1e6`` — the convention of :class:`radio.Impairments` ``cfo_ppm`` and of
:attr:`radio.device_profile.DeviceProfile.oscillator_ppm` (the received signal is ``x·e^{+j2π cfo t}``).

Set-ups:

* **two devices** (TX on the reference device, RX on the device under calibration, cable + attenuator):
  the RX device's offset relative to the TX device — what a link between them sees.
* **cabled loopback on one Pluto**: TX and RX synthesisers share one crystal, so the result is the
  residual between the two synthesisers (≈ 0); a check of the method and of the set-up, not the
  crystal's error. For the crystal itself use a reference transmitter (signal generator, GPSDO).

A sample-clock offset of the same ppm moves the tone by only ``f0 · ppm`` (0.5 Hz at 480 kHz and
1 ppm), 4000× less than the carrier offset at 2 GHz: it is ignored.

Tolerance (tests, emulator at 2.4 GHz, AWGN 20 dB, phase noise 10 Hz linewidth, DC and IQ imbalance
on, 4 captures of 32768 samples at 3.84 MS/s): **|ppm error| ≤ 0.01 ppm** (24 Hz); the same through
the fake Pluto with a CFO in its channel.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from calibration.probe import capture, tone, tone_frequency
from radio.backends import RadioBackend
from radio.device_profile import DeviceProfile

TOLERANCE_PPM = 0.01


@dataclass
class OscillatorResult:
    """Attributes:
        center_frequency_hz, sample_rate_hz: of the backend.
        tone_hz: transmitted tone frequency.
        cfo_hz: per capture, received minus transmitted frequency, Hz.
        ppm: mean offset, ppm of the carrier.
        ppm_std: standard deviation over captures, ppm.
    """

    center_frequency_hz: float
    sample_rate_hz: float
    tone_hz: float
    cfo_hz: list[float]
    ppm: float
    ppm_std: float

    def to_dict(self) -> dict:
        return asdict(self)

    def update(self, profile: DeviceProfile) -> DeviceProfile:
        return replace(profile, oscillator_ppm=self.ppm)

    def plot(self, path: Path, last_capture: np.ndarray) -> None:
        """Spectrum of the last capture around the tone, and the offset per capture."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
        spec = np.fft.fftshift(np.abs(np.fft.fft(last_capture)) ** 2)
        freqs = np.fft.fftshift(np.fft.fftfreq(last_capture.size, 1 / self.sample_rate_hz))
        a1.plot(freqs / 1e3, 10 * np.log10(spec / spec.max() + 1e-16), lw=0.7)
        a1.axvline(self.tone_hz / 1e3, color="k", ls=":", label="sent tone")
        a1.axvline((self.tone_hz + np.mean(self.cfo_hz)) / 1e3, color="r", ls="--", label="received tone")
        a1.set(xlabel="frequency (kHz)", ylabel="power (dB re peak)", ylim=(-90, 5),
               title="received spectrum (last capture)")
        a1.legend(fontsize=8)
        ppm = np.asarray(self.cfo_hz) / self.center_frequency_hz * 1e6
        a2.plot(np.arange(1, ppm.size + 1), ppm, "o-")
        a2.axhline(self.ppm, color="r", ls="--", label=f"mean {self.ppm:+.4f} ppm")
        a2.set(xlabel="capture", ylabel="offset (ppm)", title="oscillator offset per capture")
        a2.legend(fontsize=8)
        fig.suptitle(f"Oscillator offset at {self.center_frequency_hz / 1e6:.1f} MHz: {self.ppm:+.4f} ppm "
                     f"({np.mean(self.cfo_hz):+.1f} Hz)")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def measure_oscillator(backend: RadioBackend, *, captures: int = 4, num_samples: int = 32768,
                       tone_hz: float | None = None, search_ppm: float = 50.0) -> tuple[OscillatorResult, np.ndarray]:
    """Measure the carrier offset over ``captures`` captures of ``num_samples`` samples.

    Args:
        backend: any radio backend (its ``center_frequency_hz`` converts Hz to ppm).
        tone_hz: tone frequency, default fs/8.
        search_ppm: largest offset searched, ppm of the carrier.

    Returns:
        the result and the last capture (for the plot).
    """
    fs, fc = backend.sample_rate_hz, backend.center_frequency_hz
    burst, f0 = tone(2 * num_samples, fs / 8 if tone_hz is None else tone_hz, fs)
    search_hz = search_ppm * 1e-6 * fc
    if f0 - search_hz <= 0 or f0 + search_hz >= fs / 2:
        raise ValueError(f"tone {f0:.0f} Hz ± {search_hz:.0f} Hz search must stay inside (0, fs/2): "
                         "lower search_ppm or move the tone")
    offsets = []
    for _ in range(captures):
        # the middle of a two-burst-long capture: clear of a stream backend's leading samples
        y = capture(backend, burst, 2 * num_samples)[num_samples // 2: num_samples // 2 + num_samples]
        offsets.append(tone_frequency(y, fs, f0, search_hz) - f0)
    ppm = np.asarray(offsets) / fc * 1e6
    return OscillatorResult(center_frequency_hz=fc, sample_rate_hz=fs, tone_hz=f0, cfo_hz=[float(o) for o in offsets],
                            ppm=float(ppm.mean()), ppm_std=float(ppm.std())), y
