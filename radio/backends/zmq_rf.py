"""ZeroMQ virtual RF in the manner of srsRAN's ZMQ radio: sample streams over sockets instead of antennas.

Each direction of a link is one request/reply pair (REQ/REP's envelope, spoken by a ROUTER and a DEALER so
that neither hostile bytes nor a late reply can stall or lose anything). The side that *transmits* binds
(:class:`SampleServer`) and answers requests with the samples it has queued; the side that *receives*
connects (:class:`SampleClient`) and asks for at most N samples at a time. Because the
receiver's requests pace the transmitter, the pair runs lock-step as fast as the CPUs allow, loses
nothing, and the received stream is bit-identical to the transmitted one, run after run.

Wire format: request = ``<Q`` (most samples wanted) followed by the link's session token (bytes, may be
empty); reply = two frames, ``<QQ`` (index of the first sample in the stream, sample count) and the samples
as little-endian complex64. A server answers a malformed request, or one without its token, with no
samples and counts it (``malformed_requests``, ``refused_requests``): another local process can neither
stop a node nor take its samples (``dekag-testbed run`` draws a fresh token per run). Time is the sample
index: ``transmit(iq, at_sample=t)`` leaves a gap of zeros up to ``t``; a receiver that finds a jump in
the indices fills it with zeros and counts it; one whose peer restarted (indices going back) carries on
with its own index and counts the restart.

A channel emulator runs as its own process between two ports with :class:`ZmqChannelRelay`::

    edge  ZmqRfBackend(tx_endpoint="tcp://127.0.0.1:2000")    binds, serves TX samples
    chan  ZmqChannelRelay("tcp://127.0.0.1:2000", "tcp://127.0.0.1:2001", fn)
    user  ZmqRfBackend(rx_endpoint="tcp://127.0.0.1:2001")    connects, requests RX samples

The relay pulls one transmitted burst at a time (never splitting a burst below ``max_chunk_samples``),
applies ``fn(burst) -> received burst``, and serves the result. If a peer goes away, the waiting side
raises :class:`~radio.backends.base.PeerTimeout` after ``timeout_s``.
"""
from __future__ import annotations

import collections
import hmac
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import zmq

from common.tomlconfig import MAX_TIMEOUT_S, ConfigError, TomlConfig
from radio.backends.base import BackendError, PeerTimeout, RadioBackend, as_iq, check_num_samples

_REQUEST = struct.Struct("<Q")
_HEADER = struct.Struct("<QQ")
MAX_CHUNK_SAMPLES = 3_072_000
"""Largest reply, as srsRAN (10 subframes at 20 MHz); 24.6 MB of complex64."""
MAX_TOKEN_CHARS = 64
"""Longest session token."""


