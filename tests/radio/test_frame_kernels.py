"""The receiver's per-frame header and payload kernels (FFT windows, delay-spread CIR and kept taps, header soft
values, header fast decoder, known-symbol residuals, payload stage): each against a direct numpy formulation, its
compiled path against its plain Python one, and the receiver with every kernel's Python path against the compiled
receiver."""
import numpy as np
import pytest
import scipy.fft

import radio
from radio import channel_estimation, delay_spread, header_code, ofdm
from radio.channel_estimation import (apply_phase, equalize_payload, header_soft_values, known_symbol_residuals,
                                      mmse_equalize, pilot_agreement, track_phase)
from radio.jit import python_function

KERNELS = [(ofdm, "_demodulate"), (delay_spread, "_cir_power"), (delay_spread, "_kept_power"),
           (delay_spread, "rms_delay_spread"), (header_code, "_nearest_codewords"),
           (channel_estimation, "track_phase"), (channel_estimation, "apply_phase"),
           (channel_estimation, "pilot_agreement"), (channel_estimation, "mmse_equalize"),
           (channel_estimation, "header_soft_values"), (channel_estimation, "equalize_payload"),
           (channel_estimation, "known_symbol_residuals")]


def _cn(rng, *shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)


def _frame_arrays(preset: str, npay: int, seed: int):
    """A frame's header and payload symbols over a multipath channel with a residual phase line and clock
    drift, at ~15 dB: (grid, nh, yh (nh, U) c64, yp (npay, U) c64, h (U,) c64, pilots (nh + npay, P))."""
    cfg = radio.FrameConfig(preset=preset)
    rx = radio.Receiver(cfg)
    g, nh = rx.layout.grid, rx.layout.header.num_symbols
    rng = np.random.default_rng(seed)
    k = g.subcarriers
    h = (_cn(rng, 4) @ np.exp(-2j * np.pi * np.outer([0, 1, 3, 6], k) / cfg.fft_size)).astype(np.complex64)
    s = nh + npay
    x = _cn(rng, s, k.size)
    x[:, g.pilot_idx] = g.pilots(0, s)
    t = 2.0 + np.arange(s)
    rot = np.exp(1j * (0.03 * t[:, None] + 2e-5 * t[:, None] * k[None, :] + 0.4))
    y = (h * rot * x + 0.18 * _cn(rng, s, k.size)).astype(np.complex64)
    return g, nh, y[:nh], y[nh:], h, g.pilots(0, s)


@pytest.mark.parametrize("module, name", KERNELS)
def test_kernels_are_compiled_when_jit_is_on_and_the_plain_function_otherwise(module, name):
    fn = getattr(module, name)
    assert (python_function(fn) is not fn) == radio.jit.ENABLED


