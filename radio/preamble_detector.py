"""Coherent check of preamble-detection candidates on the long-training region.

The Schmidl-Cox + LTS-pair autocorrelation (:func:`radio.sync.detection_metric`) is cheap but compares the
received signal with itself, so its noise is signal-independent noise × noise: at −5 dB a preamble's
metric barely clears the noise (the threshold that keeps 1 % of preambles lets thousands of noise peaks
through per 10⁶ samples). This check correlates with the *known* long training symbol instead, coherently
over the whole periodic LTS region (guard + two copies, ``Gp + 2N`` samples), with an integer-CFO search
(the fractional CFO comes from the autocorrelation). Noise candidates are dropped here for a few µs each,
before the receiver's costly verification and header decoding.

Per candidate at SC body start ``p`` (coarse: off by up to ± N at −5 dB):

1. **locate**: a span ``N/2`` wider on each side than the LTS region's ISI-free part is derotated by the
   fractional CFO and folded modulo N (the region is N-periodic, so its copies add coherently; the span's extra
   samples only add noise); its FFT times the known LTS, for each integer CFO shift, is the channel impulse
   response (CIR) modulo N. The best (shift, window) holds the largest fraction of its CIR's energy in a window
   of ``width`` ≥ cp + 1 taps starting on a multiple of ``block`` taps (a channel that fits the cyclic prefix
   lies inside one; noise spreads over all N taps);
2. **place and score** (candidates whose located fraction reaches ``locate_threshold``): of the three LTS
   starts within ± N of the coarse one that the located window allows, the one whose exact ISI-free region
   (``Gp − cp + 2N`` samples) collects the most CIR energy in that window is taken; its energy fraction there
   is the score, and the frame's start is put at the window's energy centre.

Under noise the energy fraction of one window is that of band-limited white noise, ≈ Beta(W·U/N, (N−W)·U/N)
(U used subcarriers, W = ``width``); the thresholds are its quantiles at ``false_pass`` (score) and
``_LOCATE_PASS`` (locate) over the number of hypotheses each is the best of (a union bound: a noise candidate
passes with probability at most about ``false_pass``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats

from radio.config import FrameConfig
from radio.jit import njit
from radio.ofdm import ResourceGrid
from radio.preamble import Preamble

_PHASE_LEVELS = 64  # fractional-CFO derotation table size
_LOCATE_PASS = 0.5
"""Union bound on the probability that a noise candidate's wide-span score reaches the placement step (measured
at the narrow preset: ~0.2); a frame at −5 dB whose coarse start is within ± N of the truth scores well above."""


@njit
def folded_spectra(buf: np.ndarray, starts: np.ndarray, length: int, cfo: np.ndarray, derotation: np.ndarray,
                   levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectra of the spans ``buf[start : start + length]`` (K of them) derotated by ``cfo`` (K,) and folded
    modulo N: (FFT (K, N) complex64 of the folded spans, the fractional CFO the per-sample table removed (K,)).

    The derotation e^{-j2πε(cN + r)/N} = e^{-j2πεc} · e^{-j2πεr/N} is exact per copy c; per sample r it is row
    ``round(ε L) mod L`` of ``derotation`` (L, N) complex64, which removes ``levels`` (L,) subcarriers
    (≤ π/L rad off at the end of a period); the remainder of ε is an integer number of subcarriers, taken by
    the per-copy factor. Loop-shaped: compiled by :func:`radio.jit.njit`."""
    k = starts.size
    table, n = derotation.shape
    z = np.zeros((k, n), np.complex64)
    removed = np.empty(k)
    for i in range(k):
        step, w = np.exp(-2j * np.pi * cfo[i]), 1.0 + 0.0j  # per-copy factor w = step ** c
        for c in range(-(-length // n)):
            first, wc = starts[i] + c * n, np.complex64(w)
            for t in range(min(n, length - c * n)):
                z[i, t] += buf[first + t] * wc
            w *= step
        level = int(np.rint(cfo[i] * table)) % table
        for t in range(n):
            z[i, t] *= derotation[level, t]
        removed[i] = levels[level]
    return np.fft.fft(z), removed


@njit
def best_window(spec: np.ndarray, ref: np.ndarray, max_shift: int, block: int, window_blocks: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer CFO shift and CIR window with the largest energy fraction, per row of ``spec`` (K, N) complex64.

    For each shift s in −S..S (S = ``max_shift``) the CIR is IFFT(spec[(f + s) mod N] · ref[f]) (``ref`` (N,)
    complex64); its windows are ``window_blocks`` blocks of ``block`` taps starting on every block
    (circularly). Returns (energy fraction (K,) of the best (shift, window), the first maximum in (shift, window)
    order; its window's first block (K,); its shift s (K,)); energies summed in float64. Loop-shaped: compiled
    by :func:`radio.jit.njit`."""
    k, n = spec.shape
    shifts, nb = 2 * max_shift + 1, n // block
    wrapped = np.concatenate((spec[:, n - max_shift:], spec, spec[:, :max_shift]), axis=1)  # [i, f + S]: f mod N
    prod = np.empty((k * shifts, n), np.complex64)
    for i in range(k):
        for h in range(shifts):
            for f in range(n):
                prod[i * shifts + h, f] = wrapped[i, f + h] * ref[f]
    cir = np.fft.ifft(prod)
    power = np.empty(n)
    blocks = np.empty(nb + window_blocks - 1)  # block energies, the first ones repeated
    best = np.full(k, -1.0)
    first_block, best_shift = np.zeros(k, np.int64), np.zeros(k, np.int64)
    for i in range(k):
        for h in range(shifts):
            for t in range(n):
                power[t] = np.float64(cir[i * shifts + h, t].real) ** 2 + np.float64(cir[i * shifts + h, t].imag) ** 2
            total = 0.0
            for j in range(nb):
                e = 0.0
                for t in range(j * block, (j + 1) * block):
                    e += power[t]
                blocks[j] = e
                total += e
            for j in range(window_blocks - 1):  # a loop, not a slice copy (which takes numba ~1.5 s to compile)
                blocks[nb + j] = blocks[j]
            window = 0.0
            for j in range(window_blocks - 1):
                window += blocks[j]
            total = max(total, 1e-300)
            for j in range(nb):
                window += blocks[j + window_blocks - 1]
                if window / total > best[i]:
                    best[i], first_block[i], best_shift[i] = window / total, j, h - max_shift
                window -= blocks[j]
    return best, first_block, best_shift


@njit
def best_placement(buf: np.ndarray, first: np.ndarray, cfo: np.ndarray, length: int, lead: int, width: int,
                   derotation: np.ndarray, levels: np.ndarray, ref: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best of the three LTS starts ``first + (−1, 0, 1)·N`` of K candidates (``first`` (K,) buffer indices,
    CFO (K,) subcarriers): the one whose ISI-free region (``length`` samples from ``lead`` before it, folded as
    in :func:`folded_spectra`; a region starting before the buffer holds nothing) collects the most CIR energy
    in its channel window, taps ``lead .. lead + width`` of IFFT(spec[(f + shift) mod N] · ``ref``[f]) at the
    CFO's integer shift. Returns (its index 0..2 (K,); its window's fraction of the CIR energy (K,); the
    window's energy centre (K,), taps from the window's start); energies summed in float64, so a score near
    the threshold is not decided by float32 summation order. Loop-shaped: compiled by :func:`radio.jit.njit`."""
    k, n = first.size, derotation.shape[1]
    region = np.empty(3 * k, np.int64)
    for i in range(3 * k):
        region[i] = first[i // 3] + (i % 3 - 1) * n - lead
    cfo3 = np.repeat(cfo, 3)
    spec, removed = folded_spectra(buf, np.maximum(region, 0), length, cfo3, derotation, levels)
    shift = np.rint(cfo3 - removed).astype(np.int64)
    prod = np.empty((3 * k, n), np.complex64)
    for i in range(3 * k):
        s = shift[i] % n
        for f in range(n):  # spec[i, (f + shift) mod N] without a modulo per bin (several times slower)
            prod[i, f] = spec[i, f + s - n if f + s >= n else f + s] * ref[f]
    cir = np.fft.ifft(prod)
    window, total, moment = np.zeros(3 * k), np.zeros(3 * k), np.zeros(3 * k)
    for i in range(3 * k):
        for t in range(n):
            total[i] += np.float64(cir[i, t].real) ** 2 + np.float64(cir[i, t].imag) ** 2
        for w in range(width if region[i] >= 0 else 0):
            t = lead + w - n if lead + w >= n else lead + w
            power = np.float64(cir[i, t].real) ** 2 + np.float64(cir[i, t].imag) ** 2
            window[i] += power
            moment[i] += w * power
    pick, frac, centre = np.zeros(k, np.int64), np.empty(k), np.empty(k)
    for i in range(k):
        for j in range(1, 3):
            if window[3 * i + j] > window[3 * i + pick[i]]:
                pick[i] = j
        best = 3 * i + pick[i]
        frac[i] = window[best] / max(total[best], 1e-300)
        centre[i] = moment[best] / max(window[best], 1e-300)
    return pick, frac, centre


@dataclass
class CheckedCandidates:
    """Result of :meth:`PreambleCheck.__call__` for K candidates.

    Attributes:
        passed: bool (K,): the candidate holds a preamble (score ≥ threshold).
        sc_start: int (K,): SC body start implied by the located LTS (buffer index) for passed candidates,
            the coarse start otherwise.
        score: float (K,): CIR energy fraction (0..1) in the channel window: of the chosen placement's region for
            candidates that reached the placement step, else of the wide span.
        cfo: float (K,): CFO estimate (subcarriers): the caller's fractional part (to 1/64) plus the best shift.
    """

    passed: np.ndarray
    sc_start: np.ndarray
    score: np.ndarray
    cfo: np.ndarray


class PreambleCheck:
    """Coherent LTS-region check of detection candidates for one numerology.

    Args:
        cfg: the numerology (N, cp, Gp, U).
        preamble: its preamble (known LTS values).
        max_shift: integer CFO search range, ± subcarriers.
        false_pass: probability (0..1) that a noise candidate passes.
    """

    def __init__(self, cfg: FrameConfig, preamble: Preamble, max_shift: int, false_pass: float):
        n, cp, gp, u = cfg.fft_size, cfg.cp_length, cfg.preamble_cp_length, cfg.num_used_subcarriers
        self.fft_size, self.cp, self.gp = n, cp, gp
        ext = n // 2
        self.offset = n + cp - ext               # span start relative to the SC body start
        self.length = gp + 2 * n - cp + 2 * ext  # span length (samples)
        self.max_shift = max_shift
        # CIR windows start every `block` taps and span `window_blocks` blocks (≥ cp + 1 taps): a channel that
        # fits the CP lies inside one of them, and noise is summed over few, fixed block boundaries
        self.block = max(1, 1 << ((cp + 1) // 4).bit_length() - 1)
        self.window_blocks = -(-(cp + 1) // self.block)
        self.width = self.block * self.window_blocks
        # row i of the table derotates a fractional CFO of i/L (i < L/2) or i/L - 1 (subcarriers, L levels)
        self._levels = (np.arange(_PHASE_LEVELS) + _PHASE_LEVELS // 2) % _PHASE_LEVELS / _PHASE_LEVELS - 0.5
        self._derotation = np.exp(-2j * np.pi / n * np.outer(self._levels, np.arange(n))).astype(np.complex64)
        self._ref = np.zeros(n, np.complex64)  # conj(LTS) on the used FFT bins (unit modulus), zero elsewhere
        self._ref[ResourceGrid(cfg).used_bins] = np.conj(preamble.lts_values)
        # union bounds over the hypotheses a score is the best of: shifts × windows (wide span), and × the 3
        # placements (ISI-free regions)
        hypotheses = n // self.block * (2 * max_shift + 1)
        noise = scipy.stats.beta(self.width * u / n, (n - self.width) * u / n)
        self.locate_threshold = float(noise.isf(_LOCATE_PASS / hypotheses))
        self.threshold = float(noise.isf(false_pass / (3 * hypotheses)))

    def __call__(self, buf: np.ndarray, starts: np.ndarray, cfo_frac: np.ndarray) -> CheckedCandidates:
        """Check K candidates.

        Args:
            buf: complex64 samples (M,); every candidate needs ``buf[start : start + needed()]`` (a placement
                whose region would start before the buffer is not considered).
            starts: int (K,): coarse SC body starts (buffer indices).
            cfo_frac: float (K,): fractional CFO of each candidate (subcarriers, |·| ≤ 0.5).
        """
        buf = np.ascontiguousarray(buf, np.complex64)
        starts = np.asarray(starts, np.int64)
        k = starts.size
        if k == 0:
            return CheckedCandidates(np.zeros(0, bool), starts, np.zeros(0), np.zeros(0))
        located, tap, cfo = self._locate(buf, starts, np.asarray(cfo_frac, np.float64))
        go_on = np.flatnonzero(located >= self.locate_threshold)
        passed, best, sc_start = np.zeros(k, bool), located, starts.copy()
        if go_on.size:
            passed[go_on], best[go_on], sc_start[go_on] = self._place(buf, starts[go_on], tap[go_on], cfo[go_on])
        return CheckedCandidates(passed, sc_start, best, cfo)

    def _place(self, buf: np.ndarray, starts: np.ndarray, tap: np.ndarray, cfo: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(passed (K,), score (K,), SC body start (K,)) of located candidates (coarse SC body starts (K,), CIR
        window start taps (K,) from the span start, CFOs (K,))."""
        n = self.fft_size
        # the three LTS starts ≡ span start + tap (mod N) within ± N of the coarse one; each one's ISI-free
        # region starts Gp - cp before it, so its channel window lies at taps Gp - cp .. Gp - cp + width
        span = starts + self.offset
        first = span + tap + n * np.rint((starts + n + self.gp - span - tap) / n).astype(np.int64)
        # the placement that collects the most channel energy (a normalised score would favour a region that
        # misses part of the LTS over one that holds it all plus strong interference, e.g. a frame behind it)
        pick, best, centre = best_placement(buf, first, cfo, self.gp + 2 * n - self.cp, self.gp - self.cp,
                                            self.width, self._derotation, self._levels, self._ref)
        passed = best >= self.threshold
        # the LTS start: the energy centre of the channel window (the window itself starts up to `width` taps
        # before the first path; the decoder's timing works best from a start at or just after the first path)
        lts1 = first + n * (pick - 1) + np.rint(centre).astype(np.int64)
        return passed, best, np.where(passed, lts1 - n - self.gp, starts)

    def needed(self) -> int:
        """Samples from a candidate's coarse SC body start that :meth:`__call__` reads (the last placement's
        region starts up to 2.5 N + cp after it)."""
        n = self.fft_size
        region = self.gp + 2 * n - self.cp
        return max(self.offset + -(-self.length // n) * n, 5 * n // 2 + self.cp + -(-region // n) * n)

    def _locate(self, buf: np.ndarray, starts: np.ndarray, cfo_frac: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(energy fraction (K,), window start tap (K,) modulo N from the span start, CFO (K,) in subcarriers)
        of the integer shift and CIR window (``width`` taps from a multiple of ``block``) with the largest
        energy fraction in the wide span."""
        spec, removed = folded_spectra(buf, starts + self.offset, self.length, cfo_frac, self._derotation,
                                       self._levels)
        frac, first_block, shift = best_window(spec, self._ref, self.max_shift, self.block, self.window_blocks)
        return frac, first_block * self.block, removed + shift
