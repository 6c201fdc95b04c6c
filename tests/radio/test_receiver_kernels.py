"""The receiver's per-frame kernels against direct (slow, obvious) formulations, and every numba kernel's
compiled path against its plain Python one."""
import numpy as np
import pytest
import scipy.fft
import scipy.signal

import radio
from radio import sync
from radio.channel_estimation import ChannelEstimator
from radio.header_code import FAST_PATH_MAX_FLIPS, PolarHeaderCode
from radio.jit import python_function
from radio.ofdm import phase_ramp
from radio.snr_estimation import preamble_noise, signal_power


def _best_circular_window_reference(power: np.ndarray, window: int) -> tuple[int, int]:
    c = np.cumsum(np.concatenate([power, power[:, :window]], axis=1), axis=1)
    energy = c[:, window:] - c[:, :-window]
    row, t = np.unravel_index(int(np.argmax(energy)), energy.shape)
    return int(row), int(t)


def _timing_plateau_reference(power: np.ndarray, window: int) -> tuple[int, int, float]:
    c = np.concatenate([[0.0], np.cumsum(power)])
    energy = c[window:] - c[:-window]
    best = int(np.argmax(energy))
    off = np.flatnonzero(energy < 0.9 * energy[best])
    i = int(np.searchsorted(off, best))
    left = int(off[i - 1]) + 1 if i > 0 else 0
    right = int(off[i]) - 1 if i < off.size else energy.size - 1
    below = np.flatnonzero(energy[best:] < 0.5 * energy[best])
    first = best + int(below[0]) - 1 if below.size else energy.size - 1
    w = (left + right) // 2
    return w, first, float(energy[w])


@pytest.mark.parametrize("seed", range(4))
def test_best_circular_window_matches_cumsum_argmax(seed):
    rng = np.random.default_rng(seed)
    power = rng.exponential(size=(9, 128))
    power[seed % 9, (40 + 37 * seed) % 128] += 60.0  # one strong tap: its window wins, wrapping for some seeds
    taps = (np.sqrt(power) * np.exp(2j * np.pi * rng.random(power.shape))).astype(np.complex64)
    for window in (1, 17, 100):
        want = _best_circular_window_reference(np.abs(taps.astype(np.complex128)) ** 2, window)
        assert sync.best_circular_window(taps, window) == want
        assert python_function(sync.best_circular_window)(taps, window) == want


@pytest.mark.parametrize("seed", range(4))
def test_timing_plateau_matches_the_vectorised_rule(seed):
    rng = np.random.default_rng(seed)
    power = 0.01 * rng.exponential(size=300)
    power[120 + 10 * seed:126 + 10 * seed] += np.array([3.0, 0.2, 1.0, 0.1, 0.5, 0.05])  # a short multipath CIR
    for window in (17, 65):
        w, first, energy = _timing_plateau_reference(power, window)
        for fn in (sync.timing_plateau, python_function(sync.timing_plateau)):
            got = fn(power, window)
            assert got[:2] == (w, first)
            assert got[2] == pytest.approx(energy, rel=1e-12)


