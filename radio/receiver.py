"""Streaming OFDM receiver: detection, synchronisation, channel/SNR/delay-spread estimation, decoding.

Per frame: Schmidl-Cox + LTS-pair candidate → coherent LTS-region check and placement (weak candidates,
:mod:`radio.preamble_detector`) → fractional CFO (LTS pair, ± 0.5) → integer CFO and timing
modulo N (CIR energy of one LTS window per shift) → fine timing and verification (matched filter on the LTS
pair) → residual CFO (LTS pair) → LS channel,
noise, delay window, SNR (candidates below ``min_snr_db`` are dropped as noise) and delay spread →
filtered channel (LMMSE/DFT) → header (pilot phase
tracking, polar SCL decoding, CRC) → payload (phase tracking over all symbols, MMSE).
See ``docs/frame_format.md``.
"""
from __future__ import annotations

import cmath
import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import scipy.special

from radio import sync
from radio.channel_estimation import (ChannelEstimator, equalize_payload, header_soft_values, known_symbol_residuals,
                                      ls_estimate, pilot_agreement)
from radio.config import FrameConfig, ReceiverConfig
from radio.delay_spread import DelaySpreadEstimator
from radio.errors import BadInputError
from radio.frame_layout import FrameLayout
from radio.header import FrameHeader
from radio.jit import njit
from radio.ofdm import phase_ramp
from radio.preamble_detector import CheckedCandidates, PreambleCheck
from radio.snr_estimation import preamble_noise, signal_power, snr_db

_LEAK = 4  # delay-window taps before the first path (leakage of fractional delays)
_PILOT_CHECK_SYMBOLS = 4  # payload symbols whose pilots are checked before waiting for a long payload
_HEADER_PILOT_ALPHA = 1e-3  # a noise candidate passes the header-pilot gate about this often
_PILOT_FAIL_PROB_MIN = 0.01  # a payload symbol of the frame fails the pilot check at least this often (model floor)
_PILOT_SPREAD_MARGIN = 1.5  # the header's 8 agreements understate the spread: widened by this
_PILOT_FAIL_ALPHA = 1e-3  # a frame is refused when its count of failing symbols is this unlikely
_NARROW_OCCUPANCY = 96 / 128  # used / FFT subcarriers of the preset ReceiverConfig.detection_threshold is set for
_SCALE_RANGE = (1e-12, 1e12)  # peak |sample| a buffer may have (float32 powers stay finite and normal)
_SURE_LAG_CORRELATION = 0.8  # an LTS pair at ≥ 6 dB; a start one N off reaches ≤ (Gp − cp/2)/N ≤ 0.66 (+ noise)
_SURE_FRACTION = 0.5  # and its matched filter holds at least this (see Receiver._verify)
_FULL_CP_WINDOW = 64  # CPs up to this many samples are always inside the channel filter's delay window
_CHECK_BATCH = 64  # weak detection candidates checked together (vectorised) before any of them is decoded
_STRONG = 8.0  # a candidate this many times the detection threshold is almost surely a preamble and is decoded
#                unchecked (a 0 dB one reads 15x at the narrow preset, the largest of 2e6 noise samples 5x)


_compiled_kernels_run = False  # whether a Receiver of this process has run the compiled kernels (_warm_up)


@njit
def _at_peak(seg: np.ndarray) -> int:
    """How many samples of the non-empty complex ``seg`` have |I| or |Q| at (within 1e-6 of) its peak."""
    mag = np.maximum(np.abs(seg.real), np.abs(seg.imag))
    return np.count_nonzero(mag >= mag.max() * (1 - 1e-6))


@dataclass
class ReceivedFrame:
    """One detected frame.

    Attributes:
        start: absolute stream index of the frame's first sample (first-path arrival).
        crc_ok: header CRC passed.
        status: "ok", "header_crc" (bad header: payload not decoded), "numerology_mismatch"
            (header from another numerology: not decoded), "bad_length" (announced payload longer
            than ``max_payload_symbols``, or payload symbols without the frame's pilots: a false header that
            passed its CRC; the frames behind it are still found) or "truncated" (stream ended, or a non-finite
            or out-of-range buffer broke it, inside the frame).
        header: decoded header (None unless the CRC passed).
        symbols: equalised payload, complex64 (payload_len,), MMSE estimates; None unless status "ok".
        noise_var: float32 (payload_len,): error variance E|ŝ − s|² of each symbol for unit-power
            symbols, ``N_eff / (|Ĥ|² + N_eff)`` with N_eff the measured pilot residual power
            (noise + channel-estimation error + ISI); None unless status "ok".
        snr_db: realised mean per-used-subcarrier Es/N0 (dB), data-aided.
        noise_power: N0 per resource element, in units where the channel gain is ``channel``.
        delay_spread_s: RMS delay spread estimate (s), always > 0: below the numerology's resolution
            floor (``Receiver.ds.resolution_s``, 0.5 / occupied bandwidth) it is the floor value.
        delay_spread_below_resolution: the channel's delay spread is below the resolution floor
            (``delay_spread_s`` then holds the floor, an upper bound).
        cfo_hz: carrier frequency offset (Hz).
        clipped: the frame's samples show ADC saturation.
        detection_metric: fraction of the LTS energy in the timing window (≈ SNR/(1+SNR)).
        channel: filtered channel estimate on the used subcarriers (U,), for the LTS FFT window.
        channel_ls: raw LS channel estimate (U,) (error variance noise_power / 2).
    """

    start: int
    crc_ok: bool
    status: str
    header: FrameHeader | None
    symbols: np.ndarray | None
    noise_var: np.ndarray | None
    snr_db: float
    noise_power: float
    delay_spread_s: float
    delay_spread_below_resolution: bool
    cfo_hz: float
    clipped: bool
    detection_metric: float
    channel: np.ndarray = field(repr=False)
    channel_ls: np.ndarray = field(repr=False)