@pytest.mark.parametrize("preset", ["narrow", "wide-30.72"])
def test_demodulate_equals_the_fft_of_each_derotated_window(preset):
    cfg = radio.FrameConfig(preset=preset)
    g = ofdm.ResourceGrid(cfg)
    n, rng = cfg.fft_size, np.random.default_rng(1)
    samples = _cn(rng, 6 * n).astype(np.complex64)
    starts, cfo, dc, ref = np.array([3, n + 40, 4 * n]), 1.37, 0.2 - 0.1j, 50
    phase = np.exp(-2j * np.pi * cfo / n * (starts - ref))
    win = (samples[starts[:, None] + np.arange(n)] - dc) * np.exp(-2j * np.pi * cfo / n * np.arange(n))
    want = scipy.fft.fft(win, axis=1, norm="ortho")[:, g.used_bins] / g.scale * phase[:, None]
    got = g.demodulate(samples, starts, cfo, dc, phase_ref=ref)
    assert got.dtype == np.complex64
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * np.abs(want).max())
    np.testing.assert_allclose(g.demodulate(samples, starts, cfo, dc), want / phase[:, None], rtol=0,
                               atol=2e-6 * np.abs(want).max())  # no phase_ref: the caller's to apply
    args = (samples, starts, n, g.used_bins.size // 2, 1 / g.scale, cfo, np.complex64(dc), True, ref)
    np.testing.assert_allclose(python_function(ofdm._demodulate)(*args), ofdm._demodulate(*args),
                               rtol=0, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("preset", ["narrow", "wide-30.72"])
def test_cir_power_equals_the_tapered_inverse_fft(preset):
    cfg = radio.FrameConfig(preset=preset)
    g = ofdm.ResourceGrid(cfg)
    ds = delay_spread.DelaySpreadEstimator(g.subcarriers, cfg.fft_size, cfg.sample_rate_hz, cfg.preamble_cp_length)
    h = _cn(np.random.default_rng(2), g.subcarriers.size)
    band = np.arange(g.subcarriers.min(), g.subcarriers.max() + 1)
    full = np.interp(band, g.subcarriers, h.real) + 1j * np.interp(band, g.subcarriers, h.imag)  # DC: the mean
    spec = np.zeros(cfg.fft_size, complex)
    spec[band % cfg.fft_size] = full * ds._taper_pdp
    want = np.abs(np.fft.ifft(spec)[ds.delays]) ** 2
    p, floor = ds.impulse_response_power(h, 0.3)
    np.testing.assert_allclose(p, want, rtol=1e-9, atol=1e-12 * want.max())
    assert floor == pytest.approx(0.3 * np.sum(ds._taper_pdp ** 2) / cfg.fft_size ** 2)
    args = (h, ds._taper_extent, ds._pos, ds._hole, ds._hole_nb, ds._bins, ds.n, ds.delays)
    np.testing.assert_allclose(python_function(delay_spread._cir_power)(*args), delay_spread._cir_power(*args),
                               rtol=1e-12, atol=1e-15)
    floor = 0.02 * want.max()
    kept = np.where(want > max(3 * floor, 0.05 * want.max()), want - floor, 0.0)
    last = int(np.flatnonzero(kept)[-1])
    assert 0 < np.count_nonzero(kept) < kept.size
    tau = np.sqrt(np.sum(kept * ds.delays ** 2) / kept.sum() - (np.sum(kept * ds.delays) / kept.sum()) ** 2)
    for kept_power, rms in ((delay_spread._kept_power, delay_spread.rms_delay_spread),
                            (python_function(delay_spread._kept_power), python_function(delay_spread.rms_delay_spread))):
        got, got_last = kept_power(want, floor, 3.0, 0.05)
        np.testing.assert_allclose(got, kept, rtol=1e-9, atol=1e-12 * want.max())
        assert got_last == last
        assert rms(got, ds.delays.astype(float)) == pytest.approx(tau, rel=1e-9)


def _track_phase_reference(y, h, x, positions, times, max_beta):
    z = y * np.conj(h[None, :] * x)
    adj = (z[:, 1:] * np.conj(z[:, :-1])).sum(axis=1)
    raw = np.angle(adj) / np.mean(np.diff(positions))
    weight = np.abs(adj) * times ** 2
    beta = float(np.clip(np.sum(weight * raw / times) / np.sum(weight), -max_beta, max_beta))
    common = np.angle((z * np.exp(-1j * beta * np.outer(times, positions))).sum(axis=1))
    return np.stack([common, beta * times])


@pytest.mark.parametrize("preset", ["narrow", "wide-30.72"])
def test_payload_stage_equals_its_direct_formulation(preset):
    g, nh, yh, yp, h, pilots = _frame_arrays(preset, 5, 3)
    pidx, didx, k = g.pilot_idx, g.data_idx, g.subcarriers
    y = np.concatenate([yh, yp])
    times, max_beta = 2.0 + np.arange(y.shape[0]), 1e-3
    phase = _track_phase_reference(y[:, pidx], h[pidx], pilots, k[pidx], times, max_beta)
    assert 0.2 < phase[1, -1] / (2e-5 * times[-1]) < 5  # the planted drift is found, not clipped
    hp = h[None, :] * np.exp(1j * (phase[0, nh:, None] + phase[1, nh:, None] * k[None, :]))
    ref = np.concatenate([h[None, pidx] * pilots[:nh], hp[:, pidx] * pilots[nh:]])
    agreement = np.abs(np.sum(y[:, pidx] * np.conj(ref), axis=1)) / np.sqrt(
        np.sum(np.abs(y[:, pidx]) ** 2, axis=1) * np.sum(np.abs(ref) ** 2, axis=1))
    known = float(np.sum(np.abs(y[nh:, pidx] - ref[nh:]) ** 2))
    n_eff = (known + 7.0) / (ref[nh:].size + 300)
    hd = hp[:, didx]
    x_want = np.conj(hd) * yp[:, didx] / (np.abs(hd) ** 2 + n_eff)
    mse_want = n_eff / (np.abs(hd) ** 2 + n_eff)
    args = (yh, yp, h, pilots, pidx, didx, k, max_beta, 7.0, 300)
    for fn in (equalize_payload, python_function(equalize_payload)):
        x_hat, mse, agree, known_got = fn(*args)
        assert x_hat.dtype == np.complex64 and mse.dtype == np.float32
        np.testing.assert_allclose(x_hat, x_want, rtol=0, atol=1e-5 * np.abs(x_want).max())
        np.testing.assert_allclose(mse, mse_want, rtol=1e-5)
        np.testing.assert_allclose(agree, agreement, rtol=1e-6)
        assert known_got == pytest.approx(known, rel=1e-5)
    for fn in (track_phase, python_function(track_phase)):
        np.testing.assert_allclose(fn(y[:, pidx], h[pidx], pilots, k[pidx], times, max_beta), phase,
                                   rtol=0, atol=1e-9)
    for fn in (apply_phase, python_function(apply_phase)):
        got = fn(h, np.ascontiguousarray(phase[:, nh:]), k)
        assert got.dtype == np.complex64
        np.testing.assert_allclose(got, hp, rtol=0, atol=2e-6 * np.abs(hp).max())
    for fn in (pilot_agreement, python_function(pilot_agreement)):
        np.testing.assert_allclose(fn(y[:, pidx], ref), agreement, rtol=1e-6)
        assert fn(np.zeros((1, pidx.size), np.complex64), ref[:1])[0] == 0.0  # no pilots: no agreement, no NaN
    for fn in (mmse_equalize, python_function(mmse_equalize)):
        x_hat, mse = fn(yp[:, didx], hd.astype(np.complex64), np.float32(n_eff))
        assert x_hat.dtype == np.complex64 and mse.dtype == np.float32
        np.testing.assert_allclose(mse, mse_want, rtol=1e-5)


@pytest.mark.parametrize("preset", ["narrow", "wide-30.72"])
def test_header_soft_values_equal_the_periodogram_phase_line(preset):
    g, nh, yh, _, h, pilots = _frame_arrays(preset, 1, 4)
    pidx, didx = g.pilot_idx, g.data_idx
    slopes = 2 * np.pi * np.fft.fftfreq(64 * nh)
    z = (yh[:, pidx] * np.conj(h[pidx] * pilots[:nh])).sum(axis=1)
    power = np.abs(np.fft.fft(z, slopes.size)) ** 2
    best = int(np.argmax(power))
    t = np.arange(nh)
    line = slopes[best] * t + np.angle(np.sum(np.exp(-1j * slopes[best] * t) * z))
    soft = (np.conj(h[didx]) * yh[:, didx] * np.exp(-1j * line)[:, None]).real.reshape(-1)
    for fn in (header_soft_values, python_function(header_soft_values)):
        peak, energy, got = fn(yh, h, pilots[:nh], pidx, didx, slopes)
        assert peak == pytest.approx(power[best], rel=1e-9)
        assert energy == pytest.approx(float(np.sum(np.abs(h[pidx]) ** 2)), rel=1e-6)
        np.testing.assert_allclose(got, soft, rtol=0, atol=1e-5 * np.abs(soft).max())
    if nh > 1:  # the planted 0.03 rad/symbol line is what the periodogram finds (one bin is 2π/(64·nh))
        assert abs(slopes[best] - 0.03) <= np.pi / (64 * nh) + 0.01


def test_known_symbol_residuals_remove_each_symbols_common_phase():
    rng = np.random.default_rng(6)
    h = _cn(rng, 96).astype(np.complex64)
    x = np.exp(2j * np.pi * rng.random((8, 96)))
    y = (h * x * np.exp(1j * (0.4 + 0.3 * np.arange(8)))[:, None] + 0.1 * _cn(rng, 8, 96)).astype(np.complex64)
    phase = np.angle(np.sum(y * np.conj(x) * np.conj(h), axis=1))
    obs = y * np.conj(x) * np.exp(-1j * phase)[:, None]
    for fn in (known_symbol_residuals, python_function(known_symbol_residuals)):
        got, energy = fn(y, h, np.conj(x))
        np.testing.assert_allclose(got, obs.sum(axis=0), rtol=0, atol=1e-6 * np.abs(obs).max())
        assert energy == pytest.approx(float(np.sum(np.abs(obs - h) ** 2)), rel=1e-9)
        assert energy < 0.5 * float(np.sum(np.abs(y * np.conj(x) - h) ** 2))  # the planted phase line is removed


def test_header_fast_decoder_python_path_equals_the_compiled_one():
    code = header_code.PolarHeaderCode()
    rng = np.random.default_rng(5)
    info = rng.integers(0, 2, (12, 80)).astype(np.uint8)
    hard = code.encode(info)
    for b in range(12):  # 0, 3, .. 33 flipped bits: accepted up to FAST_PATH_MAX_FLIPS, then refused
        flip = rng.choice(640, 3 * b, replace=False)
        hard[b, flip] = 1 - hard[b, flip]
    args = (hard, code._cols, code._inv, code.generator)
    bits, ok = header_code._nearest_codewords(*args)
    bits_py, ok_py = python_function(header_code._nearest_codewords)(*args)
    np.testing.assert_array_equal(ok, ok_py)
    np.testing.assert_array_equal(bits, bits_py)
    assert ok[:2].all() and not ok.all()
    np.testing.assert_array_equal(bits[ok], info[ok])
    assert not bits[~ok].any()


def _stream(preset: str, seed: int) -> tuple[radio.FrameConfig, np.ndarray, list[np.ndarray]]:
    cfg = radio.FrameConfig(preset=preset)
    tx = radio.Transmitter(cfg)
    rng = np.random.default_rng(seed)
    sent, parts = [], [np.zeros(900, np.complex64)]
    for i, (snr, payload, cfo) in enumerate([(30, 300, 2.6), (15, 128, -1.4), (0, 40, 0.3), (8, 900, -2.9)]):
        s = _cn(rng, payload)
        sent.append(s)
        f = np.convolve(tx.modulate(s, frame_id=i), [0.9, 0, 0.3j, 0, 0, 0.2])
        f = f * np.exp(2j * np.pi * cfo * np.arange(f.size) / cfg.fft_size)
        sigma = np.sqrt(cfg.fft_size / cfg.num_used_subcarriers / 10 ** (snr / 10) / 2)
        parts += [f, np.zeros(1500)]
        parts[-2] = parts[-2] + sigma * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
    return cfg, np.concatenate(parts).astype(np.complex64), sent


def _receive(cfg, x):
    rx = radio.Receiver(cfg)
    frames = []
    for i in range(0, x.size, 20000):
        frames += rx.receive(x[i:i + 20000])
    return frames + rx.flush(), rx.stats


def test_receiver_with_every_kernels_python_path_equals_the_compiled_receiver(monkeypatch):
    cfg, x, sent = _stream("narrow", 6)
    frames, stats = _receive(cfg, x)
    assert [f.status for f in frames] == ["ok"] * 4
    for f, s in zip(frames, sent):  # the decoded symbols are the sent ones (MMSE shrinks them by ≤ 1/(1+N0))
        err = np.mean(np.abs(f.symbols - s) ** 2)
        assert err < 3 * np.mean(f.noise_var) + 0.02
    imported = [(radio.receiver, name) for name in ("equalize_payload", "header_soft_values", "pilot_agreement",
                                                    "known_symbol_residuals")]
    for module, name in KERNELS + imported:
        monkeypatch.setattr(module, name, python_function(getattr(module, name)))
    frames_py, stats_py = _receive(cfg, x)
    assert stats_py == stats
    assert len(frames_py) == len(frames)
    for a, b in zip(frames_py, frames):
        assert (a.start, a.status, a.header) == (b.start, b.status, b.header)
        assert a.snr_db == pytest.approx(b.snr_db, rel=1e-5)
        assert a.delay_spread_s == pytest.approx(b.delay_spread_s, rel=1e-6)
        np.testing.assert_allclose(a.symbols, b.symbols, rtol=0, atol=1e-4 * np.abs(b.symbols).max())
        np.testing.assert_allclose(a.noise_var, b.noise_var, rtol=1e-4)
