"""Channel estimation (LS, DFT-domain denoising, LMMSE), phase tracking and MMSE equalisation.

All frequency-domain arrays are over the U used subcarriers (see :mod:`radio.ofdm`); delays are in
samples relative to the FFT window start (a path at delay d multiplies subcarrier k by
``exp(-j 2π k d / N)``).

* **LS**: ``H_ls = mean(Y_lts) / X_lts`` over the two long training symbols (error var N0/2).
* **DFT denoising**: project H_ls onto the channels whose impulse response lies in a delay window
  (``F_W (F_Wᴴ F_W)⁻¹ F_Wᴴ``, F_W the U×W partial DFT). With guard bands, a plain
  IFFT → truncate → FFT leaks; the projection is the exact least-squares version of it.
  Noise is reduced by K/U, K ≤ W the window's numerical rank (its directions that hold channel energy).
* **LMMSE**: ``R (R + N0/2 I)⁻¹ H_ls`` with R the frequency correlation of a uniform power-delay
  profile over the same window (Edfors et al. 1998), evaluated through R's eigen-decomposition.
"""
from __future__ import annotations

import cmath
import math
from functools import lru_cache

import numpy as np

from radio.jit import njit

_NULL_DIRECTION = 1e-9  # a delay-window direction whose eigenvalue is below this share of the largest is dropped


@lru_cache(maxsize=256)
def _uniform_pdp_basis(key: tuple[bytes, int], width: int, null_directions: bool) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of the frequency correlation R of a uniform PDP on ``width`` = W delays centred
    on 0 (unit average power), for the used subcarriers in ``key``, restricted to the K ≤ W eigenvalues at
    least :data:`_NULL_DIRECTION` of the largest (all W with ``null_directions``): (λ (K,) descending, V_r (U, K)
    float32). A window of the
    same width centred on c has eigenvectors ``V = diag(e^{−j2πkc/N}) V_r`` and the same λ (see
    :meth:`ChannelEstimator._basis`). The DFT projection is ``V Vᴴ``, the delay window's rank K. Shared by
    all receivers.

    R has W nonzero eigenvalues in exact arithmetic, but a window wider than about N/U·(a few) taps has
    ~W·U/N of them holding its channels' energy and the rest falling off to 1e-30 (a prolate-spheroidal
    spectrum: 542 of 900 above 1e-9 at wide-30.72's widest window): a channel of the window puts less
    than 1e-9 of its energy into each dropped direction, below the float32 rounding of the basis itself.
    Dropping them leaves the filters unchanged to that rounding and makes every product with the basis
    K/W the size (and the SNR estimator's noise, measured outside the window, gains W − K degrees of
    freedom).

    The eigenvectors are real up to that phase ramp: with the window's centre c and ``m = d − c`` (symmetric
    about 0), ``F = diag(e^{−j2πkc/N}) F_c`` and ``F_c F_cᴴ = B Bᵀ`` with B the real U × W matrix of the
    columns ``cos(2πkm/N)`` (m = 0) and ``√2 cos(2πkm/N)``, ``√2 sin(2πkm/N)`` (m > 0). A real V_r is half
    the bytes of a complex V, and the products with it are memory-bound (U·W values: 1200 × 900 at
    wide-30.72). Rank W keeps them small (single-threaded in BLAS: a full U×U product crosses OpenBLAS's
    threading threshold and costs ~0.5 ms on a busy machine)."""
    k = np.frombuffer(key[0], dtype=np.int64)
    n = key[1]
    m = np.arange(width) - (width - 1) / 2
    arg = 2 * np.pi * np.outer(k, m[m > 0]) / n
    b = np.concatenate([np.ones((k.size, int(np.count_nonzero(m == 0))))]
                       + [np.sqrt(2) * np.cos(arg), np.sqrt(2) * np.sin(arg)], axis=1)
    # R = B Bᵀ / W up to the ramp: its eigenvectors are B's left singular vectors (an O(U·W²) SVD instead of
    # an O(U³) eigen-decomposition, ~40 s less per window at the wide-30.72 preset's U = 1200)
    v, sv, _ = np.linalg.svd(b, full_matrices=False)
    rank = width if null_directions else int(np.count_nonzero(sv ** 2 >= _NULL_DIRECTION * sv[0] ** 2))
    return np.ascontiguousarray(sv[:rank] ** 2 / width), np.ascontiguousarray(v[:, :rank], np.float32)


@njit
def _real_matvec(m: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``m @ z`` for a real float32 matrix m (A, B) (C- or Fortran-ordered) and a complex64 vector z (B,):
    complex64 (A,), as two real products (BLAS has no real × complex one). Compiled by
    :func:`radio.jit.njit`: the call costs ~1 µs instead of ~7 (four products per frame)."""
    out = np.empty(m.shape[0], np.complex64)
    out.real[:] = np.dot(m, np.ascontiguousarray(z.real))
    out.imag[:] = np.dot(m, np.ascontiguousarray(z.imag))
    return out