@dataclass
class ReceiverStats:
    """Counters since construction or :meth:`Receiver.reset`."""

    buffers: int = 0
    samples: int = 0
    empty_buffers: int = 0
    bad_buffers: int = 0          # buffers with NaN/Inf: skipped whole, a frame cut by one is truncated
    candidates: int = 0           # detection candidates examined
    screened_candidates: int = 0  # detection candidates the coherent LTS check dropped before examination
    rejected_candidates: int = 0  # failed the matched-filter verification or the SNR gate
    unconfirmed_candidates: int = 0  # weak preamble (below report_threshold), header not decoded: not reported
    frames_found: int = 0         # verified preambles (every reported frame)
    frames_ok: int = 0
    header_crc_failures: int = 0
    numerology_mismatches: int = 0
    bad_lengths: int = 0          # announced payload longer than max_payload_symbols
    payload_pilot_mismatches: int = 0  # CRC-passing header whose payload symbols lack the frame's pilots
    out_of_range_buffers: int = 0  # peak magnitude outside the usable range (e.g. ×1e20, ×1e-30): skipped
    truncated_frames: int = 0     # stream ended (flush) or was broken (bad buffer) inside a frame
    clipped_frames: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Wait(Exception):
    """The candidate needs samples beyond the buffer end."""


