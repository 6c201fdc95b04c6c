"""RMS delay spread from an estimated channel.

Two estimators over the LS channel of the long training symbols (U used subcarriers):

* ``"pdp"`` (the receiver's): power-delay profile from the impulse response over the delay window
  (−8 samples to the preamble CP). The band (its DC hole filled) is tapered (Kaiser β=8, sidelobes below −55 dB) and
  inverse-transformed. A tap is kept if it is above the noise threshold, set so that noise alone puts
  :data:`_FALSE_TAPS` taps above it per estimate over the whole window (|noise tap|² is exponential:
  threshold = ln(window / _FALSE_TAPS) × the per-tap floor; a single far noise tap weighs τ² and would
  dominate a short channel's spread), and within :data:`_SIDELOBE_DB` of the strongest tap (the taper's
  sidelobes and noise taps at high SNR); the floor is subtracted from the kept taps. The RMS delay spread
  then follows Sionna's ``rms_delay_spread`` formula ``sqrt(Σ P τ² / Σ P − (Σ P τ / Σ P)²)``. A single path
  already shows a spread (the taper's main lobe, about 1/bandwidth wide): its second moment under the same
  thresholds, averaged over fractional delays, is subtracted in quadrature.
* ``"coherence"``: from the frequency correlation at lag Δ subcarriers,
  ``ρ(Δ) = Σ H_{k+Δ} H_k* / Σ (|H_k|² − σ²)``; for a PDP with RMS spread τ, ``|ρ| ≈ exp(−(2π Δ τ Δf)² / 2)``
  so ``τ = sqrt(−2 ln |ρ|) / (2π Δ Δf)``. Δ adapts so that 2πΔτΔf ≈ 0.7 rad. Biased low where the
  PDP is far from Gaussian: a line-of-sight path (TDL-D/E) keeps ``|ρ|`` from decaying (reads ~0.4× there,
  ``bench/estimator_grid.py``); kept for comparison.

Resolution: two paths closer than ~1/bandwidth (U·Δf = 2.88 MHz → ~350 ns at the narrow preset)
cannot be told apart from one; below that the estimate is dominated by noise and the random
interference between unresolved paths, and a single path reads as ~0. The stated floor is
:data:`RESOLUTION_BANDWIDTHS` / (occupied bandwidth) (174 ns narrow, 28 ns at wide-30.72):
:meth:`DelaySpreadEstimator.resolve` reports an estimate below it as "below resolution" carrying
the floor value, so a reported delay spread is always positive.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.signal.windows import kaiser

from radio.jit import njit

_KAISER_BETA = 8.0
_EXTENT_BETA = 4.0
RESOLUTION_BANDWIDTHS = 0.5
"""The resolution floor in units of 1 / occupied bandwidth."""
_NOISE_THRESHOLD = 4.0   # of :meth:`DelaySpreadEstimator.extent`
_FALSE_TAPS = 1e-4
_SIDELOBE_DB = 40.0
ESTIMATORS = ("pdp", "coherence")


@njit
def rms_delay_spread(pdp: np.ndarray, delays_s: np.ndarray) -> float:
    """RMS delay spread (s) of a power-delay profile ``pdp`` (L,) at delays ``delays_s`` (L,) (Sionna's
    ``rms_delay_spread`` formula); 0 for a profile without power."""
    total, m1, m2 = 0.0, 0.0, 0.0
    for i in range(pdp.size):
        total += pdp[i]
        m1 += pdp[i] * delays_s[i]
        m2 += pdp[i] * delays_s[i] ** 2
    if total <= 0:
        return 0.0
    mean = m1 / total
    return math.sqrt(max(m2 / total - mean ** 2, 0.0))


@njit
def _cir_power(h: np.ndarray, taper: np.ndarray, pos: np.ndarray, hole: np.ndarray, hole_nb: np.ndarray,
               bins: np.ndarray, n: int, delays: np.ndarray) -> np.ndarray:
    """|CIR|² (float64, shape of ``delays``) of the channel ``h`` (U,) placed at ``pos`` into the contiguous band
    (its ``hole`` positions filled with the mean of their two neighbours, right one ``hole_nb`` into h), times
    ``taper`` (band,), on FFT ``bins`` (band,) of an N-point inverse FFT read at ``delays`` (samples, negative
    ones wrap)."""
    full = np.empty(taper.size, np.complex128)
    for j in range(pos.size):
        full[pos[j]] = h[j]
    for j in range(hole.size):
        full[hole[j]] = 0.5 * (h[hole_nb[j] - 1] + h[hole_nb[j]])
    spec = np.zeros(n, np.complex128)
    for j in range(bins.size):
        spec[bins[j]] = full[j] * taper[j]
    c = np.fft.ifft(spec)
    p = np.empty(delays.size)
    for i in range(delays.size):
        v = c[delays[i] % n]
        p[i] = v.real ** 2 + v.imag ** 2
    return p


@njit
def _kept_power(p: np.ndarray, floor: float, floor_factor: float, relative: float) -> tuple[np.ndarray, int]:
    """The impulse-response power ``p`` (L,) (:func:`_cir_power`) less the noise ``floor`` on the taps above
    ``max(floor_factor·floor, relative·max)``, zero on the others: (kept power (L,), a new array; index of the last
    kept tap, −1 if none)."""
    level = max(floor_factor * floor, relative * p.max())
    kept = np.zeros(p.size)
    last = -1
    for i in range(p.size):
        if p[i] > level:
            kept[i] = p[i] - floor
            last = i
    return kept, last


class DelaySpreadEstimator:
    """Delay-spread estimation for one numerology.

    Args:
        subcarriers: signed used-subcarrier indices, shape (U,) (contiguous apart from DC).
        fft_size: N.
        sample_rate_hz: sample rate (delay tap spacing 1/fs).
        max_delay: largest delay (samples after the FFT window start) considered by ``"pdp"``.
        method: the estimator :meth:`estimate` uses, one of :data:`ESTIMATORS`.
    """

    def __init__(self, subcarriers: np.ndarray, fft_size: int, sample_rate_hz: float, max_delay: int,
                 method: str = "pdp"):
        if method not in ESTIMATORS:
            raise ValueError(f"unknown delay-spread estimator {method!r}; known: {list(ESTIMATORS)}")
        self.method = method
        self.k = np.asarray(subcarriers)
        self.n = fft_size
        self.fs = sample_rate_hz
        self.resolution_s = RESOLUTION_BANDWIDTHS * fft_size / (self.k.size * sample_rate_hz)
        self.delays = np.arange(-8, max_delay)
        self._delays_f = self.delays.astype(float)
        # the band as one contiguous run: the unused DC subcarrier is filled with its neighbours' mean,
        # else the hole adds a flat pedestal (1/Σtaper)² below the peak at every delay (−31 dB at 96
        # subcarriers), which the τ² weight turns into a spread
        band = np.arange(self.k.min(), self.k.max() + 1)
        self._pos = np.searchsorted(band, self.k)
        hole = np.setdiff1d(np.arange(band.size), self._pos)
        self._hole, self._hole_nb = hole, np.searchsorted(self.k, band[hole])  # right neighbour in h
        self._bins = band % fft_size
        self._taper_pdp, self._taper_extent = kaiser(band.size, _KAISER_BETA), kaiser(band.size, _EXTENT_BETA)
        self._threshold = math.log(self.delays.size / _FALSE_TAPS)
        self.kernel_var = float(np.mean([self._spread_samples(
            np.exp(-2j * np.pi * self.k * (10 + f) / self.n), 0.0, subtract=False) ** 2
            for f in np.linspace(0, 1, 16, endpoint=False)]))

    def impulse_response_power(self, h: np.ndarray, noise: float, taper: np.ndarray | None = None
                               ) -> tuple[np.ndarray, float]:
        """|CIR|² on ``self.delays`` of the tapered band and the noise floor per tap.

        Args:
            h: channel over used subcarriers, shape (U,), error variance ``noise`` per subcarrier.
            taper: over the contiguous band (U + the DC hole); default the ``"pdp"`` estimator's.
        """
        taper = self._taper_pdp if taper is None else taper
        p = _cir_power(np.asarray(h, np.complex128), taper, self._pos, self._hole, self._hole_nb, self._bins,
                       self.n, self.delays)
        return p, self._floor(noise, taper)

    def _floor(self, noise: float, taper: np.ndarray) -> float:
        """Noise power per tap of the tapered inverse FFT of a channel with error variance ``noise``."""
        return noise * float(np.dot(taper, taper)) / self.n ** 2

    def _spread_samples(self, h: np.ndarray, noise: float, subtract: bool = True) -> float:
        return self._spread_of(*self.impulse_response_power(h, noise), subtract=subtract)

    def _spread_of(self, p: np.ndarray, floor: float, subtract: bool = True) -> float:
        """RMS delay spread (samples) of the ``"pdp"`` impulse-response power ``p`` with noise ``floor`` per tap."""
        kept, _ = _kept_power(p, floor, self._threshold, 10 ** (-_SIDELOBE_DB / 10))
        s = rms_delay_spread(kept, self._delays_f)
        return float(np.sqrt(max(s ** 2 - self.kernel_var, 0.0))) if subtract else s

    def pdp(self, h: np.ndarray, noise: float) -> float:
        """RMS delay spread (s) from the thresholded power-delay profile."""
        return self._spread_samples(h, noise) / self.fs

    def coherence(self, h: np.ndarray, noise: float) -> float:
        """RMS delay spread (s) from the frequency correlation of ``h`` (error variance ``noise``)."""
        u = h.size
        power = float(np.vdot(h, h).real) / u - noise
        if power <= 0:
            return 0.0
        df = 1.0 / self.n  # subcarrier spacing in units of the sample rate
        lag, tau = 2, 0.0
        for _ in range(2):  # one refinement of the lag for the delay spread found at lag 2
            rho = min(abs(complex(np.vdot(h[:-lag], h[lag:]))) / (u - lag) / power, 1.0)
            tau = math.sqrt(-2.0 * math.log(max(rho, 1e-9))) / (2 * math.pi * lag * df)
            new = min(max(round(0.7 / (2 * math.pi * max(tau, 1e-3) * df)), 1), u // 8)
            if new == lag:
                break
            lag = new
        return tau / self.fs

    def estimate(self, h: np.ndarray, noise: float) -> tuple[float, bool]:
        """The receiver's delay spread: (reported value (s), below resolution), by ``self.method``
        through :meth:`resolve`.

        Args:
            h: LS channel over the used subcarriers, shape (U,), error variance ``noise`` per subcarrier.
        """
        return self.resolve(getattr(self, self.method)(h, noise))

    def resolve(self, tau_s: float) -> tuple[float, bool]:
        """An estimate (s) → (reported value, below resolution): values below ``resolution_s`` (and 0)
        are reported as ``resolution_s`` with the flag set."""
        below = not tau_s >= self.resolution_s
        return (self.resolution_s if below else tau_s), below

    def extent(self, h: np.ndarray, noise: float) -> int:
        """Last delay (samples) whose |CIR|² is above the noise threshold and the taper's sidelobes
        (−25 dB below the strongest tap); −1 if none."""
        _, last = _kept_power(*self.impulse_response_power(h, noise, self._taper_extent), 2 * _NOISE_THRESHOLD, 3e-3)
        return int(self.delays[last]) if last >= 0 else -1

    def estimate_and_support(self, h: np.ndarray, noise: float) -> tuple[tuple[float, bool], tuple[int, int]]:
        """:meth:`estimate`, and the channel's support: the first and last delay (samples) whose |CIR|² is above
        the ``"pdp"`` estimator's noise threshold (noise alone puts :data:`_FALSE_TAPS` taps above it), with its
        taper (sidelobes below −55 dB), (−1, −1) if none: every tap a channel filter must keep, up to ~50 dB
        above the per-tap noise floor. With the ``"pdp"`` method both come from one impulse response."""
        p, floor = self.impulse_response_power(h, noise)
        kept, last = _kept_power(p, floor, self._threshold, 0.0)
        support = (int(self.delays[np.argmax(kept > 0)]), int(self.delays[last])) if last >= 0 else (-1, -1)
        tau = self._spread_of(p, floor) / self.fs if self.method == "pdp" else getattr(self, self.method)(h, noise)
        return self.resolve(tau), support
