"""ZeroMQ virtual RF on 127.0.0.1: lossless, bit-exact, sample-count timing, relay, timeouts, processes."""
from __future__ import annotations

import multiprocessing as mp
import threading

import numpy as np
import pytest

from common import ConfigError
from radio.backends import BackendError, PeerTimeout, ZmqChannelRelay, ZmqRfBackend, ZmqRfConfig
from radio.feedback import free_tcp_endpoint


def _bursts(seed=0, sizes=(700, 1, 3000, 128)):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64) for n in sizes]


def _edge(endpoint, bursts, starts, errors, timeout_s=5.0):
    try:
        with ZmqRfBackend(ZmqRfConfig(tx_endpoint=endpoint, timeout_s=timeout_s)) as edge:
            for burst, start in zip(bursts, starts):
                edge.transmit(burst, at_sample=start)
    except Exception as exc:  # surfaced by the test
        errors.append(exc)


def _relay(up, down, fn, stop, errors):
    try:
        with ZmqChannelRelay(up, down, fn, timeout_s=5.0) as relay:
            relay.run(stop)
    except Exception as exc:
        errors.append(exc)


def _expected(bursts, starts):
    total = max(s + b.size for b, s in zip(bursts, starts))
    out = np.zeros(total, np.complex64)
    for b, s in zip(bursts, starts):
        out[s:s + b.size] = b
    return out


def test_direct_link_is_bit_exact_with_zero_filled_gaps():
    bursts, starts = _bursts(), [0, 1000, 1001, 6000]   # gaps of 300 and 1999 samples
    expected = _expected(bursts, starts)
    ep, errors = free_tcp_endpoint(), []
    t = threading.Thread(target=_edge, args=(ep, bursts, starts, errors))
    t.start()
    with ZmqRfBackend(ZmqRfConfig(rx_endpoint=ep, timeout_s=5.0)) as user:
        got = np.concatenate([user.receive(n) for n in (5, 995, 2048, expected.size - 3048)])
        assert user.rx_time_samples == expected.size
        assert user.counters["rx_gap_samples"] == 0
    t.join(10)
    assert not errors
    assert got.dtype == np.complex64
    assert got.tobytes() == expected.tobytes()


def test_relay_applies_the_channel_per_burst_deterministically():
    bursts, starts = _bursts(seed=4), [0, 700, 701, 4000]
    outputs = []
    for _ in range(2):
        up, down, errors, stop = free_tcp_endpoint(), free_tcp_endpoint(), [], threading.Event()
        sizes = []

        def channel(iq, sizes=sizes):          # per burst: a gain and a seeded phase, like a block-fading channel
            sizes.append(iq.size)
            phase = np.random.default_rng(len(sizes)).uniform(0, 2 * np.pi)
            return (0.5 * np.exp(1j * phase) * iq).astype(np.complex64)

        edge = threading.Thread(target=_edge, args=(up, bursts, starts, errors))
        relay = threading.Thread(target=_relay, args=(up, down, channel, stop, errors))
        edge.start()
        relay.start()
        with ZmqRfBackend(ZmqRfConfig(rx_endpoint=down, timeout_s=5.0)) as user:
            outputs.append(np.concatenate([user.receive(1000) for _ in range(4)] + [user.receive(128)]))
        stop.set()
        edge.join(10)
        relay.join(10)
        assert not errors
        assert sizes == [700, 1, 3000, 299, 128]   # bursts and gaps arrive whole, never split
    assert outputs[0].tobytes() == outputs[1].tobytes()
    expected = _expected(bursts, starts)
    np.testing.assert_allclose(np.abs(outputs[0]), 0.5 * np.abs(expected), rtol=1e-6)


def test_receiver_without_transmitter_times_out_clearly():
    with ZmqRfBackend(ZmqRfConfig(rx_endpoint=free_tcp_endpoint(), timeout_s=0.2)) as user:
        with pytest.raises(PeerTimeout, match="no samples"):
            user.receive(100)


def test_transmitter_without_receiver_times_out_and_drops_the_burst():
    ep = free_tcp_endpoint()
    with ZmqRfBackend(ZmqRfConfig(tx_endpoint=ep, timeout_s=0.2)) as edge:
        with pytest.raises(PeerTimeout, match="no receiver"):
            edge.transmit(np.ones(50, np.complex64))
        assert edge.counters["tx_dropped_samples"] == 50
        assert edge.tx_time_samples == 0          # the stream continues as if it had never been sent
        with pytest.raises(PeerTimeout):
            edge.transmit(np.ones(5, np.complex64), at_sample=10)
        with pytest.raises(BackendError, match="late"):   # time only moves forward
            edge.transmit(np.ones(5, np.complex64), at_sample=edge.tx_time_samples - 1)


def test_relay_reports_a_dead_transmitter():
    up, down = free_tcp_endpoint(), free_tcp_endpoint()
    errors = []
    user_result = []

    def user():
        try:
            with ZmqRfBackend(ZmqRfConfig(rx_endpoint=down, timeout_s=5.0)) as radio:
                radio.receive(10)
        except Exception as exc:
            user_result.append(exc)

    with ZmqChannelRelay(up, down, lambda iq: iq, timeout_s=0.2) as relay:
        t = threading.Thread(target=user)
        t.start()
        with pytest.raises(PeerTimeout):
            for _ in range(30):  # bounded: a request that never arrives fails the test instead of hanging it
                relay.serve_once(1.0)
    t.join(10)
    assert user_result and isinstance(user_result[0], PeerTimeout)
    assert not errors


def test_config_validation():
    with pytest.raises(ConfigError):
        ZmqRfConfig()
    with pytest.raises(ConfigError):
        ZmqRfConfig(tx_endpoint="localhost:2000")
    cfg = ZmqRfConfig(tx_endpoint="tcp://127.0.0.1:2000", rx_endpoint="tcp://127.0.0.1:2001")
    assert ZmqRfConfig.from_toml_str(cfg.to_toml_str()) == cfg


def _edge_process(endpoint, seed):
    bursts = _bursts(seed)
    with ZmqRfBackend(ZmqRfConfig(tx_endpoint=endpoint, timeout_s=10.0)) as edge:
        for burst in bursts:
            edge.transmit(burst)


def _channel_process(up, down):
    with ZmqChannelRelay(up, down, lambda iq: (iq * 2).astype(np.complex64), timeout_s=10.0) as relay:
        for _ in range(100):
            if not relay.serve_once(3.0):
                return


def test_three_processes_edge_channel_user():
    """The same code path as a bench run: edge, channel and user are separate processes."""
    up, down = free_tcp_endpoint(), free_tcp_endpoint()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_edge_process, args=(up, 7)), ctx.Process(target=_channel_process, args=(up, down))]
    for p in procs:
        p.start()
    try:
        expected = 2 * np.concatenate(_bursts(7))
        with ZmqRfBackend(ZmqRfConfig(rx_endpoint=down, timeout_s=30.0)) as user:
            got = user.receive(expected.size)
        assert got.tobytes() == expected.astype(np.complex64).tobytes()
    finally:
        for p in procs:
            p.join(15)
            if p.is_alive():
                p.terminate()
    assert procs[0].exitcode == 0
