"""DC offset and IQ imbalance: estimated from one tone, and checked by correcting the capture.

Model (:mod:`radio.impairments`): ``y = K1 x + K2 x* + d`` with ``K1 = (1 + g e^{−jφ})/2``,
``K2 = (1 − g e^{jφ})/2``, ``g = 10^(amplitude_db/20)``, ``φ = phase_deg``. For a tone ``x = A e^{jωn}``
the capture is ``a e^{jωn} + b e^{−jωn} + d`` with ``a = K1 A`` and ``b = K2 A*``, so
``r = b·a / |a|² = K2 / K1*`` whatever the channel's gain and phase, and ``g e^{jφ} = (1 − r)/(1 + r)``.
``ω`` is the received tone frequency (:func:`calibration.probe.tone_frequency`: a carrier offset is
allowed); ``a``, ``b``, ``d`` come from one least-squares fit (:func:`calibration.probe.tone_fit`).

The DC is reported as a complex value in the backend's units (a Pluto's is fixed at given gains: the
backend subtracts it) and in dBc (relative to the received power without it; the emulator draws a new
DC phase per call, so there only the dBc is a device property). The image rejection ratio
``|a|²/|b|²`` is reported before and after :func:`radio.device_profile.correct_dc_iq` with the estimate.

The estimate is the net image of the link (TX and RX imbalance together); the correction is applied
at the receiver.

Tolerances (tests, emulator AWGN 30 dB, 0.5 dB / 3° imbalance, −20 dBc DC, CFO 5 ppm,
4 captures of 32768 samples): **amplitude ±0.02 dB, phase ±0.2°, DC ±0.5 dB**, image rejection after
correction **≥ 50 dB**.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from calibration.probe import capture, tone, tone_fit, tone_frequency
from radio.backends import RadioBackend
from radio.device_profile import DeviceProfile, correct_dc_iq

TOLERANCE_AMPLITUDE_DB = 0.02
TOLERANCE_PHASE_DEG = 0.2
TOLERANCE_DC_DB = 0.5
MIN_CORRECTED_IRR_DB = 50.0


@dataclass
class DcIqResult:
    """Attributes:
        tone_hz: transmitted tone frequency.
        amplitude_db, phase_deg: IQ imbalance (mean over captures).
        dc_i, dc_q: DC offset, mean over captures, backend units.
        dc_dbc: mean DC power relative to the received power without DC, dB.
        irr_db: image rejection ratio per capture, before correction, dB.
        irr_corrected_db: the same after correcting with the estimate, dB.
    """

    tone_hz: float
    amplitude_db: float
    phase_deg: float
    dc_i: float
    dc_q: float
    dc_dbc: float
    irr_db: list[float]
    irr_corrected_db: list[float]

    def to_dict(self) -> dict:
        return asdict(self)

    def update(self, profile: DeviceProfile) -> DeviceProfile:
        return replace(profile, iq_amplitude_db=self.amplitude_db, iq_phase_deg=self.phase_deg,
                       dc_offset_i=self.dc_i, dc_offset_q=self.dc_q, dc_offset_dbc=self.dc_dbc)

    def plot(self, path: Path, last_capture: np.ndarray, sample_rate_hz: float) -> None:
        """Spectrum of the last capture before and after correction: tone, image, DC."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fixed = correct_dc_iq(last_capture, complex(self.dc_i, self.dc_q), self.amplitude_db, self.phase_deg)
        fig, ax = plt.subplots(figsize=(8, 4))
        freqs = np.fft.fftshift(np.fft.fftfreq(last_capture.size, 1 / sample_rate_hz)) / 1e3
        for y, label in ((last_capture, f"received (image {np.mean(self.irr_db):.1f} dB down)"),
                         (fixed, f"corrected (image {np.mean(self.irr_corrected_db):.1f} dB down)")):
            spec = np.fft.fftshift(np.abs(np.fft.fft(y)) ** 2)
            ax.plot(freqs, 10 * np.log10(spec / spec.max() + 1e-16), lw=0.7, label=label)
        ax.set(xlabel="frequency (kHz)", ylabel="power (dB re tone)", ylim=(-110, 5),
               title=f"DC and IQ imbalance: {self.amplitude_db:+.3f} dB, {self.phase_deg:+.2f}°, "
                     f"DC {self.dc_dbc:.1f} dBc (tone +{self.tone_hz / 1e3:.0f} kHz, "
                     f"image −{self.tone_hz / 1e3:.0f} kHz)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def imbalance_from_fit(a: complex, b: complex) -> tuple[float, float]:
    """IQ imbalance ``(amplitude_db, phase_deg)`` from the tone and image amplitudes of one fit."""
    r = b * a / abs(a) ** 2                     # = K2 / K1*
    z = (1 - r) / (1 + r)                       # = g e^{jφ}
    return 20 * math.log10(abs(z)), math.degrees(np.angle(z))


def measure_dc_iq(backend: RadioBackend, *, captures: int = 4, num_samples: int = 32768,
                  tone_hz: float | None = None, search_ppm: float = 50.0) -> tuple[DcIqResult, np.ndarray]:
    """Estimate DC offset and IQ imbalance over ``captures`` captures of ``num_samples`` samples.

    Returns the result and the last capture (for the plot).
    """
    fs, fc = backend.sample_rate_hz, backend.center_frequency_hz
    burst, f0 = tone(2 * num_samples, fs / 8 if tone_hz is None else tone_hz, fs)
    amps, phases, dcs, dc_powers, irr, irr_fixed, captured = [], [], [], [], [], [], []
    for _ in range(captures):
        y = capture(backend, burst, 2 * num_samples)[num_samples // 2: num_samples // 2 + num_samples]
        f = tone_frequency(y, fs, f0, search_ppm * 1e-6 * fc)
        a, b, d = tone_fit(y, f, fs)
        amp, ph = imbalance_from_fit(a, b)
        amps.append(amp)
        phases.append(ph)
        dcs.append(d)
        dc_powers.append(abs(d) ** 2 / float(np.mean(np.abs(y - d) ** 2)))
        irr.append(10 * math.log10(abs(a) ** 2 / abs(b) ** 2))
        captured.append((y, f, d))
    amplitude_db, phase_deg = float(np.mean(amps)), float(np.mean(phases))
    for y, f, d in captured:   # each capture corrected with the pooled imbalance and its own DC
        a, b, _ = tone_fit(correct_dc_iq(y, d, amplitude_db, phase_deg), f, fs)
        irr_fixed.append(10 * math.log10(abs(a) ** 2 / abs(b) ** 2))
    dc = complex(np.mean(dcs))
    return DcIqResult(tone_hz=f0, amplitude_db=amplitude_db, phase_deg=phase_deg, dc_i=dc.real, dc_q=dc.imag,
                      dc_dbc=10 * math.log10(float(np.mean(dc_powers))), irr_db=irr,
                      irr_corrected_db=irr_fixed), captured[-1][0]