@pytest.mark.parametrize("length, start", [(0, 0), (1, 5), (2048, 0), (7777, -300)])
def test_phase_ramp_equals_the_direct_exponential(length, start):
    want = np.exp(-2j * np.pi * 0.37 / 512 * (start + np.arange(length)))
    np.testing.assert_allclose(phase_ramp(0.37, 512, length, start), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(python_function(phase_ramp)(0.37, 512, length, start), want, rtol=0, atol=1e-12)


def test_fine_timing_taps_equal_the_matched_filter_of_the_derotated_pair():
    cfg = radio.FrameConfig(preset="wide-7.68")
    rx = radio.Receiver(cfg)
    ft, n = rx._fine_timing, cfg.fft_size
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(4 * n + 2000) + 1j * rng.standard_normal(4 * n + 2000)).astype(np.complex64)
    lo, cfo = 300, 2.3
    seg = x.astype(np.complex128) * np.exp(-2j * np.pi * cfo / n * np.arange(x.size))
    pair = seg[lo:lo + ft.pair_length] + seg[lo + n:lo + n + ft.pair_length]
    want = scipy.signal.correlate(pair, rx.layout.preamble.lts_time, mode="valid", method="direct")
    got = ft.taps(x, lo, cfo) * np.exp(-2j * np.pi * cfo / n * lo)  # the taps' phase reference is lo
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())  # single-precision FFTs
    args = (x, lo, n, ft.pair_length, cfo, ft._template_spec)
    np.testing.assert_allclose(python_function(sync.summed_pair)(*args[:5]), sync.summed_pair(*args[:5]), rtol=1e-6)
    np.testing.assert_allclose(sync.summed_pair(*args[:5]) * np.exp(-2j * np.pi * cfo / n * lo), pair, rtol=0, atol=1e-5)
    np.testing.assert_allclose(python_function(sync.matched_filter)(*args), sync.matched_filter(*args),
                               rtol=0, atol=1e-5 * np.abs(want).max())
    w, first, energy, rx = sync.fine_timing(*args, ft.window)
    assert python_function(sync.fine_timing)(*args, ft.window)[:2] == (w, first)
    assert (w, first) == _timing_plateau_reference(np.abs(want) ** 2, ft.window + 1)[:2]
    assert rx == pytest.approx(float(np.sum(np.abs(x[lo + w:lo + w + ft.window + 2 * n]) ** 2)), rel=1e-6)


def test_residual_cfo_from_raw_samples_equals_it_after_derotation():
    n, cfo, true = 128, 1.2, 1.31
    rng = np.random.default_rng(2)
    lts = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    x = np.tile(lts, 3) * np.exp(2j * np.pi * true / n * np.arange(3 * n))
    assert sync.residual_cfo(x, 10, n, cfo) == pytest.approx(true - cfo, abs=1e-9)


def _delay_window_matrix(k: np.ndarray, n: int, delays: tuple[int, int]) -> np.ndarray:
    return np.exp(-2j * np.pi * np.outer(k, np.arange(*delays)) / n)


@pytest.mark.parametrize("preset, delays", [("narrow", (-4, 21)), ("narrow", (-3, 9))])
def test_lmmse_and_projection_equal_their_dense_definitions(preset, delays):
    """LMMSE ``R (R + ν I)⁻¹ h`` with R = F Fᴴ / W, and the projection, from the explicit U × W partial DFT F
    (narrow windows, where F has no numerically null directions, so the rank-W projection is unique;
    ``test_lmmse_equals_its_dense_definition_at_a_wide_window`` covers a wide one)."""
    cfg = radio.FrameConfig(preset=preset)
    k = radio.Receiver(cfg).layout.grid.subcarriers
    est = ChannelEstimator(k, cfg.fft_size)
    f = _delay_window_matrix(k, cfg.fft_size, delays)
    w = f.shape[1]
    rng = np.random.default_rng(3)
    h = f @ (rng.standard_normal(w) + 1j * rng.standard_normal(w)) + 0.3 * rng.standard_normal(k.size)
    coef = est.coefficients(h, delays)
    proj = f @ np.linalg.lstsq(f, h, rcond=None)[0]
    assert float(np.vdot(coef, coef).real) == pytest.approx(float(np.vdot(proj, proj).real), rel=1e-5)
    nu = 0.05
    r = f @ f.conj().T / w
    want = r @ np.linalg.solve(r + nu * np.eye(k.size), h)
    got, kept = est.filter(h, coef, "lmmse", delays, nu)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    a = r @ np.linalg.inv(r + nu * np.eye(k.size))
    assert kept == pytest.approx(float(np.sum(np.abs(a) ** 2)) / k.size, rel=1e-6)
    dft, kept_dft = est.filter(h, coef, "dft", delays, nu)
    np.testing.assert_allclose(dft, proj, rtol=0, atol=1e-5 * np.abs(proj).max())
    assert kept_dft == pytest.approx(w / k.size)