class Receiver:
    """Streaming receiver for frames of one :class:`FrameConfig`.

    ``receive(iq)`` may be called with consecutive chunks of one stream: unconsumed samples
    (e.g. a frame cut at the buffer edge) are kept and completed by the next call; ``start`` of a
    frame counts samples from the first ``receive`` (or ``reset``). ``flush()`` ends the stream.

    Example:
        >>> import numpy as np, radio
        >>> cfg = radio.FrameConfig()
        >>> iq = radio.Transmitter(cfg).modulate(np.exp(1j * np.arange(50)), frame_id=3)
        >>> rx = radio.Receiver(cfg)
        >>> padded = np.concatenate([np.zeros(300), iq, np.zeros(300)])
        >>> [(f.header.frame_id, f.symbols.size) for f in rx.receive(padded)]
        [(3, 50)]
    """

    def __init__(self, cfg: FrameConfig | None = None, rx_cfg: ReceiverConfig | None = None):
        self.cfg = cfg or FrameConfig()
        self.rx_cfg = rx_cfg or ReceiverConfig()
        self.layout = FrameLayout(self.cfg)
        g = self.layout.grid
        self.estimator = ChannelEstimator(g.subcarriers, self.cfg.fft_size)
        # a channel longer than the CP outlasts every delay window: its window keeps all W directions (dropping
        # the null ones read its SNR up to 0.3 dB lower at 20 dB in the reduced estimator grids)
        self._isi_estimator = ChannelEstimator(g.subcarriers, self.cfg.fft_size, null_directions=True)
        self.ds = DelaySpreadEstimator(g.subcarriers, self.cfg.fft_size, self.cfg.sample_rate_hz,
                                       self.cfg.preamble_cp_length)
        self._min_snr = 10 ** (self.rx_cfg.min_snr_db / 10)
        # a preamble's detection metric is ≈ (ρ/(1+ρ))² with ρ = SNR·U/N the per-sample SNR: the threshold, set
        # for the narrow preset's occupancy, is scaled so it sits at the same SNR at every preset (noise stays
        # far below it at the wide presets, whose metric correlates 3-14× more samples: max 0.004 in 8·10⁶
        # noise samples at wide-30.72, where a −5 dB preamble reads ~0.024)
        occupancy = self.cfg.num_used_subcarriers / self.cfg.fft_size
        self._detection_threshold = self.rx_cfg.detection_threshold * min(1.0, (occupancy / _NARROW_OCCUPANCY) ** 2)
        self._check = PreambleCheck(self.cfg, self.layout.preamble, self.rx_cfg.max_cfo_subcarriers,
                                    self.rx_cfg.candidate_false_pass)
        self._integer_cfo = sync.IntegerCfo(self.layout.preamble, g.subcarriers, self.cfg.fft_size,
                                            self.rx_cfg.max_cfo_subcarriers, self.cfg.cp_length + 1)
        cp = self.cfg.cp_length
        self._fine_timing = sync.FineTiming(self.layout.preamble.lts_time, 2 * (cp + 2 * sync.DECIMATION), cp,
                                            self.layout.preamble.matched_filter_energy(cp))
        # per-numerology tables, built once instead of per frame
        n, sl, nh = self.cfg.fft_size, self.cfg.symbol_length, self.layout.header.num_symbols
        # FFT window starts of the two LTS and the header symbols, relative to the first LTS window
        self._lts_hdr_offsets = np.concatenate([[0, n], 2 * n + self.cfg.cp_length + sl * np.arange(nh)])
        self._xp_h = g.pilots(0, nh)
        self._pilot_gate = math.log(4 * nh / _HEADER_PILOT_ALPHA)  # see the header-pilot gate in _decode
        self._step_grid = 2 * np.pi * np.fft.fftfreq(64 * nh)  # header phase slopes searched (rad / symbol)
        # known header symbols (nh, U), conjugated, with the filler on every data RE; a decoded
        # header's BPSK values go to the flat positions of its coded bits (HeaderCoder.encode's map)
        hc = self.layout.header
        x_hdr = g.map(g.filler(hc.num_res).reshape(nh, -1), self._xp_h)
        self._x_hdr_conj = np.conj(x_hdr)
        pos = hc.positions
        self._hdr_bit_flat = (pos // g.num_data) * g.subcarriers.size + g.data_idx[pos % g.num_data]
        # phase slope per subcarrier per symbol at the largest expected sample-clock offset
        self._max_beta = (2 * np.pi * self.rx_cfg.max_clock_offset_ppm * 1e-6
                          * self.cfg.symbol_length / self.cfg.fft_size)
        self.reset()
        if not _compiled_kernels_run:
            self._warm_up()

    def _warm_up(self) -> None:
        """Run the compiled kernels once in this process, on a throwaway receiver of this numerology: a
        synthetic stream of a frame at ~10 dB in noise, and the coherent check on two positions. On a cold numba
        cache this is where they compile (~20 s), before the caller's stream starts, not on its first frames
        (a streaming peer waiting for samples would time out); cached, it costs ~0.5 s once per process.
        Kernels compile per argument types, not sizes, so one numerology warms them for every other."""
        global _compiled_kernels_run
        _compiled_kernels_run = True
        from radio.transmitter import Transmitter  # the receiver needs no transmitter otherwise

        rng = np.random.default_rng(0)
        frame = Transmitter(self.cfg).modulate(np.exp(2j * np.pi * rng.random(8)), frame_id=0)
        noise_len = 2 * self.layout.preamble.length
        x = np.concatenate([np.zeros(noise_len), frame, np.zeros(noise_len)])
        sigma = math.sqrt(self.cfg.fft_size / self.cfg.num_used_subcarriers / 10)  # ~10 dB per used subcarrier
        x = (x + sigma * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size)) / math.sqrt(2)).astype(
            np.complex64)
        rx = Receiver(self.cfg, self.rx_cfg)
        rx.receive(x, final=True)
        rx._check(x, np.array([0, noise_len]), np.zeros(2))  # weak candidates' path (strong frames skip it)

    # ------------------------------------------------------------------ stream handling
    def reset(self) -> None:
        """Forget buffered samples and counters; the next sample is stream index 0."""
        self._buf = np.zeros(0, np.complex64)
        self._buf_start = 0
        self._dc = 0.0
        # stream index before which no LTS pair may be accepted: the pair of a frame whose header was
        # not decoded is not searched for again (no frame is reported twice)
        self._lts_floor = 0
        self.stats = ReceiverStats()

    def flush(self) -> list[ReceivedFrame]:
        """End of stream: decode what the buffer still holds; a frame cut short is counted."""
        return self.receive(np.zeros(0, np.complex64), final=True)

    def receive(self, iq: np.ndarray, final: bool = False) -> list[ReceivedFrame]:
        """Process the next chunk of the stream.

        Args:
            iq: 1-D complex samples (any scale: raw ADC codes are fine).
            final: the stream ends with this chunk (same as calling :meth:`flush` after it).

        Returns:
            frames completed in this call, in stream order.

        Raises:
            BadInputError: ``iq`` is not a 1-D complex (or complex-convertible integer pair) array.
        """
        x = np.asarray(iq)
        if x.ndim != 1 or not (np.issubdtype(x.dtype, np.complexfloating) or x.size == 0):
            raise BadInputError(f"expected a 1-D complex array, got dtype {x.dtype} shape {x.shape}")
        self.stats.buffers += 1
        self.stats.samples += x.size
        if x.size == 0:
            self.stats.empty_buffers += not final
        elif not self._in_range(peak := self._peak(x)):
            if math.isfinite(peak):
                self.stats.out_of_range_buffers += 1
            else:
                self.stats.bad_buffers += 1
            # the stream is broken here: what the buffer holds ends as at a flush (a cut frame is truncated)
            frames, _ = self._process(final=True)
            self._buf_start += self._buf.size + x.size
            self._buf = np.zeros(0, np.complex64)
            return frames
        else:
            self._buf = np.concatenate([self._buf, x.astype(np.complex64, copy=False)])
        frames, keep_from = self._process(final)
        if final:
            keep_from = self._buf.size
        self._buf_start += keep_from
        self._buf = self._buf[keep_from:]
        return frames

    def _process(self, final: bool) -> tuple[list[ReceivedFrame], int]:
        cfg, buf = self.cfg, self._buf
        n, d = cfg.fft_size, sync.DECIMATION
        pre_len = self.layout.preamble.length
        frames: list[ReceivedFrame] = []
        metric, corr_lts = sync.detection_metric(buf, n, cfg.cp_length, cfg.preamble_cp_length)
        found = sync.candidates(metric, self._detection_threshold, pre_len // (2 * d))
        value = metric[found]
        strong = value >= _STRONG * self._detection_threshold
        starts = found * d
        # a candidate within a preamble length of a stronger strong one is on that preamble's metric shoulder or
        # a weaker echo of it (no other frame starts there: a frame is longer than its preamble)
        keep = ~self._shadowed(starts, value, strong, pre_len)
        starts, strong = starts[keep], strong[keep]
        cfo_frac = np.angle(corr_lts[found[keep]]) / (2 * np.pi)
        # every weak candidate checked in one vectorised call (each batch below takes its share); the few inside
        # a frame the loop then skips are checked for nothing, which costs less than a call per batch
        weak = np.flatnonzero(~strong)
        checkable = weak[starts[weak] + self._check.needed() <= buf.size]
        checked = self._check(buf, starts[checkable], cfo_frac[checkable])
        at = np.full(starts.size, -1)  # candidate -> its row of `checked` (-1: strong, or too near the end)
        at[checkable] = np.arange(checkable.size)
        pos, k = 0, 0
        while k < starts.size:
            # a coarse start up to N before a frame's end may belong to the next frame's preamble
            k += int(np.searchsorted(starts[k:], pos - n))
            if k == starts.size:
                break
            if strong[k]:  # decoded unchecked, as every candidate was before the check existed
                todo = [(int(starts[k]), float(cfo_frac[k]), True)]
                k += 1
            else:  # weak candidates up to the next strong one, checked together (vectorised)
                run = np.flatnonzero(strong[k:k + _CHECK_BATCH])
                stop = k + (int(run[0]) if run.size else _CHECK_BATCH)
                todo = self._screen(starts[k:stop], cfo_frac[k:stop], at[k:stop], checked)
                k = stop
            for p, cfo, ready in todo:
                if p < pos:
                    continue
                if not ready and not final:  # the coherent check needs samples beyond the buffer
                    return frames, max(p - 2 * cfg.cp_length - 2 * d, pos)
                try:
                    frame, end = self._decode(p, cfo, final)
                except _Wait:
                    return frames, max(p - 2 * cfg.cp_length - 2 * d, pos)
                if frame is not None:
                    frames.append(frame)
                    pos = end
        tail = pre_len + n + 4 * cfg.cp_length
        return frames, max(pos, buf.size - tail, 0)

    @staticmethod
    def _shadowed(starts: np.ndarray, value: np.ndarray, strong: np.ndarray, span: int) -> np.ndarray:
        """Whether each candidate (ascending ``starts`` (K,), metric ``value`` (K,)) has a strong candidate
        (``strong`` (K,) bool) of larger value less than ``span`` samples before or after it (the nearest strong
        one on each side is compared)."""
        shadowed = np.zeros(starts.size, bool)
        idx = np.flatnonzero(strong)
        if idx.size == 0:
            return shadowed
        after = np.searchsorted(starts[idx], starts, side="right")  # first strong one after each candidate
        for side in (idx[np.maximum(after - 1, 0)], idx[np.minimum(after, idx.size - 1)]):
            shadowed |= (np.abs(starts[side] - starts) < span) & (value[side] > value)
        return shadowed

    def _screen(self, starts: np.ndarray, cfo_frac: np.ndarray, at: np.ndarray, checked: CheckedCandidates
                ) -> list[tuple[int, float, bool]]:
        """Detection candidates (coarse SC body starts (K,), fractional CFOs (K,), their rows ``at`` (K,) of the
        coherent LTS-region check ``checked``, −1 for those too close to the buffer end to be checked) that pass
        the check, in stream order, as (SC body start placed by the check, fractional CFO, True); then the
        unchecked ones, as (coarse start, fractional CFO, False) (the caller waits for more samples, or at the
        stream's end hands them to the decoder unchecked). Two candidates placed on the same preamble are kept
        once (the better scored)."""
        ready = at >= 0
        rows = at[ready]
        self.stats.screened_candidates += int(np.count_nonzero(~checked.passed[rows]))
        ok = checked.passed[rows]
        kept: list[tuple[int, float, float]] = []
        for p, cfo, score in sorted(zip(checked.sc_start[rows[ok]].tolist(), cfo_frac[ready][ok].tolist(),
                                        checked.score[rows[ok]].tolist())):
            if kept and p - kept[-1][0] < self.cfg.fft_size // 2:
                if score > kept[-1][2]:
                    kept[-1] = (p, cfo, score)
                continue
            kept.append((p, cfo, score))
        return ([(p, cfo, True) for p, cfo, _ in kept]
                + [(int(p), float(c), False) for p, c in zip(starts[~ready], cfo_frac[~ready])])

    # ------------------------------------------------------------------ one frame
    def _windows(self, offsets: np.ndarray, cfo: float, ref: int) -> np.ndarray:
        """CFO-corrected used subcarriers (S, U) of FFT windows starting ``offsets`` (S,) samples
        after buffer index ``ref``."""
        return self.layout.grid.demodulate(self._buf, ref + offsets, cfo, self._dc, phase_ref=ref)

    def _verify(self, lts1: int) -> tuple[float, int, int, float, bool]:
        """CFO, fine timing and matched-filter fraction for a first LTS body starting near buffer index
        ``lts1``: (CFO (subcarriers), FFT window start w, first path (buffer indices), fraction, unambiguous).
        The CFO is measured at this timing, whatever the coarse one: fractional from the pair, integer from
        both copies summed (windows from cp/2 into the guard: no ISI from paths up to Gp - cp/2). Taking the
        integer part from the search that placed ``lts1`` instead lost 1 more frame in 1030 at −5…−4 dB
        (narrow, `bench/detection.py loss`): that search sees one copy, and a wrong shift there can still
        place the pair.
        Unambiguous: the two windows are one N-periodic signal (normalised lag-N correlation at least
        :data:`_SURE_LAG_CORRELATION`) and the matched filter holds at least :data:`_SURE_FRACTION`: no other
        start one N away can be the LTS pair."""
        buf, n, cp, d = self._buf, self.cfg.fft_size, self.cfg.cp_length, sync.DECIMATION
        s0 = lts1 - cp // 2
        a, b = buf[s0:s0 + n], buf[s0 + n:s0 + 2 * n]
        lag = complex(np.vdot(a, b))
        cfo_frac = sync.fractional_cfo(lag)
        cfo = cfo_frac + self._integer_cfo(sync.summed_pair(buf, s0, n, n, cfo_frac))[0]
        w, first, fraction = self._fine_timing(buf, lts1 - cp - 2 * d, cfo)
        periodic = abs(lag) ** 2 >= _SURE_LAG_CORRELATION ** 2 * float(np.vdot(a, a).real) * float(np.vdot(b, b).real)
        return cfo, w, first, fraction, periodic and fraction >= _SURE_FRACTION

    def _decode(self, p: int, cfo_frac: float, final: bool, skip: int | None = None
                ) -> tuple[ReceivedFrame | None, int]:
        cfg, rxc, lay = self.cfg, self.rx_cfg, self.layout
        buf, n, cp, gp = self._buf, cfg.fft_size, cfg.cp_length, cfg.preamble_cp_length
        d = sync.DECIMATION
        # integer CFO and timing from one N-sample window in the middle of the LTS's periodic part (guard and
        # both copies, Gp + 2N samples): it stays inside for a coarse timing p off by up to ±(Gp + N)/2, which
        # the detection metric's broad peak needs at low SNR (-5 dB: off by up to ~70 samples at N = 128)
        c0 = p + n + (gp + n) // 2
        if c0 + n > buf.size:
            if final:
                self.stats.truncated_frames += 1
                return None, 0
            raise _Wait
        win = buf[c0:c0 + n] * phase_ramp(cfo_frac, n, n, c0 - p)
        tap = self._integer_cfo(win)[1]
        # the CIR fixes the LTS body start modulo N: of the two starts around p's, the first copy is the one
        # whose matched filter (pair summed) collects the most energy (the other pairs one copy with the
        # header or with the SC symbol; at -5 dB comparing the two lag-N correlations picked wrong ~5 %).
        # The start nearer p's goes first, and an unambiguous one (see _verify) ends the search: it won in
        # every one of ~3500 decodes (4 presets, TDL-A..E, -6..40 dB) where both were verified, and spares
        # the second verification in most frames above ~6 dB
        expected = p + n + gp
        early = c0 + tap - n * (math.floor((c0 + tap - expected) / n) + 1)
        if early + 3 * n + 2 * cp + 2 * d + 1 > buf.size:
            if final:
                self.stats.truncated_frames += 1
                return None, 0
            raise _Wait
        verified = []  # (LTS start, CFO, w, first path, fraction, unambiguous)
        for s in sorted((s for s in (early, early + n) if s - 2 * cp - 2 * d >= 0 and s != skip),
                        key=lambda s: abs(s - expected)):
            verified.append((s, *self._verify(s)))
            if verified[-1][-1]:
                break
        lts1, cfo, w, first, fraction, _ = max(verified, key=lambda r: r[4], default=(0, 0.0, 0, 0, 0.0, False))
        if fraction < rxc.verify_threshold or self._buf_start + w < self._lts_floor:
            self.stats.candidates += 1
            self.stats.rejected_candidates += 1
            return None, 0
        cfo += sync.residual_cfo(buf, w, n, cfo)
        # DC offset (LO leakage, ADC offset): harmless at DC, but the CFO correction turns it into a
        # tone that leaks into every subcarrier. The two LTS copies differ only by the CFO rotation, so
        # r2 − r1·e^{j2πε} = d·(1 − e^{j2πε}): the DC offset d, measurable unless ε is near an integer
        # (then the tone falls on one subcarrier bin and leaks nowhere).
        rot = cmath.exp(2j * math.pi * cfo)
        self._dc = 0.0
        if abs(1 - rot) > 0.5:  # mean of r2 − r1·e^{j2πε}, from the two copies' sums
            sums = buf[w:w + 2 * n].reshape(2, n).sum(axis=1, dtype=np.complex128)
            self._dc = complex(sums[1] - sums[0] * rot) / n / (1 - rot)
        start_rel = first - lay.preamble.lts1_offset
        start = self._buf_start + start_rel

        # channel, noise, delay window, SNR, delay spread from the long training symbols
        g = lay.grid
        sl = cfg.symbol_length
        nh = lay.header.num_symbols
        first_sym = w + 2 * n + cp
        hdr_end = first_sym + nh * sl - cp
        # the LTS pair and, when it is in the buffer, the header: one batch of FFTs
        y = self._windows(self._lts_hdr_offsets[:2 + nh if hdr_end <= buf.size else 2], cfo, w)
        x_lts = lay.preamble.lts_values
        h_ls, diff_e = ls_estimate(y[0], y[1], x_lts)
        n0 = diff_e / h_ls.size
        extent = self.ds.extent(h_ls, n0 / 2)
        # delay window of the noise and SNR estimates: the CP, or the measured extent when longer. At the wide
        # presets (CP 224-896 samples, sized for every channel of the paper's range) the extent rounded up to a
        # quarter CP and capped at the CP: the window's basis (an U·W² SVD, seconds at U = 1200) stays as small
        # as the channel and at most five distinct windows are ever built (a noise candidate's "extent" is
        # often the guard)
        if cp <= _FULL_CP_WINDOW:
            delays = (-_LEAK, min(max(extent, cp) + _LEAK + 1, gp + 1))
        else:
            q = cp // 4
            delays = (-_LEAK, min(-(-(extent + _LEAK + 1) // q), -(-(cp + _LEAK + 1) // q)) * q)
        no_isi = extent <= cp + _LEAK
        est = self.estimator if no_isi else self._isi_estimator
        rank = est.rank(delays)
        coef = est.coefficients(h_ls, delays)
        noise_e, dof = preamble_noise(h_ls, coef, rank, diff_e)
        n0 = noise_e / dof
        sig = signal_power(coef, h_ls.size, rank, n0)
        if sig < self._min_snr * n0:
            # a candidate whose long training pair shows no signal this far below the header's decoding
            # threshold is noise: neither reported nor handed to the (costly) header list decoder
            self.stats.candidates += 1
            self.stats.rejected_candidates += 1
            return None, 0
        # the channel filter's window: at the wide presets the channel's own taps (see _channel_window), at narrow
        # ``delays`` (already the CP's few taps)
        if no_isi and cp > _FULL_CP_WINDOW:
            (ds_s, ds_below), support = self.ds.estimate_and_support(h_ls, n0 / 2)
            taps = self._channel_window(support, extent, delays)
        else:
            (ds_s, ds_below), taps = self.ds.estimate(h_ls, n0 / 2), delays
        coef_c = coef if taps == delays else est.coefficients(h_ls, taps)
        h, kept = est.filter(h_ls, coef_c, rxc.channel_estimator, taps, 0.5 * n0 / max(sig, 1e-12))
        cfo_hz = cfo * cfg.subcarrier_spacing_hz

        def report(status: str, header=None, symbols=None, noise_var=None, snr=None, end=None):
            frame = ReceivedFrame(start=start, crc_ok=header is not None, status=status, header=header,
                                  symbols=symbols, noise_var=noise_var,
                                  snr_db=snr_db(sig, n0) if snr is None else snr, noise_power=n0,
                                  delay_spread_s=ds_s, delay_spread_below_resolution=ds_below,
                                  cfo_hz=cfo_hz,
                                  clipped=self._clipped(max(start_rel, 0), end or w + 2 * n),
                                  detection_metric=fraction, channel=h, channel_ls=h_ls)
            self.stats.candidates += 1
            self.stats.frames_found += 1
            self.stats.clipped_frames += frame.clipped
            return frame

        # header
        if hdr_end > buf.size:
            if not final:
                raise _Wait
            if fraction < rxc.report_threshold:  # as for a failed header: a weak preamble may be noise
                self.stats.candidates += 1
                self.stats.unconfirmed_candidates += 1
                return None, buf.size
            self.stats.truncated_frames += 1
            return report("truncated"), buf.size
        yh = y[2:]
        # common phase of the header symbols: residual CFO makes it a line over symbols (the clock-drift
        # slope is negligible this close to the LTS); fitting two numbers to all header pilots, not one per
        # symbol to 16, keeps the phase noise small at low SNR (+1.5 dB for the header at -5 dB).
        # The periodogram of the pilot sums over phase slopes: its peak is the ML slope (at -5 dB the differential
        # angle(Σ z[t+1]·conj(z[t])) left 6 of 150 headers undecoded, this 2) and, normalised by
        # nh·N0·Σ_p|H_p|², the coherent pilot statistic: ≈ 1 + nh·Σ_p|H_p|²/N0 for a frame, and on noise
        # exceeded with probability ≈ 4·nh·e^{-x} (the max of a zero-padded periodogram; Monte Carlo fit)
        peak, pilot_energy, soft = header_soft_values(yh, h, self._xp_h, g.pilot_idx, g.data_idx, self._step_grid)
        if peak < self._pilot_gate * nh * diff_e / h_ls.size * pilot_energy:
            # the header's pilots are not there: noise, dropped before the costly list decoder (N0 from the LTS
            # difference alone, unbiased on noise)
            self.stats.candidates += 1
            self.stats.rejected_candidates += 1
            return None, 0
        bits = lay.header.decode(soft, n0)
        header = None if bits is None else FrameHeader.from_bits(bits)
        if header is None and skip is None and any(v[0] != lts1 and v[4] >= rxc.verify_threshold for v in verified):
            # the other verified LTS start (one N away: at the wide presets the guard, 0.875 N long, makes the
            # pair one N early nearly as periodic, and at low SNR its matched filter can hold more) is decoded
            # before this one is given up: its frame, if its header decodes
            retried = self._retry(p, cfo_frac, final, lts1)
            if retried is not None:
                return retried
        bad = ("header_crc" if header is None
               else "numerology_mismatch" if header.numerology_id != cfg.numerology_id
               else "bad_length" if header.payload_len > cfg.max_payload_symbols else None)
        def refuse(status: str, counter: str):
            # an undecoded header says nothing about where this "frame" ends (it may be a false
            # preamble in noise just before a real frame, even overlapping it): every later candidate
            # is still examined (end p + 1), but none may find this LTS pair again (either copy, over
            # a channel as long as the guard), so no frame is reported twice
            self._lts_floor = self._buf_start + w + n + gp
            setattr(self.stats, counter, getattr(self.stats, counter) + 1)
            return report(status, header=header, end=hdr_end), p + 1

        if header is None and fraction < rxc.report_threshold:
            # a weak preamble whose header did not decode: as likely noise as a lost frame (noise passes the
            # verification and the SNR gate a few times per 10⁷ samples), so not reported; its LTS pair
            # is still never examined again
            self._lts_floor = self._buf_start + w + n + gp
            self.stats.candidates += 1
            self.stats.unconfirmed_candidates += 1
            return None, p + 1
        if bad is not None:
            return refuse(bad, {"header_crc": "header_crc_failures", "numerology_mismatch": "numerology_mismatches",
                                "bad_length": "bad_lengths"}[bad])

        # the CRC-checked header is now a known signal: its residuals measure the noise, and when the
        # channel fits the CP (no ISI) it also refines the channel and signal power (2 + nh observations)
        x_conj = self._x_hdr_conj.copy()
        x_conj.reshape(-1)[self._hdr_bit_flat] = lay.header.bpsk(bits)  # real: its own conjugate
        # common phase per symbol from all its known REs; each of the nh observations ≈ H + noise of variance N0
        obs_sum, known_h = known_symbol_residuals(yh, h, x_conj)
        known_h /= 1 + 0.5 * kept  # N0 · count (h had error kept·N0/2)
        err = 0.5 * kept  # channel-estimation error variance / N0 of the channel used for the payload
        if no_isi:
            m = 2 + nh
            n0 = (noise_e + known_h) / (dof + yh.size)
            h_comb = (2 * h_ls + obs_sum) / m
            coef = self.estimator.coefficients(h_comb, taps)
            sig = signal_power(coef, h_comb.size, self.estimator.rank(taps), 2 * n0 / m)
            h, kept = self.estimator.filter(h_comb, coef, rxc.channel_estimator, taps, n0 / m / max(sig, 1e-12))
            err = kept / m

        # payload: its pilots confirm the announced length (a false header that passed its CRC must not
        # make the receiver skip, or wait for, the frames behind it) before the receiver commits to it
        npay = lay.payload_symbols(header.payload_len)
        end = hdr_end + npay * sl
        if end > buf.size:
            if final:
                self.stats.truncated_frames += 1
                return report("truncated", header=header), buf.size
            have = min((buf.size - hdr_end) // sl, npay)
            if have < min(_PILOT_CHECK_SYMBOLS, npay):
                raise _Wait
            yp = self._windows(self._lts_hdr_offsets[2] + sl * np.arange(nh, nh + have), cfo, w)
            y = np.concatenate([yh[:, g.pilot_idx], yp[:, g.pilot_idx]])
            # a few symbols: no clock drift yet
            if not self._payload_pilots_match(pilot_agreement(y, h[g.pilot_idx] * g.pilots(0, nh + have)), nh):
                return refuse("bad_length", "payload_pilot_mismatches")
            raise _Wait
        yp = self._windows(self._lts_hdr_offsets[2] + sl * np.arange(nh, nh + npay), cfo, w)
        # phase tracking, pilot agreement, effective noise (noise + channel-estimation error + ISI) from the
        # payload pilots and the header, MMSE
        xhat, mse, agreement, known_p = equalize_payload(
            yh, yp, h, g.pilots(0, nh + npay), g.pilot_idx, g.data_idx, g.subcarriers, self._max_beta,
            known_h * (1 + err), yh.size)
        if not self._payload_pilots_match(agreement, nh):
            return refuse("bad_length", "payload_pilot_mismatches")
        snr = None
        if no_isi:  # known residuals also measure N0
            n0 = (noise_e + known_h + known_p / (1 + err)) / (dof + yh.size + npay * g.pilot_idx.size)
            snr = snr_db(sig, n0)
        length = header.payload_len
        self.stats.frames_ok += 1
        return report("ok", header=header, symbols=xhat.reshape(-1)[:length],
                      noise_var=mse.reshape(-1)[:length], snr=snr, end=end), end

    def _retry(self, p: int, cfo_frac: float, final: bool, skip: int) -> tuple[ReceivedFrame, int] | None:
        """:meth:`_decode` of candidate ``p`` without LTS start ``skip``: its result when the header decoded
        (CRC passed), else None with the receiver's state (counters, LTS floor, DC offset) as before the try."""
        saved = (replace(self.stats), self._lts_floor, self._dc)
        try:
            frame, end = self._decode(p, cfo_frac, final, skip=skip)
        except _Wait:
            self.stats, self._lts_floor, self._dc = saved
            raise
        if frame is not None and frame.header is not None:
            return frame, end
        self.stats, self._lts_floor, self._dc = saved
        return None

    @staticmethod
    def _channel_window(support: tuple[int, int], extent: int, delays: tuple[int, int]) -> tuple[int, int]:
        """Delay window (first, last + 1) of the channel filter for a channel that fits the CP: from the first tap
        of its ``support`` (above the noise: :meth:`radio.delay_spread.DelaySpreadEstimator.estimate_and_support`)
        to the last one or its ``extent`` (the SNR window's, whichever is later), with ``_LEAK`` taps of margin on
        either side, the width rounded up to a power of two (few distinct bases), inside the SNR estimate's
        window ``delays``. At the wide presets the FFT window starts mid-CP, so a short channel sits ~cp/2 taps
        into ``delays``: its own window has a basis ~cp/(2·width) times smaller, and the products with it are
        memory-bound (1200 × 411 float32 for ``delays`` at wide-30.72). It keeps less noise. The end reaches
        ``extent`` (a lower threshold than the support's at low SNR) because a tail the filter misses reads as
        noise in the header residuals: ending at the support's last tap biased the SNR of 1–3 µs channels at
        0 dB by −0.15…−0.3 dB more."""
        onset, last = support
        if onset < 0:
            return delays
        first = max(onset - _LEAK, delays[0])
        width = 1 << (max(last, extent) + _LEAK - first).bit_length()  # ≥ last + _LEAK + 1 - first taps
        return delays if first + width >= delays[1] else (first, first + width)

    @staticmethod
    def _peak(x: np.ndarray) -> float:
        """Largest |I| or |Q| of the complex buffer ``x`` (one pass; NaN if any value is NaN, inf if any is
        infinite and none is NaN)."""
        return float(np.abs(np.ascontiguousarray(x).view(x.real.dtype)).max())

    @staticmethod
    def _in_range(peak: float) -> bool:
        """A buffer's :meth:`_peak` is zero or inside :data:`_SCALE_RANGE` (float32 powers neither overflow nor
        vanish); never for NaN or inf."""
        return peak == 0 or _SCALE_RANGE[0] <= peak <= _SCALE_RANGE[1]

    def _payload_pilots_match(self, agreement: np.ndarray, nh: int) -> bool:
        """Whether the payload symbols carry this frame's pilots, from the pilot agreement (:func:`pilot_agreement`,
        phase-blind, so common phase does not matter) of the nh header symbols and then the S payload symbols,
        ``agreement`` (nh + S,), each against the channel (the payload's phase-tracked when available): a payload
        symbol fails below half the mean of the header symbols' (same channel and SNR). False when the count of
        failing symbols is implausible (tail probability below :data:`_PILOT_FAIL_ALPHA`) for a frame whose
        symbols each fail as often as the header symbols' spread says: at low SNR a single symbol fails by
        chance, so a short payload is never refused on a vote of a few symbols, while a false length (most
        symbols noise) is refused after a handful of symbols."""
        header = agreement[:nh]
        level = float(header.sum()) / nh
        failing = int(np.count_nonzero(agreement[nh:] < 0.5 * level))
        if failing == 0:
            return True
        spread = _PILOT_SPREAD_MARGIN * float(header.std()) + 1e-6
        # a payload symbol of the frame falls below half the header level about as often as a Gaussian of the
        # header symbols' mean and spread does (~0.05 at -5 dB, ~0 at high SNR)
        # (scipy.special's ndtr and bdtrc are scipy.stats' norm.cdf and binom.sf without their ~0.1 ms of overhead)
        p_fail = float(np.clip(scipy.special.ndtr(-0.5 * level / spread), _PILOT_FAIL_PROB_MIN, 0.5))
        return float(scipy.special.bdtrc(failing - 1, agreement.size - nh, p_fail)) >= _PILOT_FAIL_ALPHA

    def _clipped(self, lo: int, hi: int) -> bool:
        """Saturation test on buffer[lo:hi]: many samples sitting exactly at the peak |I| or |Q|."""
        seg = self._buf[lo:hi]
        return seg.size > 0 and _at_peak(seg) > max(3, self.rx_cfg.clip_fraction * seg.size)
