"""The virtual-RF REP port under hostile requests: a malformed request does not stop the transmitting node,
and a well-formed request without the link's session token gets no samples (the burst stays for its peer)."""
from __future__ import annotations

import threading

import numpy as np
import zmq

from radio.backends import ZmqRfBackend, ZmqRfConfig
from radio.feedback import free_tcp_endpoint

BURST = (np.arange(5000) % 7 + 1j).astype(np.complex64)


def _transmit_in_thread(backend, burst, errors):
    def run():
        try:
            backend.transmit(burst)
        except Exception as exc:  # surfaced by the test
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
        header, samples = _rogue_request(ep, b"\x01\x02\x03")          # 3 bytes: malformed
        assert samples == b""
        header, samples = _rogue_request(ep, (10**6).to_bytes(8, "little"))  # well-formed, no token
        assert samples == b""
        header, samples = _rogue_request(ep, (10**6).to_bytes(8, "little") + b"guess")
        assert samples == b""
        with ZmqRfBackend(ZmqRfConfig(rx_endpoint=ep, timeout_s=5.0, session_token="s3cret")) as user:
            got = user.receive(BURST.size)
        t.join(10)
        assert not errors, errors
        assert got.tobytes() == BURST.tobytes()  # all of it went to the peer with the token
        assert edge.counters["tx_malformed_requests"] == 1 and edge.counters["tx_refused_requests"] == 2
