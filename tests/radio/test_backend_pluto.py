"""Pluto backend against FakePluto (the real quirks), and the fake checked against the real adi.Pluto class."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from common import ConfigError
from radio.backends import BackendError, FakePluto, PeerTimeout, PlutoBackend, PlutoConfig, scale_for_dac

adi = pytest.importorskip("adi", reason="pyadi-iio (with libiio0) is needed to check the fake against it")
iio = pytest.importorskip("iio")


def _burst(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)
    return x.astype(np.complex64)


def _xcorr_peak(rx, ref):
    """Normalised cross-correlation magnitude peak of ``ref`` inside ``rx``."""
    c = np.abs(np.correlate(rx, ref, mode="valid"))
    return float(c.max() / (np.linalg.norm(ref) * np.sqrt(np.convolve(np.abs(rx) ** 2, np.ones(len(ref)), "valid")).max()))


# ----------------------------------------------------------------------------- the fake's quirks themselves

def test_fake_reproduces_pyadi_quirks():
    sdr = FakePluto()
    with pytest.raises(ValueError, match="521e3"):
        sdr.sample_rate = 400e3
    sdr.rx_hardwaregain_chan0 = 10            # not manual: silently ignored
    assert sdr.rx_hardwaregain_chan0 == 71.0
    sdr.gain_control_mode_chan0 = "manual"
    sdr.rx_hardwaregain_chan0 = 10
    assert sdr.rx_hardwaregain_chan0 == 10
    sdr.tx(np.full(64, 0.9 + 0.9j))           # unscaled floats: int16 cast makes them 0 codes
    assert not np.any(sdr._txbuf)
    sdr.tx_destroy_buffer()
    sdr.tx_cyclic_buffer = True
    sdr.tx(np.full(64, 1000 + 0j))
    with pytest.raises(Exception, match="cyclic"):
        sdr.tx(np.full(64, 1000 + 0j))
    with pytest.raises(Exception, match="destroyed"):
        sdr.tx_cyclic_buffer = False
    sdr.tx_destroy_buffer()
    sdr.tx_cyclic_buffer = False
    sdr.tx(np.full(64, 1000 + 0j))
    with pytest.raises(Exception, match="on the fly"):
        sdr.tx(np.full(32, 1000 + 0j))
    rx = sdr.rx()
    assert rx.dtype == np.complex128 and rx.size == 1024
    assert np.all(rx.real == np.round(rx.real))   # raw integer codes
    sdr.loopback = 1
    sdr.tx_destroy_buffer()
    sdr.tx(np.full(64, 40000.0 + 0j))             # beyond int16: wraps like numpy's cast
    assert sdr._txbuf.real.max() < 0


def test_fake_rx_saturates_at_12_bits():
    sdr = FakePluto(path_loss_db=-40.0)
    sdr.tx_cyclic_buffer = True
    sdr.tx(np.full(100, 30000 + 30000j))
    for _ in range(5):
        rx = sdr.rx()
    assert rx.real.max() == 2047 and rx.real.min() >= -2048


def test_fake_buffer_size_needs_destroy_and_timeout_needs_raising():
    sdr = FakePluto(timeout_ms=1000)
    sdr.sample_rate = 1e6
    assert sdr.rx().size == 1024
    sdr.rx_buffer_size = 1_500_000            # 1.5 s at 1 MS/s: longer than the 1 s timeout
    with pytest.raises(OSError):
        sdr.rx()
    sdr.ctx.set_timeout(2000)
    assert sdr.rx().size == 1_500_000


# ----------------------------------------------------------------------------- the backend on the fake

def test_backend_sets_manual_mode_before_gain_and_reads_it_back():
    sdr = FakePluto()
    with PlutoBackend(PlutoConfig(rx_gain_db=20.0, tx_gain_db=-12.25), device=sdr) as radio:
        assert sdr.gain_control_mode_chan0 == "manual"
        assert radio.gains == {"tx_gain_db": -12.25, "rx_gain_db": 20.0}
        radio.set_gains(rx_gain_db=35.0)
        assert radio.gains["rx_gain_db"] == 35.0
    assert sdr.closed


def test_backend_refuses_rate_below_device_limit_and_bad_configs():
    with pytest.raises(ConfigError):
        PlutoConfig(sample_rate_hz=400e3)
    with pytest.raises(ConfigError):
        PlutoConfig(tx_gain_db=3.0)
    cfg = PlutoConfig()
    object.__setattr__(cfg, "sample_rate_hz", 400e3)  # forced past the config check: the device itself refuses
    with pytest.raises(BackendError, match="521e3"):
        PlutoBackend(cfg, device=FakePluto())


@pytest.mark.parametrize("scaling", ["peak", "rms"])
def test_dac_scaling(scaling):
    x = _burst(4096)
    codes, clipped = scale_for_dac(x, PlutoConfig(tx_scaling=scaling, tx_rms_backoff_db=6.0))
    assert np.all(codes.real == np.round(codes.real))
    assert np.abs(codes.real).max() <= 32767 and np.abs(codes.imag).max() <= 32767
    if scaling == "peak":
        assert max(np.abs(codes.real).max(), np.abs(codes.imag).max()) == 2**14 and clipped == 0
    else:  # 6 dB back-off on Gaussian samples: some peaks beyond full scale are clipped and counted
        assert np.isclose(np.sqrt(np.mean(np.abs(x * codes[0] / x[0]) ** 2)), 2**15 / 10 ** 0.3, rtol=1e-3)
        # independently: samples whose I or Q lands beyond ±32767 at that scale (6 dB back-off on Gaussian: ~1 %)
        y = np.round(x * 2**15 / 10 ** 0.3 / np.sqrt(np.mean(np.abs(x) ** 2)))
        beyond = int(np.count_nonzero((np.abs(y.real) > 32767) | (np.abs(y.imag) > 32767)))
        assert clipped == beyond and 0.001 * x.size < beyond < 0.05 * x.size


def test_digital_loopback_returns_the_burst_exactly_scaled():
    x = _burst(500)
    with PlutoBackend(PlutoConfig(loopback=1), device=FakePluto(seed=3)) as radio:
        radio.transmit(x)
        rx = radio.receive(2000)
    codes, _ = scale_for_dac(x, PlutoConfig())
    expected = (np.round(codes / 16) / 2048).astype(np.complex64)   # 16-bit DAC codes → 12-bit ADC codes
    assert rx.dtype == np.complex64
    # the cyclic replay starts at an unknown phase p: rx[k] == expected[(p + k) % 500] exactly
    matches = [p for p in range(500) if np.array_equal(rx, np.resize(np.roll(expected, -p), 2000))]
    assert len(matches) == 1


def test_new_burst_is_never_mixed_with_stale_buffers():
    """After a TX update the first capture must only contain the new burst (flush), and without the
    flush the fake shows the stale/transient data, so the check can fail."""
    a, b = _burst(800, seed=1), _burst(800, seed=2)
    for flush, expect_clean in ((2, True), (0, False)):
        sdr = FakePluto(seed=5)
        with PlutoBackend(PlutoConfig(flush_buffers=flush, rx_gain_db=40.0), device=sdr) as radio:
            radio.transmit(a)
            radio.receive(4000)
            radio.transmit(b)
            rx = radio.receive(4000)
        clean = _xcorr_peak(rx, b) > 0.9 and _xcorr_peak(rx, a) < 0.3
        assert clean == expect_clean, (flush, _xcorr_peak(rx, a), _xcorr_peak(rx, b))


def test_cyclic_tx_is_destroyed_before_update_and_rx_resized_safely():
    sdr = FakePluto()
    with PlutoBackend(PlutoConfig(), device=sdr) as radio:
        radio.transmit(_burst(1000))
        radio.transmit(_burst(1500))          # different length and cyclic: needs destroy first
        assert sdr.tx_cyclic_buffer and sdr._tx_buffer_size == 1500
        assert radio.receive(3000).size == 3000
        assert radio.receive(5000).size == 5000
        assert sdr.rx_buffer_size == 5000
        assert radio.counters["bursts"] == 2


def test_long_capture_raises_libiio_timeout():
    sdr = FakePluto(timeout_ms=1000)
    with PlutoBackend(PlutoConfig(sample_rate_hz=1e6, min_timeout_s=1.0), device=sdr) as radio:
        radio.transmit(_burst(1000))
        assert radio.receive(1_500_000).size == 1_500_000   # 1.5 s at 1 MS/s
        assert sdr.ctx.timeout_ms >= 3_000


def test_timeout_error_is_a_peer_timeout():
    sdr = FakePluto()
    with PlutoBackend(PlutoConfig(sample_rate_hz=1e6), device=sdr) as radio:
        radio.receive(1_000_000)
        sdr.ctx.set_timeout(100)                # someone else lowered the timeout behind our back
        with pytest.raises(PeerTimeout, match="timed out"):
            radio.receive(1_000_000)


def test_overflow_and_underflow_are_counted_and_cleared():
    sdr = FakePluto()
    with PlutoBackend(PlutoConfig(cyclic_tx=False), device=sdr) as radio:
        radio.transmit(_burst(100))
        radio.receive(1000)                  # the one-shot burst plays out: DAC underflow
        assert radio.counters["tx_underflows"] == 1
        sdr.inject_overflow()
        radio.receive(1000)
        assert radio.counters["rx_overflows"] == 1
        assert sdr._rxadc.reg_read(0x80000088) == 0   # cleared by write-back
        radio.receive(1000)
        assert radio.counters["rx_overflows"] == 1


def test_bad_input_is_refused():
    with PlutoBackend(PlutoConfig(), device=FakePluto()) as radio:
        with pytest.raises(BackendError):
            radio.transmit(np.ones(10))                       # real
        with pytest.raises(BackendError):
            radio.transmit(np.array([1 + 1j, np.nan], np.complex64))
        with pytest.raises(BackendError):
            radio.receive(0)
    with pytest.raises(BackendError, match="closed"):
        radio.receive(10)


# ----------------------------------------------------------------------------- the fake cannot drift

class _Recorder:
    """Proxy that records every attribute the backend reads or writes on the device and its sub-objects."""

    def __init__(self, target, log, prefix=""):
        object.__setattr__(self, "_t", target)
        object.__setattr__(self, "_log", log)
        object.__setattr__(self, "_p", prefix)

    def __getattr__(self, name):
        self._log.add(("get", self._p + name))
        value = getattr(self._t, name)
        if name in ("ctx", "_rxadc", "_txdac"):
            return _Recorder(value, self._log, prefix=name + ".")
        return value

    def __setattr__(self, name, value):
        self._log.add(("set", self._p + name))
        setattr(self._t, name, value)


def test_every_device_attribute_the_backend_uses_exists_on_real_adi_pluto():
    log: set = set()
    device = _Recorder(FakePluto(), log)
    with PlutoBackend(PlutoConfig(cyclic_tx=True), device=device) as radio:
        radio.transmit(_burst(1000))
        radio.receive(3000)
        radio.tune(2.4e9)
        radio.set_gains(rx_gain_db=10.0, tx_gain_db=-20.0)
        radio.transmit(_burst(500))
        radio.receive(6000)
    owners = {"": adi.Pluto, "ctx.": iio.Context, "_rxadc.": iio.Device, "_txdac.": iio.Device}
    assert len(log) > 15
    for kind, dotted in sorted(log):
        prefix, _, name = dotted.rpartition(".")
        owner = owners[prefix + "." if prefix else ""]
        assert hasattr(owner, name), f"{owner.__name__} has no {name!r} (the fake has drifted)"
        attr = inspect.getattr_static(owner, name)
        if kind == "set" and prefix == "":
            assert isinstance(attr, property) and attr.fset is not None or name == "rx_buffer_size", name
        if prefix:   # methods called on libiio objects
            assert callable(attr), f"{owner.__name__}.{name} is not callable"
    # and the fake offers nothing under a real name that the real class lacks
    fake_only = {"channel", "path_loss_db", "noise_rms_codes", "transient_buffers", "inject_overflow", "closed",
                 "kernel_buffers_count"}
    for name in dir(FakePluto):
        if not name.startswith("_") and name not in fake_only:
            assert hasattr(adi.Pluto, name), f"FakePluto.{name} does not exist on adi.Pluto"


def test_the_real_pluto_setter_is_a_no_op_outside_manual_mode():
    """The quirk the fake reproduces, read from pyadi-iio's own source."""
    source = inspect.getsource(adi.Pluto.rx_hardwaregain_chan0.fset)
    assert 'gain_control_mode_chan0 == "manual"' in source
    assert "521e3" in inspect.getsource(adi.Pluto.sample_rate.fset)