@njit
def _project(v_r: np.ndarray, ramp: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Coordinates ``Vᴴ h`` (K,) complex64 in the basis ``V = diag(ramp) V_r`` (V_r (U, K) float32, ramp (U,)
    complex64) of ``h`` (U,): one compiled call."""
    return _real_matvec(v_r.T, (np.conj(ramp) * h).astype(np.complex64))


@njit
def _lmmse(v_r: np.ndarray, lam: np.ndarray, ramp: np.ndarray, coef: np.ndarray, noise_ls: float
           ) -> tuple[np.ndarray, float]:
    """LMMSE channel ``V diag(λ / (λ + noise_ls)) coef`` (U,) complex64 in the basis of :func:`_project` (λ (K,)
    the eigenvalues, coef (K,)), and the mean of its gains² over U: one compiled call. Directions with a
    negligible gain (λ descending: a low-SNR tail, or a window's null directions) are multiplied too: their
    contribution is below float32 rounding, and the product stays one BLAS call on the whole basis."""
    gain = lam / (lam + noise_ls)
    return ramp * _real_matvec(v_r, (gain * coef).astype(np.complex64)), np.dot(gain, gain) / ramp.size


class ChannelEstimator:
    """Delay-window filters for one set of used subcarriers.

    Args:
        subcarriers: signed index of each used subcarrier, shape (U,).
        fft_size: N.
        null_directions: keep the window's numerically null directions (rank W, see
            :func:`_uniform_pdp_basis`): they catch part of a channel that outlasts its window, which an SNR
            estimate then reads as channel rather than noise.
    """

    def __init__(self, subcarriers: np.ndarray, fft_size: int, null_directions: bool = False):
        self.null_directions = null_directions
        self.k = np.asarray(subcarriers)
        self.n = fft_size
        self._key = (self.k.tobytes(), fft_size)
        self._bases: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _basis(self, d0: int, d1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(λ (K,), ramp (U,) complex64, V_r (U, K) float32) of the window d0..d1-1: the eigenvectors of its
        width's centred window (one SVD per width), moved to its centre by the ramp."""
        basis = self._bases.get((d0, d1))
        if basis is None:
            lam, v_r = _uniform_pdp_basis(self._key, d1 - d0, self.null_directions)
            ramp = np.exp(-2j * np.pi * self.k * ((d0 + d1 - 1) / 2) / self.n).astype(np.complex64)
            basis = self._bases[d0, d1] = lam, ramp, v_r
        return basis

    def rank(self, delays: tuple[int, int]) -> int:
        """K: the dimension of the delay window's channels (``delays`` = (first, last + 1), samples), at most
        its W taps (see :func:`_uniform_pdp_basis`); the degrees of freedom its projection keeps."""
        return self._basis(*delays)[0].size

    def coefficients(self, h: np.ndarray, delays: tuple[int, int]) -> np.ndarray:
        """Coordinates ``Vᴴ h`` (K,) complex64 of ``h`` (U,) in the orthonormal basis V (U, K) of the channels
        within the delay window: the DFT-denoised ``h`` is ``V @ coef`` and its energy is ``‖coef‖²``, so
        estimates that need only the energy (:mod:`radio.snr_estimation`) never build the vector."""
        _, ramp, v_r = self._basis(*delays)
        return _project(v_r, ramp, h)

    def filter(self, h_ls: np.ndarray, coef: np.ndarray, method: str, delays: tuple[int, int], noise_ls: float
               ) -> tuple[np.ndarray, float]:
        """Filtered channel ``A @ h_ls`` and the mean of diag(A Aᴴ) (noise kept per subcarriers).

        Args:
            h_ls: LS channel, shape (U,).
            coef: ``self.coefficients(h_ls, delays)`` (K,).
            method: "ls", "dft" or "lmmse".
            delays: (first, last + 1) delay of the window, samples.
            noise_ls: error variance of H_ls per subcarrier relative to the channel power per
                subcarrier (1/SNR of H_ls; LMMSE only).
        """
        u = h_ls.size
        if method == "ls":
            return h_ls, 1.0
        lam, ramp, v_r = self._basis(*delays)
        if method == "dft":
            return ramp * _real_matvec(v_r, coef.astype(np.complex64, copy=False)), lam.size / u
        h, kept = _lmmse(v_r, lam, ramp, coef, max(noise_ls, 1e-12))
        return h, float(kept)


def ls_estimate(y1: np.ndarray, y2: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """LS channel from two identical training symbols and the noise variance from their difference.

    Args:
        y1, y2: received used subcarriers of the two LTS, shape (U,).
        x: transmitted LTS values, shape (U,), unit modulus.

    Returns:
        (H_ls, sum |y1 - y2|² / 2): the channel (error variance N0/2) and an unbiased noise energy
        with U degrees of freedom.
    """
    h = 0.5 * (y1 + y2) * np.conj(x)
    d = y1 - y2
    return h, 0.5 * float(np.vdot(d, d).real)


@njit
def track_phase(y: np.ndarray, h: np.ndarray, x: np.ndarray, positions: np.ndarray,
                symbol_times: np.ndarray, max_beta: float) -> np.ndarray:
    """Per-symbol common phase error and phase slope across subcarriers from pilots.

    Residual CFO and phase noise rotate a whole symbol (common phase, estimated per symbol).
    Sample-clock offset makes the FFT window drift: a phase slope across subcarriers that grows
    linearly from zero at the training symbols, ``slope_n = β · t_n``; β is one least-squares
    fit over all symbols of the frame, clipped to ``± max_beta`` (the largest clock offset
    expected), so noise at low SNR cannot turn into a large slope.

    Args:
        y: received pilots, shape (S, P).
        h: channel at the pilot subcarriers (from the training symbols), shape (P,).
        x: transmitted pilots, shape (S, P).
        positions: signed subcarrier index of each pilot, shape (P,).
        symbol_times: time of each symbol since the channel was estimated (symbols), shape (S,) float.
        max_beta: bound on β, rad per subcarrier per symbol time.

    Returns:
        array (2, S) float64: common phase (rad) and slope (rad per subcarrier) of each symbol.
    """
    z = np.empty(y.shape, np.complex128)
    for i in range(z.shape[0]):
        for p in range(z.shape[1]):
            z[i, p] = y[i, p] * np.conj(h[p] * x[i, p])
    spacing = (positions[-1] - positions[0]) / (positions.size - 1)  # mean pilot spacing (subcarriers)
    num, den = 0.0, 0.0
    for i in range(z.shape[0]):
        a = 0j  # phase step between neighbouring pilots
        for p in range(1, z.shape[1]):
            a += z[i, p] * np.conj(z[i, p - 1])
        weight = abs(a) * symbol_times[i] ** 2
        num += weight * cmath.phase(a) / spacing / symbol_times[i]
        den += weight
    beta = min(max(num / max(den, 1e-30), -max_beta), max_beta)
    out = np.empty((2, z.shape[0]))
    for i in range(z.shape[0]):
        slope = beta * symbol_times[i]
        c = 0j
        for p in range(z.shape[1]):
            c += z[i, p] * cmath.exp(-1j * slope * positions[p])
        out[0, i] = cmath.phase(c)
        out[1, i] = slope
    return out


@njit
def apply_phase(h: np.ndarray, phase: np.ndarray, subcarriers: np.ndarray) -> np.ndarray:
    """Channel per symbol and subcarrier, shape (S, U), from H (U,) and (common, slope) (2, S) (rad, rad per
    subcarrier); computed in complex128, returned in H's dtype.

    The slope grows linearly over symbols (``track_phase``), so ``exp(j·slope_n·k)`` is a running
    product of one per-symbol step: one complex multiply per element instead of an ``exp``; the first
    symbol's ramp and the step are running products over the subcarriers' span too (rounding
    span · 1e-16).
    """
    common, slope = phase[0], phase[1]
    out = np.empty((slope.size, subcarriers.size), h.dtype)
    if slope.size == 0:
        return out
    lo = subcarriers.min()
    span = subcarriers.max() - lo + 1
    d_slope = slope[min(1, slope.size - 1)] - slope[0]
    ramp_span = np.empty(span, np.complex128)  # exp(j·slope_0·k) for k = lo ..
    step_span = np.empty(span, np.complex128)  # exp(j·(slope_1 − slope_0)·k)
    ramp_span[0], step_span[0] = cmath.exp(1j * slope[0] * lo), cmath.exp(1j * d_slope * lo)
    w_ramp, w_step = cmath.exp(1j * slope[0]), cmath.exp(1j * d_slope)
    for j in range(1, span):
        ramp_span[j] = ramp_span[j - 1] * w_ramp
        step_span[j] = step_span[j - 1] * w_step
    rot = ramp_span[subcarriers - lo]
    step = step_span[subcarriers - lo]
    for i in range(slope.size):
        c = cmath.exp(1j * common[i])
        for u in range(subcarriers.size):
            out[i, u] = rot[u] * c * h[u]
            rot[u] *= step[u]
    return out


_TINY = float(np.finfo(np.float32).tiny)


@njit
def pilot_agreement(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Normalised correlation magnitude ``|Σ_p y·conj(ref)| / sqrt(Σ_p |y|² · Σ_p |ref|²)`` of each row of the
    received pilots ``y`` (S, P) with the expected ones ``ref`` (S, P) (channel × known pilots): float64 (S,) in
    [0, 1], phase-blind."""
    out = np.empty(y.shape[0])
    for i in range(y.shape[0]):
        c, ey, er = 0j, 0.0, 0.0
        for p in range(y.shape[1]):
            c += y[i, p] * np.conj(ref[i, p])
            ey += y[i, p].real ** 2 + y[i, p].imag ** 2
            er += ref[i, p].real ** 2 + ref[i, p].imag ** 2
        out[i] = abs(c) / max(math.sqrt(ey * er), _TINY)
    return out


@njit
def known_symbol_residuals(y: np.ndarray, h: np.ndarray, x_conj: np.ndarray) -> tuple[np.ndarray, float]:
    """Observations of the channel from symbols of known values: their sum and residual energy.

    Each symbol's observation ``obs_s = y_s·x_s*·e^{-jφ_s}`` ≈ H + noise of variance N0, φ_s its common phase
    against ``h`` (the phase of ``Σ_u y·x*·conj(h)``).

    Args:
        y: received symbols, shape (S, U).
        h: channel estimate, shape (U,).
        x_conj: the conjugated known values, shape (S, U), unit modulus.

    Returns:
        (``Σ_s obs_s`` (U,) complex128, ``Σ_s Σ_u |obs_su − h_u|²``).
    """
    total = np.zeros(y.shape[1], np.complex128)
    obs = np.empty(y.shape[1], np.complex128)
    energy = 0.0
    for i in range(y.shape[0]):
        c = 0j
        for u in range(y.shape[1]):
            obs[u] = y[i, u] * x_conj[i, u]
            c += obs[u] * np.conj(h[u])
        rot = cmath.exp(-1j * cmath.phase(c))
        for u in range(y.shape[1]):
            o = obs[u] * rot
            total[u] += o
            r = o - h[u]
            energy += r.real ** 2 + r.imag ** 2
    return total, energy


@njit
def header_soft_values(y: np.ndarray, h: np.ndarray, x: np.ndarray, pilot_idx: np.ndarray, data_idx: np.ndarray,
                       slopes: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Phase-corrected matched-filter outputs of the header's data resource elements.

    The header symbols' common phase is fitted as a line over symbols: the pilot sums
    ``z_t = Σ_p y_tp·conj(H_p·x_tp)`` are correlated with every phase slope of ``slopes`` (a zero-padded
    FFT: the periodogram of z), the peak's slope is taken and the line's offset is the phase of z against it.

    Args:
        y: header symbols' used subcarriers, shape (nh, U).
        h: channel, shape (U,).
        x: the header symbols' pilots, shape (nh, P).
        pilot_idx, data_idx: positions of pilots (P,) and data (D,) among the used subcarriers.
        slopes: ``2π·fftfreq(L)``, the phase slopes (rad per symbol) of an L-point periodogram, L ≥ nh.

    Returns:
        (periodogram peak ``|Σ_t z_t e^{-j·slope·t}|²``, ``Σ_p |H_p|²``, soft values
        ``Re(conj(H_d)·y_td·e^{-jφ_t})`` in symbol-major order, float64 (nh·D,)).
    """
    nh, nd = y.shape[0], data_idx.size
    z = np.zeros(nh, np.complex128)
    energy = 0.0
    for p in range(pilot_idx.size):
        hp = h[pilot_idx[p]]
        energy += hp.real ** 2 + hp.imag ** 2
        for i in range(nh):
            z[i] += y[i, pilot_idx[p]] * np.conj(hp * x[i, p])
    power = np.abs(np.fft.fft(z, slopes.size)) ** 2
    peak = int(np.argmax(power))
    c = 0j
    for i in range(nh):
        c += cmath.exp(-1j * slopes[peak] * i) * z[i]
    soft = np.empty(nh * nd)
    for i in range(nh):
        cpe = cmath.exp(-1j * (slopes[peak] * i + cmath.phase(c)))
        for d in range(nd):
            soft[i * nd + d] = (np.conj(h[data_idx[d]]) * y[i, data_idx[d]] * cpe).real
    return power[peak], energy, soft


@njit
def mmse_equalize(y: np.ndarray, h: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-resource-element MMSE equaliser for unit-power symbols.

    Args:
        y, h: received values and channel, same shape; complex64 (with a float32 ``noise``) gives complex64
            and float32 results.
        noise: N0.

    Returns:
        (x_hat, mse): ``conj(h) y / (|h|² + N0)`` and its error variance ``N0 / (|h|² + N0)``.
    """
    inv = np.reciprocal(h.real * h.real + h.imag * h.imag + noise)
    return np.conj(h) * y * inv, inv * noise


@njit
def equalize_payload(yh: np.ndarray, yp: np.ndarray, h: np.ndarray, x: np.ndarray, pilot_idx: np.ndarray,
                     data_idx: np.ndarray, subcarriers: np.ndarray, max_beta: float, header_residual: float,
                     header_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The payload stage: phase tracking over header and payload (:func:`track_phase`, symbol times from 2, the
    LTS pair's centre), the phase-tracked channel per payload symbol (:func:`apply_phase`), every symbol's
    pilot agreement (:func:`pilot_agreement`; header rows against ``h``), the payload pilots' residual energy
    and the MMSE equaliser (:func:`mmse_equalize`) at the effective noise
    ``(payload residual + header_residual) / (payload pilots + header_count)``.

    Args:
        yh: header symbols' used subcarriers, shape (nh, U).
        yp: payload symbols' used subcarriers, shape (S, U).
        h: channel, shape (U,).
        x: pilots of the header and payload symbols, shape (nh + S, P).
        pilot_idx, data_idx: positions of pilots (P,) and data (D,) among the used subcarriers.
        subcarriers: signed index of each used subcarrier, shape (U,).
        max_beta: bound on the clock-drift phase slope (see :func:`track_phase`).
        header_residual, header_count: residual energy and count of the header's known resource elements.

    Returns:
        (x̂ complex64 (S, D), its error variance float32 (S, D), agreement float64 (nh + S,),
        payload pilots' residual energy ``Σ |y − Ĥ·x|²``).
    """
    nh, s, npil, nd = yh.shape[0], yp.shape[0], pilot_idx.size, data_idx.size
    y = np.empty((nh + s, npil), yh.dtype)
    for p in range(npil):
        for i in range(nh):
            y[i, p] = yh[i, pilot_idx[p]]
        for i in range(s):
            y[nh + i, p] = yp[i, pilot_idx[p]]
    h_pilot = h[pilot_idx]
    phase = track_phase(y, h_pilot, x, subcarriers[pilot_idx], 2.0 + np.arange(nh + s), max_beta)
    hp = apply_phase(h.astype(np.complex64), phase[:, nh:].copy(), subcarriers)
    ref = np.empty(y.shape, np.complex128)
    known = 0.0
    for p in range(npil):
        for i in range(nh):
            ref[i, p] = h_pilot[p] * x[i, p]
        for i in range(nh, nh + s):
            ref[i, p] = hp[i - nh, pilot_idx[p]] * x[i, p]
            r = y[i, p] - ref[i, p]
            known += r.real ** 2 + r.imag ** 2
    agreement = pilot_agreement(y, ref)
    y_data = np.empty((s, nd), yp.dtype)
    h_data = np.empty((s, nd), hp.dtype)
    for i in range(s):
        for d in range(nd):
            y_data[i, d] = yp[i, data_idx[d]]
            h_data[i, d] = hp[i, data_idx[d]]
    x_hat, mse = mmse_equalize(y_data, h_data, np.float32((known + header_residual) / (s * npil + header_count)))
    return x_hat, mse, agreement, known