class SampleServer:
    """Hands out a queued sample stream on request (the transmitting side).

    The socket is a ROUTER that speaks REP's envelope itself, so that bytes which are not a REQ request
    (raw data on the port, a peer that left) can neither stall it nor receive a reply meant for another
    peer: a reply goes to the request's own sender (``ROUTER_MANDATORY``), and samples whose reply could
    not be delivered stay queued.

    Args:
        endpoint: address to bind.
        timeout_s: how long :meth:`flush` waits for a request before :class:`PeerTimeout`.
        token: session token a request must carry (empty: any well-formed request is served).
    """

    def __init__(self, endpoint: str, *, timeout_s: float = 2.0, max_chunk_samples: int = MAX_CHUNK_SAMPLES,
                 token: bytes = b"", context: zmq.Context | None = None) -> None:
        self._sock = (context or zmq.Context.instance()).socket(zmq.ROUTER)
        self._sock.linger = 0
        self._sock.sndtimeo = int(timeout_s * 1000)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a reply to a peer that left raises, not vanishes
        self._sock.bind(endpoint)
        self._envelope: list[bytes] | None = None  # routing frames of the request being answered
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.max_chunk_samples = max_chunk_samples
        self._queue: collections.deque[np.ndarray] = collections.deque()
        self.time_samples = 0       # stream index after the last queued sample
        self.sent_samples = 0       # stream index after the last sample handed out
        self.gap_samples = 0        # zeros inserted for at_sample gaps
        self.dropped_samples = 0    # queued samples dropped because nobody asked for them in time
        self.malformed_requests = 0  # requests that are not <Q + token> (answered with no samples)
        self.refused_requests = 0   # well-formed requests with the wrong session token (answered with none)
        self._token = token

    @property
    def pending(self) -> int:
        return self.time_samples - self.sent_samples

    def set_timeout(self, timeout_s: float) -> None:
        """Change how long :meth:`flush` and replies wait for the peer."""
        self.timeout_s = timeout_s
        self._sock.sndtimeo = int(timeout_s * 1000)

    def queue(self, iq: np.ndarray, at_sample: int | None = None) -> int:
        """Append a burst (starting at stream index ``at_sample``, zeros before it); returns its index."""
        iq = as_iq(iq)
        if at_sample is not None:
            if at_sample < self.time_samples:
                raise BackendError(f"burst at sample {at_sample} is late: the stream is already at {self.time_samples}")
            gap = at_sample - self.time_samples
            if gap:
                self._queue.append(np.zeros(gap, np.complex64))
                self.time_samples += gap
                self.gap_samples += gap
        start = self.time_samples
        self._queue.append(iq)
        self.time_samples += iq.size
        return start

    def wait_request(self, timeout_s: float) -> int | None:
        """Wait up to ``timeout_s`` for one valid request; returns the samples wanted, or None if none came.
        Messages that are not a request envelope are dropped; malformed requests and requests without the
        session token are answered with no samples; all are counted and waited past."""
        deadline = time.monotonic() + timeout_s
        while self._sock.poll(max(int((deadline - time.monotonic()) * 1000), 0), zmq.POLLIN):
            frames = self._sock.recv_multipart()
            # REQ's envelope: routing id, (request id,) empty delimiter, then exactly one body frame
            bottom = frames.index(b"", 1) if b"" in frames[1:] else None
            if bottom is None or len(frames) != bottom + 2:
                self.malformed_requests += 1
                continue
            envelope, msg = frames[:bottom + 1], frames[-1]
            if len(msg) < _REQUEST.size:
                self.malformed_requests += 1
            elif not hmac.compare_digest(msg[_REQUEST.size:], self._token):
                self.refused_requests += 1
            else:
                self._envelope = envelope
                return max(1, min(_REQUEST.unpack_from(msg)[0], self.max_chunk_samples))
            self._send(envelope, np.zeros(0, np.complex64))
        return None

    def _send(self, envelope: list[bytes], chunk: np.ndarray) -> bool:
        """Reply ``chunk`` to the request with ``envelope``; False if that peer is gone."""
        try:
            self._sock.send_multipart([*envelope, _HEADER.pack(self.sent_samples, chunk.size), chunk.tobytes()])
        except zmq.Again as exc:
            raise PeerTimeout(f"{self.endpoint}: could not reply within {self.timeout_s} s") from exc
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            return False
        return True

    def reply(self, wanted: int) -> int:
        """Answer the request just received with up to ``wanted`` samples of the head burst; returns how many
        were handed out (0 if the requesting peer has gone: the samples stay queued)."""
        envelope, self._envelope = self._envelope, None
        if envelope is None:
            raise BackendError(f"{self.endpoint}: reply() without a request")
        head = self._queue[0] if self._queue else np.zeros(0, np.complex64)
        chunk = head[:wanted]
        if not self._send(envelope, chunk):
            return 0
        if chunk.size:
            if chunk.size < head.size:
                self._queue[0] = head[chunk.size:]
            else:
                self._queue.popleft()
        self.sent_samples += chunk.size
        return chunk.size

    def flush(self, timeout_s: float | None = None) -> None:
        """Serve requests until everything queued has been handed out.

        Raises :class:`PeerTimeout` if no request arrives within ``timeout_s``; the samples not yet
        handed out are dropped (the stream continues as if they had never been queued).
        """
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        while self.pending:
            wanted = self.wait_request(timeout_s)
            if wanted is None:
                self.dropped_samples += self.pending
                self._queue.clear()
                self.time_samples = self.sent_samples
                raise PeerTimeout(f"{self.endpoint}: no receiver asked for samples within {timeout_s} s "
                                  "(is the channel/user process running?)")
            self.reply(wanted)

    def close(self) -> None:
        self._sock.close(linger=0)


