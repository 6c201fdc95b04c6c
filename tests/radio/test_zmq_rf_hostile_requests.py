"""The virtual-RF REP port under hostile requests: a malformed request does not stop the transmitting node,
and a well-formed request without the link's session token gets no samples (the burst stays for its peer)."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq

from radio.backends import PeerTimeout, ZmqRfBackend, ZmqRfConfig
from radio.backends.zmq_rf import SampleClient, SampleServer
from radio.feedback import free_tcp_endpoint

BURST = (np.arange(5000) % 7 + 1j).astype(np.complex64)


def _transmit_in_thread(backend, burst, errors):
    def run():
        try:
            backend.transmit(burst)
        except Exception as exc:  # noqa: BLE001 - any error in the thread is surfaced by the test
            errors.append(exc)
    t = threading.Thread(target=run)
    t.start()
    return t


def _rogue_request(endpoint, payload):
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.linger = 0
    sock.rcvtimeo = 3000
    sock.connect(endpoint)
    try:
        sock.send(payload)
        return sock.recv_multipart()
    finally:
        sock.close()


def test_malformed_and_tokenless_requests_neither_stop_the_edge_nor_take_the_burst():
    ep, errors = free_tcp_endpoint(), []
    with ZmqRfBackend(ZmqRfConfig(tx_endpoint=ep, timeout_s=5.0, session_token="s3cret")) as edge:
        t = _transmit_in_thread(edge, BURST, errors)
        _, samples = _rogue_request(ep, b"\x01\x02\x03")          # 3 bytes: malformed
        assert samples == b""
        _, samples = _rogue_request(ep, (10**6).to_bytes(8, "little"))  # well-formed, no token
        assert samples == b""
        _, samples = _rogue_request(ep, (10**6).to_bytes(8, "little") + b"guess")
        assert samples == b""
        with ZmqRfBackend(ZmqRfConfig(rx_endpoint=ep, timeout_s=5.0, session_token="s3cret")) as user:
            got = user.receive(BURST.size)
        t.join(10)
        assert not errors, errors
        assert got.tobytes() == BURST.tobytes()  # all of it went to the peer with the token
        assert edge.counters["tx_malformed_requests"] == 1 and edge.counters["tx_refused_requests"] == 2


def test_message_without_a_request_envelope_does_not_stall_the_server():
    """A DEALER (like raw bytes that parse as an old-protocol peer) sends no REQ envelope: the server drops
    it and still serves the real request (a REP socket blocked forever in recv here)."""
    ep = free_tcp_endpoint()
    server = SampleServer(ep, timeout_s=2.0)
    rogue = zmq.Context.instance().socket(zmq.DEALER)
    rogue.linger = 0
    rogue.connect(ep)
    rogue.send(b"no envelope")

    def until_dropped():
        while not server.malformed_requests:
            server.wait_request(0.1)
    waiter = threading.Thread(target=until_dropped, daemon=True)
    waiter.start()
    waiter.join(10)
    assert not waiter.is_alive() and server.malformed_requests == 1  # dropped, not stuck in a blocking read
    client = SampleClient(ep, timeout_s=5.0)
    server.queue(BURST)
    result = {}
    t = threading.Thread(target=lambda: result.update(got=client.receive(BURST.size)))
    t.start()
    server.flush(timeout_s=5.0)
    t.join(10)
    assert result["got"].tobytes() == BURST.tobytes()
    for s in (rogue, client, server):
        s.close()


def test_samples_whose_requester_left_stay_queued_for_the_next():
    ep = free_tcp_endpoint()
    server = SampleServer(ep, timeout_s=2.0)
    server.queue(BURST)
    leaver = zmq.Context.instance().socket(zmq.REQ)
    leaver.linger = 0
    leaver.connect(ep)
    leaver.send((10**6).to_bytes(8, "little"))
    wanted = server.wait_request(5.0)
    leaver.close()
    envelope, deadline = server._envelope, time.monotonic() + 10
    while server._send(envelope, BURST[:0]) and time.monotonic() < deadline:
        time.sleep(0.01)  # until the server's socket has seen the requester leave (empty replies cost nothing)
    assert server.reply(wanted) == 0 and server.pending == BURST.size
    client = SampleClient(ep, timeout_s=5.0)
    t = threading.Thread(target=lambda: server.flush(timeout_s=5.0))
    t.start()
    got = client.receive(BURST.size)
    t.join(10)
    assert got.tobytes() == BURST.tobytes()
    client.close()
    server.close()


def test_receiver_carries_on_when_the_transmitting_peer_restarts():
    """A restarted server numbers its stream from 0 again: the client's stream goes on (no error) and the
    restart is counted."""
    ep = free_tcp_endpoint()
    client = SampleClient(ep, timeout_s=5.0)
    got = []
    for incarnation in range(2):
        server = SampleServer(ep if incarnation == 0 else (ep2 := free_tcp_endpoint()), timeout_s=5.0)
        if incarnation:  # the restarted peer, on a fresh port (see the feedback restart test)
            client._sock.disconnect(ep)
            client._sock.connect(ep2)
        server.queue(BURST)
        t = threading.Thread(target=server.flush)
        t.start()
        got.append(client.receive(BURST.size))
        t.join(10)
        server.close()
    assert [g.tobytes() for g in got] == [BURST.tobytes()] * 2
    assert client.peer_restarts == 1 and client.next_sample_index == 2 * BURST.size
    client.close()


def test_late_reply_to_a_timed_out_request_is_data_not_lost():
    """The server answers a request only after the client gave up on it and asked again: the late reply's
    samples arrive (a REQ socket with REQ_CORRELATE dropped them, and the burst was lost)."""
    ep = free_tcp_endpoint()
    server, client = SampleServer(ep, timeout_s=5.0), SampleClient(ep, timeout_s=0.3)
    with pytest.raises(PeerTimeout):
        client.fetch(BURST.size)  # nothing queued yet: no answer
    server.queue(BURST)
    t = threading.Thread(target=server.flush)
    t.start()
    t.join(10)  # the burst went out as the answer to the first request
    got = client.receive(BURST.size)
    assert got.tobytes() == BURST.tobytes() and client.gap_samples == 0
    client.close()
    server.close()