def test_lmmse_equals_its_dense_definition_at_a_wide_window():
    cfg = radio.FrameConfig(preset="wide-7.68")
    k, delays, nu = radio.Receiver(cfg).layout.grid.subcarriers, (-4, 229), 0.02
    est = ChannelEstimator(k, cfg.fft_size)
    f = _delay_window_matrix(k, cfg.fft_size, delays)
    h = f[:, 10] + 0.5 * f[:, 40] + 0.1 * np.random.default_rng(5).standard_normal(k.size)
    r = f @ f.conj().T / f.shape[1]
    want = r @ np.linalg.solve(r + nu * np.eye(k.size), h)
    got, _ = est.filter(h, est.coefficients(h, delays), "lmmse", delays, nu)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_noise_and_signal_from_coefficients_equal_the_projection_formulas():
    rng = np.random.default_rng(4)
    u, w = 96, 20
    q = np.linalg.qr(rng.standard_normal((u, w)) + 1j * rng.standard_normal((u, w)))[0]  # orthonormal basis
    h = q @ rng.standard_normal(w) + 0.1 * (rng.standard_normal(u) + 1j * rng.standard_normal(u))
    coef = q.conj().T @ h
    out = h - q @ coef
    noise, dof = preamble_noise(h, coef, w, 3.0)
    assert noise == pytest.approx(3.0 + 2 * float(np.vdot(out, out).real), rel=1e-9)
    assert dof == 2 * u - w
    assert signal_power(coef, u, w, 0.2) == pytest.approx(float(np.vdot(q @ coef, q @ coef).real) / u - 0.1 * w / u)


def test_integer_cfo_finds_a_planted_shift_and_tap():
    cfg = radio.FrameConfig(preset="narrow")
    rx = radio.Receiver(cfg)
    n, pre = cfg.fft_size, rx.layout.preamble
    x = np.tile(pre.lts_time, 3) * np.exp(2j * np.pi * 3 * np.arange(3 * n) / n)  # integer CFO of 3 subcarriers
    win = x[n - 20:2 * n - 20]  # the body starts 20 samples into the window, modulo N
    shift, tap = rx._integer_cfo(win)
    assert shift == 3
    assert (tap + 1) % n <= 20 <= (tap + cfg.cp_length + 1) % n  # the window after tap holds the path
    search = (rx._integer_cfo._ref, win, rx._integer_cfo.window)
    assert python_function(sync._cir_search)(*search) == sync._cir_search(*search) == (3 + 4, tap)


def test_delay_window_basis_drops_only_directions_without_channel_energy():
    """At wide-30.72's widest window most of the 900 taps' directions are numerically null: the basis keeps
    fewer (its rank), yet reproduces every channel of the window to float32 rounding."""
    cfg = radio.FrameConfig(preset="wide-30.72")
    k = radio.Receiver(cfg).layout.grid.subcarriers
    est, delays = ChannelEstimator(k, cfg.fft_size), (-4, 896)
    rank = est.rank(delays)
    assert 0.5 * (delays[1] - delays[0]) < rank < 0.7 * (delays[1] - delays[0])
    assert ChannelEstimator(k, cfg.fft_size, null_directions=True).rank(delays) == delays[1] - delays[0]
    rng = np.random.default_rng(6)
    f = _delay_window_matrix(k, cfg.fft_size, delays)
    for taps in (rng.standard_normal(f.shape[1]) + 1j * rng.standard_normal(f.shape[1]), np.eye(f.shape[1])[0]):
        h = f @ taps
        proj, _ = est.filter(h, est.coefficients(h, delays), "dft", delays, 0.0)
        assert float(np.linalg.norm(proj - h)) < 1e-5 * float(np.linalg.norm(h))