class SampleClient:
    """Requests samples from a :class:`SampleServer` (the receiving side), with the server's session ``token``.

    The socket is a DEALER speaking REQ's envelope, so that no reply is ever dropped: a request that timed
    out stays outstanding and a new one is sent beside it; every reply that arrives is data at the stream
    index it names (a REQ socket would discard a late reply, whose samples the server had handed out)."""

    def __init__(self, endpoint: str, *, timeout_s: float = 2.0, token: bytes = b"",
                 context: zmq.Context | None = None) -> None:
        self._sock = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._sock.linger = 0
        self._sock.sndtimeo = self._sock.rcvtimeo = int(timeout_s * 1000)
        self._sock.connect(endpoint)
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.time_samples: int | None = None   # stream index of the next sample expected from the wire
        self.gap_samples = 0
        self._token = token
        self.peer_restarts = 0     # times the server's stream index went back (it restarted)
        self._offset = 0           # this client's stream index minus the server's (changes at a restart)
        self._outstanding = 0      # requests sent and not yet answered
        self._timed_out = False    # the last call timed out: ask again beside the outstanding request
        self._leftover = np.zeros(0, np.complex64)

    def set_timeout(self, timeout_s: float) -> None:
        """Change how long a request waits for the peer."""
        self.timeout_s = timeout_s
        self._sock.sndtimeo = self._sock.rcvtimeo = int(timeout_s * 1000)

    def fetch(self, max_samples: int) -> tuple[int, np.ndarray]:
        """One request: ``(stream index, samples)`` of at most ``max_samples`` (≥ 1) samples.

        The returned index is this client's own, monotonic: when the server restarts (its index goes back),
        the stream carries on and the restart is counted in ``peer_restarts``.
        A reply may answer an earlier request that timed out (its samples are as good). A jump forward in
        the stream index is filled with zeros (and counted in ``gap_samples``).
        """
        try:
            if not self._outstanding or self._timed_out:
                self._sock.send_multipart([b"", _REQUEST.pack(max_samples) + self._token])
                # after a timeout the earlier requests may never be answered (a restarted server): count only
                # this one; a late answer to one of them is data all the same
                self._outstanding = 1 if self._timed_out else self._outstanding + 1
            frames = self._sock.recv_multipart()
        except zmq.Again as exc:
            self._timed_out = True
            raise PeerTimeout(f"{self.endpoint}: no samples within {self.timeout_s} s "
                              "(is the transmitting/channel process running?)") from exc
        self._timed_out = False
        self._outstanding = max(self._outstanding - 1, 0)
        if len(frames) != 3 or frames[0] != b"":
            raise BackendError(f"{self.endpoint}: reply is not a (header, samples) pair")
        header, payload = frames[1:]
        if len(header) != _HEADER.size:
            raise BackendError(f"{self.endpoint}: malformed reply header of {len(header)} bytes")
        start, count = _HEADER.unpack(header)
        if len(payload) != 8 * count:
            raise BackendError(f"{self.endpoint}: reply announces {count} samples but carries {len(payload)} bytes")
        samples = np.frombuffer(payload, dtype="<c8").astype(np.complex64)
        if self.time_samples is None:
            self.time_samples = start
        server_next = self.time_samples - self._offset
        if start < server_next:  # the server restarted and numbers its stream from 0 again: carry on
            self.peer_restarts += 1
            self._offset = self.time_samples - start
            server_next = start
        gap = start - server_next
        if gap:
            self.gap_samples += gap
            samples = np.concatenate([np.zeros(gap, np.complex64), samples])
        first = self.time_samples
        self.time_samples += samples.size
        return first, samples

    def receive(self, num_samples: int) -> np.ndarray:
        """Exactly ``num_samples`` samples (several requests if needed; a surplus from a gap fill is kept).

        Raises :class:`PeerTimeout` when no sample arrives for ``timeout_s``.
        """
        parts, have = [self._leftover], self._leftover.size
        deadline = time.monotonic() + self.timeout_s
        while have < num_samples:
            _, chunk = self.fetch(num_samples - have)
            if chunk.size:
                deadline = time.monotonic() + self.timeout_s
            elif time.monotonic() > deadline:
                raise PeerTimeout(f"{self.endpoint}: no samples within {self.timeout_s} s")
            parts.append(chunk)
            have += chunk.size
        out = np.concatenate(parts)
        self._leftover = out[num_samples:]
        return out[:num_samples]

    @property
    def next_sample_index(self) -> int | None:
        """Stream index of the next sample :meth:`receive` returns (None before the first reply)."""
        return None if self.time_samples is None else self.time_samples - self._leftover.size

    def close(self) -> None:
        self._sock.close(linger=0)


@dataclass
class ZmqRfConfig(TomlConfig):
    """One node's virtual radio.

    Attributes:
        tx_endpoint: where this node serves its TX samples (binds); empty = no TX.
        rx_endpoint: where this node requests its RX samples (connects); empty = no RX.
        sample_rate_hz, center_frequency_hz: recorded as the radio's settings (no effect on samples).
        timeout_s: how long to wait for the peer before :class:`PeerTimeout`.
        max_chunk_samples: largest message.
        session_token: shared by the two ends of a link; requests without it get no samples (empty: no check).
    """

    tx_endpoint: str = ""
    rx_endpoint: str = ""
    sample_rate_hz: float = 3.84e6
    center_frequency_hz: float = 915e6
    timeout_s: float = 2.0
    max_chunk_samples: int = MAX_CHUNK_SAMPLES
    session_token: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("tx_endpoint", "rx_endpoint"):
            value = getattr(self, name)
            if value and not value.startswith(("tcp://", "ipc://", "inproc://")):
                raise ConfigError(f"{name} must be a ZeroMQ address (tcp://, ipc://, inproc://), got {value!r}")
        if not self.tx_endpoint and not self.rx_endpoint:
            raise ConfigError("a ZMQ radio needs a tx_endpoint, an rx_endpoint or both")
        self.check_range("sample_rate_hz", 0.0, 1e10, open_low=True)
        self.check_range("timeout_s", 0.0, MAX_TIMEOUT_S, open_low=True)
        self.check_range("max_chunk_samples", 1, MAX_CHUNK_SAMPLES)
        if len(self.session_token) > MAX_TOKEN_CHARS:
            raise ConfigError(f"ZmqRfConfig.session_token must be at most {MAX_TOKEN_CHARS} characters")


class ZmqRfBackend(RadioBackend):
    """A node's radio over ZeroMQ: ``transmit`` serves bursts on ``tx_endpoint`` (blocking until a
    receiver has taken them all), ``receive`` requests samples from ``rx_endpoint``."""

    device = "zmq"

    def __init__(self, cfg: ZmqRfConfig, *, context: zmq.Context | None = None) -> None:
        self.cfg = cfg
        token = cfg.session_token.encode()
        self._tx = SampleServer(cfg.tx_endpoint, timeout_s=cfg.timeout_s, max_chunk_samples=cfg.max_chunk_samples,
                                token=token, context=context) if cfg.tx_endpoint else None
        self._rx = SampleClient(cfg.rx_endpoint, timeout_s=cfg.timeout_s, token=token,
                                context=context) if cfg.rx_endpoint else None

    @property
    def sample_rate_hz(self) -> float:
        return self.cfg.sample_rate_hz

    @property
    def center_frequency_hz(self) -> float:
        return self.cfg.center_frequency_hz

    @property
    def tx_time_samples(self) -> int:
        """Stream index after the last transmitted sample."""
        return self._tx.time_samples if self._tx else 0

    @property
    def rx_time_samples(self) -> int | None:
        """Stream index of the next sample :meth:`receive` returns (None before the first)."""
        return self._rx.next_sample_index if self._rx else None

    def set_timeout(self, timeout_s: float) -> None:
        """Change how long transmit/receive wait for the peer (e.g. long at start-up, short once running)."""
        for end in (self._tx, self._rx):
            if end is not None:
                end.set_timeout(timeout_s)

    def transmit(self, iq: np.ndarray, at_sample: int | None = None) -> None:
        """Send a burst at stream index ``at_sample`` (default: right after the previous one)."""
        if self._tx is None:
            raise BackendError("this ZMQ radio has no tx_endpoint")
        self._tx.queue(iq, at_sample)
        self._tx.flush()

    def receive(self, num_samples: int) -> np.ndarray:
        if self._rx is None:
            raise BackendError("this ZMQ radio has no rx_endpoint")
        return self._rx.receive(check_num_samples(num_samples))

    @property
    def counters(self) -> dict[str, int]:
        out = {}
        if self._tx:
            out.update(tx_samples=self._tx.sent_samples, tx_gap_samples=self._tx.gap_samples,
                       tx_dropped_samples=self._tx.dropped_samples, tx_malformed_requests=self._tx.malformed_requests,
                       tx_refused_requests=self._tx.refused_requests)
        if self._rx:
            out.update(rx_gap_samples=self._rx.gap_samples, rx_peer_restarts=self._rx.peer_restarts)
        return out

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "tx_endpoint": self.cfg.tx_endpoint, "rx_endpoint": self.cfg.rx_endpoint}

    def close(self) -> None:
        for end in (self._tx, self._rx):
            if end is not None:
                end.close()