def _decode_fast_reference(code, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every information set on every block, the fewest flips taken."""
    hard = (llr > 0).astype(np.float32)
    u = np.einsum("bsk,skj->bsj", hard[:, code._cols], code._inv) % 2
    flips = np.abs(((u @ code.generator.astype(np.float32)) % 2) - hard[:, None, :]).sum(axis=2)
    best = np.argmin(flips, axis=1)
    rows = np.arange(llr.shape[0])
    return u[rows, best].astype(np.uint8), flips[rows, best] <= FAST_PATH_MAX_FLIPS


def test_header_fast_path_tries_sets_in_turn_as_the_all_sets_minimum():
    code = PolarHeaderCode()
    rng = np.random.default_rng(8)
    info = rng.integers(0, 2, (40, 80)).astype(np.uint8)
    llr = 4.0 * (2.0 * code.encode(info) - 1.0)
    for b, errors in enumerate(range(0, 40)):  # 0 .. 39 hard errors: clean, fast-path, refused blocks
        llr[b, rng.choice(640, errors, replace=False)] *= -1
    llr = np.concatenate([llr, rng.standard_normal((4, 640))]).astype(np.float32)  # and noise
    want_bits, want_ok = _decode_fast_reference(code, llr)
    bits, ok = code.decode_fast(llr)
    np.testing.assert_array_equal(ok, want_ok)
    assert 0 < ok.sum() < ok.size
    np.testing.assert_array_equal(bits[ok], want_bits[ok])
    np.testing.assert_array_equal(bits[ok], info[ok[:40].nonzero()[0]])


@pytest.mark.parametrize("order", ["C", "F"])
def test_real_matvec_compiled_and_python_paths_equal_the_complex_product(order):
    from radio.channel_estimation import _real_matvec
    rng = np.random.default_rng(5)
    m = np.asarray(rng.standard_normal((40, 12)), np.float32, order=order)
    z = (rng.standard_normal(12) + 1j * rng.standard_normal(12)).astype(np.complex64)
    want = m.astype(np.float64) @ z.astype(np.complex128)
    for fn in (_real_matvec, python_function(_real_matvec)):
        np.testing.assert_allclose(fn(m, z), want, rtol=1e-5, atol=1e-5)


def test_projection_and_lmmse_kernels_equal_their_direct_formulas_on_both_paths():
    from radio.channel_estimation import _lmmse, _project
    est = radio.Receiver(radio.FrameConfig(preset="narrow")).estimator
    lam, ramp, v_r = est._basis(-4, 21)
    rng = np.random.default_rng(6)
    h = (rng.standard_normal(ramp.size) + 1j * rng.standard_normal(ramp.size)).astype(np.complex64)
    v = ramp.astype(np.complex128)[:, None] * v_r  # the basis V (U, K)
    coef = np.conj(v).T @ h
    gain = lam / (lam + 0.3)
    for project, lmmse in ((_project, _lmmse), (python_function(_project), python_function(_lmmse))):
        np.testing.assert_allclose(project(v_r, ramp, h), coef, rtol=1e-5, atol=1e-5)
        got, kept = lmmse(v_r, lam, ramp, coef.astype(np.complex64), 0.3)
        np.testing.assert_allclose(got, v @ (gain * coef), rtol=1e-5, atol=1e-5)
        assert kept == pytest.approx(float(gain @ gain) / ramp.size)


def test_at_peak_counts_the_saturated_samples_on_both_paths():
    from radio.receiver import _at_peak
    seg = (np.random.default_rng(3).standard_normal(500) * (1 + 1j)).astype(np.complex64) * 0.3
    seg[[7, 50, 51]] = 1.0 + 0.2j  # |I| at the rail
    seg[90] = 0.1 - 1.0j           # |Q| at the rail
    assert _at_peak(seg) == python_function(_at_peak)(seg) == 4


@pytest.mark.skipif(not radio.jit.ENABLED, reason="kernels run uncompiled (no numba / rocket-fft, or DEKAG_NO_JIT)")
def test_the_first_receiver_of_a_process_runs_the_kernels_it_calls_before_any_stream():
    """A cold numba cache compiles for ~20 s: on a streaming link's first frames that stalls the peer into a
    timeout, so the first Receiver of a process runs them at construction. Checked in a fresh process."""
    import subprocess
    import sys
    called = {"sync": ["_cir_search", "fine_timing", "greedy_peaks", "summed_pair", "window_sums"],
              "preamble_detector": ["best_placement", "best_window", "folded_spectra"],
              "channel_estimation": ["_lmmse", "_project", "equalize_payload", "header_soft_values",
                                     "known_symbol_residuals"],
              "delay_spread": ["_kept_power", "rms_delay_spread"], "header_code": ["_nearest_codewords"],
              "ofdm": ["_demodulate", "phase_ramp"], "receiver": ["_at_peak"]}
    script = ("import importlib, radio\n"
              "radio.Receiver(radio.FrameConfig(preset='wide-7.68'))\n"
              f"called = {called!r}\n"
              "print(sorted(f'{m}.{k}' for m, ks in called.items() for k in ks\n"
              "             if not getattr(importlib.import_module('radio.' + m), k).signatures))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