class ZmqChannelRelay:
    """The channel node's plumbing: pull TX bursts from ``upstream``, apply ``fn``, serve on ``downstream``.

    Args:
        upstream: the transmitter's ``tx_endpoint`` (connects).
        downstream: the address the receiver's ``rx_endpoint`` points at (binds).
        fn: maps one transmitted burst (complex64, (N,)) to the received samples (complex64, (M,)).
        timeout_s: how long to wait for the transmitter once a receiver asked.
        token: the link's session token (sent upstream, required downstream).
    """

    def __init__(self, upstream: str, downstream: str, fn: Callable[[np.ndarray], np.ndarray], *,
                 timeout_s: float = 2.0, max_chunk_samples: int = MAX_CHUNK_SAMPLES, token: bytes = b"",
                 context: zmq.Context | None = None) -> None:
        self.fn = fn
        self.timeout_s = timeout_s
        self.max_chunk_samples = max_chunk_samples
        self._up = SampleClient(upstream, timeout_s=timeout_s, token=token, context=context)
        self._down = SampleServer(downstream, timeout_s=timeout_s, max_chunk_samples=max_chunk_samples,
                                  token=token, context=context)
        self.bursts = 0

    def serve_once(self, timeout_s: float | None = None) -> bool:
        """Answer one receiver request (pulling and converting a burst if none is pending).

        Returns False if no request came within ``timeout_s``; raises :class:`PeerTimeout` if the
        transmitter does not answer.
        """
        wanted = self._down.wait_request(self.timeout_s if timeout_s is None else timeout_s)
        if wanted is None:
            return False
        if not self._down.pending:
            try:
                _, burst = self._up.fetch(self.max_chunk_samples)
            except PeerTimeout:
                self._down.reply(0)     # let the receiver's REQ go on; it will ask again
                raise
            out = np.asarray(self.fn(burst))
            if out.ndim != 1 or not np.iscomplexobj(out):
                raise BackendError(f"channel function must return a 1-D complex array, got {out.dtype} {out.shape}")
            if out.size:
                self._down.queue(out.astype(np.complex64, copy=False))
            self.bursts += 1
        self._down.reply(wanted)
        return True

    def run(self, stop: threading.Event | None = None, idle_timeout_s: float | None = None,
            startup_timeout_s: float | None = None) -> None:
        """Serve until ``stop`` is set; :class:`PeerTimeout` if no receiver asks for ``idle_timeout_s``.

        Before the first burst, peers that are not up yet are waited for up to ``startup_timeout_s``
        (a transmitter that does not answer is asked again instead of ending the run)."""
        start = last = time.monotonic()
        while stop is None or not stop.is_set():
            try:
                served = self.serve_once(0.05)
            except PeerTimeout:
                if self.bursts or startup_timeout_s is None or time.monotonic() - start > startup_timeout_s:
                    raise
                continue
            now = time.monotonic()
            limit = idle_timeout_s if self.bursts or startup_timeout_s is None else startup_timeout_s
            if served:
                last = now
            elif limit is not None and now - last > limit:
                raise PeerTimeout(f"{self._down.endpoint}: no receiver asked for samples for {limit} s")

    @property
    def counters(self) -> dict[str, int]:
        return {"bursts": self.bursts, "samples_in": self._up.time_samples or 0,
                "samples_out": self._down.sent_samples, "upstream_gap_samples": self._up.gap_samples,
                "upstream_restarts": self._up.peer_restarts,
                "malformed_requests": self._down.malformed_requests, "refused_requests": self._down.refused_requests}

    def close(self) -> None:
        self._up.close()
        self._down.close()

    def __enter__(self) -> ZmqChannelRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
