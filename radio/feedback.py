"""CSI feedback over ZeroMQ: the user publishes its channel estimate, the edge keeps the latest one.

The user side owns a :class:`CsiPublisher` (a PUB socket that binds), the edge side a
:class:`CsiSubscriber` (a SUB socket with ``CONFLATE`` set before ``connect``, so only the newest
message is queued). Every message is one msgpack array (:func:`encode_report`), validated on receipt
(:func:`decode_report` raises :class:`MalformedReport`). The edge asks :meth:`CsiSubscriber.condition`
for the channel condition its encoder should use and is told where it came from:

>>> from radio.feedback import Condition, CsiPublisher, CsiSubscriber, free_tcp_endpoint
>>> ep = free_tcp_endpoint()
>>> with CsiPublisher(ep) as pub, CsiSubscriber(ep, max_age_s=1.0,
...                                            fallback=Condition(10.0, 100e-9)) as sub:
...     sub.condition().source                          # nothing received yet
...     report = pub.publish_until_received(sub, frame_id=7, snr_db=13.5, delay_spread_s=250e-9)
...     result = sub.condition()
...     (result.source, result.condition.snr_db, result.frame_id)
'fallback'
('feedback', 13.5, 7)

Ages use the edge's own ``time.monotonic()`` at receipt, so they are meaningful across two hosts;
``timestamp_s`` in the report is the publisher's monotonic clock (comparable only on one host, used
by ``bench/feedback_latency.py`` for the one-way latency).

A publisher restarted mid-run (possibly on another host, with another monotonic clock) starts a new
``session_id``. Which reports are accepted — ordering, replays, implausible sequence or timestamp
jumps, and when a new session takes over — is decided by :class:`radio.feedback_gate.SessionGate`;
no report can lock the edge out of its feedback for longer than ``max_age_s`` or a few consistent
reports. Messages larger than :data:`MAX_MESSAGE_BYTES` are dropped by ZeroMQ before they are read.
Optional CurveZMQ encryption and authentication (only authorised users can publish at all):
:func:`generate_curve_keys` and :class:`CurveKeys`.
"""
from __future__ import annotations

import enum
import math
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import msgpack
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from common.tomlconfig import MAX_TIMEOUT_S, ConfigError, TomlConfig
from radio.errors import RadioError
from radio.feedback_gate import SessionGate

SCHEMA_VERSION = 2
"""Version of the :class:`CsiReport` wire format this build sends. Version 2 added the flag
:attr:`CsiValid.DELAY_SPREAD_BELOW_RESOLUTION`; the fields are those of version 1."""
SUPPORTED_VERSIONS = (1, 2)
"""Versions a receiver accepts (a version-1 report never carries a version-2 flag); any other is refused."""
MAX_MESSAGE_BYTES = 1024
"""``ZMQ_MAXMSGSIZE`` of the subscriber: a report is about 60 bytes; anything larger is dropped unread."""

_U63 = 2**63 - 1
_MAX_ABS_CFO_HZ = 10e6
_SNR_RANGE_DB = (-50.0, 100.0)
_MAX_DELAY_SPREAD_S = 1e-3


class MalformedReport(RadioError, ValueError):
    """A feedback message that does not decode to a valid :class:`CsiReport`."""


class FeedbackTimeout(RadioError, TimeoutError):
    """No feedback message arrived within the allowed time."""


class CsiValid(enum.IntFlag):
    """Validity flags of a :class:`CsiReport`: which estimates the user trusts."""

    SNR = 1
    DELAY_SPREAD = 2
    CFO = 4
    NOISE_VAR = 8
    HEADER_CRC_OK = 16
    DELAY_SPREAD_BELOW_RESOLUTION = 32
    """(version 2) the channel is shorter than the receiver can resolve: ``delay_spread_s`` carries the
    resolution floor, an upper bound, not an estimate. Needs :attr:`DELAY_SPREAD`."""

    @classmethod
    def all_estimates(cls) -> CsiValid:
        return cls.SNR | cls.DELAY_SPREAD | cls.CFO | cls.NOISE_VAR | cls.HEADER_CRC_OK


_FLAGS_OF_VERSION = {1: int(CsiValid.all_estimates()),
                     2: int(CsiValid.all_estimates() | CsiValid.DELAY_SPREAD_BELOW_RESOLUTION)}
_CONDITION_FLAGS = CsiValid.SNR | CsiValid.DELAY_SPREAD


@dataclass(frozen=True)
class Condition:
    """The channel condition CALA gates on: SNR (dB, per used subcarrier) and RMS delay spread (s);
    ``delay_spread_below_resolution``: the delay spread is the receiver's resolution floor (the channel is
    shorter), see :attr:`CsiValid.DELAY_SPREAD_BELOW_RESOLUTION`."""

    snr_db: float
    delay_spread_s: float
    delay_spread_below_resolution: bool = False


@dataclass(frozen=True)
class CsiReport:
    """One CSI feedback message (wire schema version :data:`SCHEMA_VERSION`).

    Attributes:
        seq: publisher's sequence number, strictly increasing within ``session_id``.
        timestamp_s: publisher's ``time.monotonic()`` when the report was made, s.
        frame_id: id of the frame the estimate was measured on.
        snr_db: estimated SNR per used subcarrier, dB.
        delay_spread_s: estimated RMS delay spread, s.
        cfo_hz: estimated carrier frequency offset, Hz.
        noise_var: estimated noise variance (linear, receiver units).
        flags: :class:`CsiValid` bits; a field whose bit is clear carries 0 and must be ignored;
            ``DELAY_SPREAD_BELOW_RESOLUTION`` marks ``delay_spread_s`` as the resolution floor.
        session_id: random 32-bit id of the publisher instance (changes when the user restarts).
        version: schema version.
    """

    seq: int
    timestamp_s: float
    frame_id: int
    snr_db: float
    delay_spread_s: float
    cfo_hz: float = 0.0
    noise_var: float = 0.0
    flags: int = int(CsiValid.SNR | CsiValid.DELAY_SPREAD)
    session_id: int = 0
    version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def delay_spread_below_resolution(self) -> bool:
        return bool(self.flags & CsiValid.DELAY_SPREAD_BELOW_RESOLUTION)

    @property
    def condition(self) -> Condition:
        return Condition(self.snr_db, self.delay_spread_s, self.delay_spread_below_resolution)

    @property
    def has_condition(self) -> bool:
        """True when both SNR and delay spread are flagged valid."""
        return (self.flags & _CONDITION_FLAGS) == _CONDITION_FLAGS


_FIELDS = ("version", "session_id", "seq", "timestamp_s", "frame_id", "snr_db", "delay_spread_s",
           "cfo_hz", "noise_var", "flags")
_INT_FIELDS = {"version", "session_id", "seq", "frame_id", "flags"}


def _validate(r: CsiReport) -> None:
    for name in _FIELDS:
        value = getattr(r, name)
        if name in _INT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise MalformedReport(f"{name} must be an integer, got {value!r}")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise MalformedReport(f"{name} must be a finite number, got {value!r}")
    if r.version not in SUPPORTED_VERSIONS:
        raise MalformedReport(f"unsupported schema version {r.version} (this build speaks {SUPPORTED_VERSIONS})")
    if not 0 <= r.seq <= _U63 or not 0 <= r.frame_id <= _U63 or not 0 <= r.session_id < 2**32:
        raise MalformedReport(f"seq/frame_id/session_id out of range: {r.seq}, {r.frame_id}, {r.session_id}")
    if r.timestamp_s < 0:
        raise MalformedReport(f"timestamp_s must be ≥ 0, got {r.timestamp_s}")
    if not _SNR_RANGE_DB[0] <= r.snr_db <= _SNR_RANGE_DB[1]:
        raise MalformedReport(f"snr_db {r.snr_db} outside {_SNR_RANGE_DB}")
    if not 0 <= r.delay_spread_s <= _MAX_DELAY_SPREAD_S:
        raise MalformedReport(f"delay_spread_s {r.delay_spread_s} outside [0, {_MAX_DELAY_SPREAD_S}]")
    if abs(r.cfo_hz) > _MAX_ABS_CFO_HZ:
        raise MalformedReport(f"|cfo_hz| {r.cfo_hz} above {_MAX_ABS_CFO_HZ}")
    if r.noise_var < 0:
        raise MalformedReport(f"noise_var must be ≥ 0, got {r.noise_var}")
    if r.flags & ~_FLAGS_OF_VERSION[r.version] or r.flags < 0:
        raise MalformedReport(f"unknown validity flag bits in {r.flags:#x} for schema version {r.version}")
    if r.delay_spread_below_resolution and (not r.flags & CsiValid.DELAY_SPREAD or r.delay_spread_s <= 0):
        raise MalformedReport("DELAY_SPREAD_BELOW_RESOLUTION needs the DELAY_SPREAD flag and the floor "
                              f"(> 0) in delay_spread_s, got flags {r.flags:#x}, delay_spread_s {r.delay_spread_s}")


def encode_report(report: CsiReport) -> bytes:
    """Pack a report as one msgpack array (about 60 bytes)."""
    return msgpack.packb([getattr(report, name) for name in _FIELDS], use_bin_type=True)


def decode_report(data: bytes) -> CsiReport:
    """Unpack and validate one message. Raises :class:`MalformedReport` on anything unexpected."""
    try:
        items = msgpack.unpackb(data, raw=False, strict_map_key=True, max_array_len=64, max_map_len=0,
                                max_str_len=0, max_bin_len=0, max_ext_len=0)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise MalformedReport(f"not a msgpack message: {exc}") from None
    if not isinstance(items, list) or not items:
        raise MalformedReport(f"expected a msgpack array, got {type(items).__name__}")
    if isinstance(items[0], bool) or items[0] not in SUPPORTED_VERSIONS:
        raise MalformedReport(f"unsupported schema version {items[0]!r} (this build speaks {SUPPORTED_VERSIONS})")
    if len(items) != len(_FIELDS):
        raise MalformedReport(f"expected {len(_FIELDS)} fields, got {len(items)}")
    return CsiReport(**dict(zip(_FIELDS, items)))


# --------------------------------------------------------------------------- configuration, keys


@dataclass
class FeedbackConfig(TomlConfig):
    """Where the feedback flows and what the edge does without it.

    Attributes:
        endpoint: ZeroMQ endpoint the user's publisher binds and the edge connects to
            (loopback by default; ``tcp://0.0.0.0:5557`` on the user host for two hosts).
        max_age_s: the edge uses a report only if it was received less than this long ago, s.
        fallback_snr_db, fallback_delay_spread_s: the condition used otherwise.
        timeout_s: receive/send timeout of the sockets, s.
        curve_keys_dir: folder made by :func:`generate_curve_keys`; empty = no CurveZMQ.
    """

    endpoint: str = "tcp://127.0.0.1:5557"
    max_age_s: float = 0.5
    fallback_snr_db: float = 10.0
    fallback_delay_spread_s: float = 100e-9
    timeout_s: float = 2.0
    curve_keys_dir: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.endpoint.startswith(("tcp://", "ipc://", "inproc://")):
            raise ConfigError(f"endpoint must be a ZeroMQ tcp://, ipc:// or inproc:// address, got {self.endpoint!r}")
        for name in ("max_age_s", "timeout_s"):
            self.check_range(name, 0.0, MAX_TIMEOUT_S, open_low=True)
        self.check_range("fallback_snr_db", *_SNR_RANGE_DB)
        self.check_range("fallback_delay_spread_s", 0.0, _MAX_DELAY_SPREAD_S)

    @property
    def fallback(self) -> Condition:
        return Condition(self.fallback_snr_db, self.fallback_delay_spread_s)

    def curve_keys(self) -> CurveKeys | None:
        return CurveKeys(Path(self.curve_keys_dir)) if self.curve_keys_dir else None


@dataclass(frozen=True)
class CurveKeys:
    """A key folder made by :func:`generate_curve_keys`.

    Layout: ``server.key``/``server.key_secret`` (the publisher's pair), ``client.key``/
    ``client.key_secret`` (the subscriber's pair) and ``authorized/`` (public keys of clients the
    publisher accepts). On two hosts, the user host needs ``server.key_secret`` and ``authorized/``;
    the edge host needs ``client.key_secret`` and ``server.key``.
    """

    directory: Path

    def _load(self, name: str) -> tuple[bytes, bytes | None]:
        path = self.directory / name
        if not path.is_file():
            raise ConfigError(f"CurveZMQ key file not found: {path}")
        return zmq.auth.load_certificate(path)

    def apply_server(self, sock: zmq.Socket) -> None:
        public, secret = self._load("server.key_secret")
        if not self.authorized_dir.is_dir():
            raise ConfigError(f"CurveZMQ folder of authorised client keys not found: {self.authorized_dir}")
        sock.curve_secretkey, sock.curve_publickey, sock.curve_server = secret, public, True

    def apply_client(self, sock: zmq.Socket) -> None:
        public, secret = self._load("client.key_secret")
        server_public, _ = self._load("server.key")
        sock.curve_secretkey, sock.curve_publickey, sock.curve_serverkey = secret, public, server_public

    @property
    def authorized_dir(self) -> Path:
        return self.directory / "authorized"


def generate_curve_keys(directory: str | Path) -> CurveKeys:
    """Create a server and a client CurveZMQ key pair in ``directory`` (see :class:`CurveKeys`); the secret
    key files are readable by their owner only (0600)."""
    directory = Path(directory)
    (directory / "authorized").mkdir(parents=True, exist_ok=True)
    for name in ("server", "client"):
        _, secret = zmq.auth.create_certificates(directory, name)
        Path(secret).chmod(0o600)
    (directory / "authorized" / "client.key").write_bytes((directory / "client.key").read_bytes())
    return CurveKeys(directory)


def free_tcp_endpoint(host: str = "127.0.0.1") -> str:
    """``tcp://host:port`` with a port that was free a moment ago (for tests and local runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return f"tcp://{host}:{s.getsockname()[1]}"


# --------------------------------------------------------------------------- publisher


class CsiPublisher:
    """User side: binds a PUB socket and publishes :class:`CsiReport` messages.

    Args:
        endpoint: address to bind (``tcp://127.0.0.1:5557``).
        curve: keys to run as a CurveZMQ server that accepts only the authorized client keys.
        context: ZeroMQ context (default: the process-wide instance).
    """

    def __init__(self, endpoint: str, *, curve: CurveKeys | None = None, timeout_s: float = 2.0,
                 context: zmq.Context | None = None) -> None:
        self._ctx = context or zmq.Context.instance()
        self._auth = None
        self._sock = self._ctx.socket(zmq.PUB)
        self._sock.linger = 0
        self._sock.sndtimeo = int(timeout_s * 1000)
        try:
            if curve is not None:
                curve.apply_server(self._sock)  # keys first: a missing key file starts no thread
                self._auth = ThreadAuthenticator(self._ctx)
                self._auth.start()
                self._auth.configure_curve(domain="*", location=str(curve.authorized_dir))
            self._sock.bind(endpoint)
        except BaseException:
            self.close()
            raise
        self.endpoint = endpoint
        self.session_id = secrets.randbits(32)
        self._seq = 0

    def publish(self, *, frame_id: int, snr_db: float, delay_spread_s: float, cfo_hz: float = 0.0,
                noise_var: float = 0.0, flags: int | None = None,
                delay_spread_below_resolution: bool = False) -> CsiReport:
        """Stamp (sequence number, monotonic time), validate and send one report; returns it. A finite SNR or
        delay spread beyond the wire's range is sent as the range's end (a 140 dB estimate on a clean
        loopback is "very high", not malformed). ``delay_spread_below_resolution`` (the receiver's flag;
        ``delay_spread_s`` is then its floor) sets :attr:`CsiValid.DELAY_SPREAD_BELOW_RESOLUTION`."""
        if flags is None:
            flags = int(CsiValid.SNR | CsiValid.DELAY_SPREAD)
        if delay_spread_below_resolution:
            flags |= CsiValid.DELAY_SPREAD_BELOW_RESOLUTION
        snr_db = min(max(float(snr_db), _SNR_RANGE_DB[0]), _SNR_RANGE_DB[1])
        delay_spread_s = min(max(float(delay_spread_s), 0.0), _MAX_DELAY_SPREAD_S)
        report = CsiReport(seq=self._seq, timestamp_s=time.monotonic(), frame_id=int(frame_id),
                           snr_db=snr_db, delay_spread_s=delay_spread_s, cfo_hz=float(cfo_hz),
                           noise_var=float(noise_var), flags=int(flags), session_id=self.session_id)
        self.send_raw(encode_report(report))
        self._seq += 1
        return report

    def send_raw(self, payload: bytes) -> None:
        """Send bytes as they are (tests use it to inject malformed or replayed messages)."""
        self._sock.send(payload, copy=True)

    def publish_until_received(self, subscriber: CsiSubscriber, *, timeout_s: float = 5.0,
                               **fields: float) -> CsiReport:
        """Publish repeatedly until ``subscriber`` (same process) accepts it: gets past PUB/SUB's late
        joining in tests and start-up. Raises :class:`FeedbackTimeout`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            report = self.publish(**fields)
            subscriber.poll(0.02)
            if subscriber.latest is not None and subscriber.latest.seq == report.seq \
                    and subscriber.latest.session_id == report.session_id:
                return report
        raise FeedbackTimeout(f"no subscriber received a report on {self.endpoint} within {timeout_s} s")

    def close(self) -> None:
        self._sock.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def __enter__(self) -> CsiPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- subscriber


@dataclass
class FeedbackCounters:
    """What the subscriber did with the messages it received (verdicts: :mod:`radio.feedback_gate`)."""

    received: int = 0
    accepted: int = 0
    malformed: int = 0
    duplicate: int = 0          # seq equal to the last accepted one (same session)
    out_of_order: int = 0       # seq at or below one already accepted from that session (replay)
    seq_jump: int = 0           # seq implausibly far ahead of the session's previous report
    future_timestamp: int = 0   # publisher timestamp implausibly far ahead of the edge's clock
    session_pending: int = 0    # another session while the current one is fresh (not admitted yet)
    sessions: int = 0           # sessions admitted (the first one included)
    unusable: int = 0           # valid message whose SNR/delay-spread flags are not both set
    reconnects: int = 0         # connected again after a silence (e.g. the drop after an oversized message)
    fallbacks: int = 0          # condition() calls answered with the fallback

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ConditionResult:
    """The condition the edge encoder should use, and where it came from.

    Attributes:
        condition: SNR dB and delay spread s to gate on.
        source: ``"feedback"`` (a fresh report) or ``"fallback"`` (none, or too old).
        age_s: time since the newest accepted report was received, s (``None`` if none ever).
        seq: sequence number of that report (``None`` if none).
        frame_id: frame the report was measured on (``None`` if none).
    """

    condition: Condition
    source: str
    age_s: float | None
    seq: int | None
    frame_id: int | None = None


class ConditionSource(Protocol):
    """Anything that tells the edge which condition to encode with."""

    def condition(self) -> ConditionResult: ...


@dataclass
class FixedCondition:
    """A :class:`ConditionSource` without feedback: always the configured condition (``source="fallback"``)."""

    fixed: Condition

    def condition(self) -> ConditionResult:
        return ConditionResult(self.fixed, "fallback", None, None)


class CsiSubscriber:
    """Edge side: SUB socket (CONFLATE, LINGER 0, receive timeout) that keeps the newest valid report.

    Args:
        endpoint: the publisher's address to connect to.
        max_age_s: reports received longer ago than this are not used.
        fallback: condition returned when there is no fresh report.
        conflate: keep only the newest queued message (default; turn off only to count every message).
        curve: keys to connect as an authorized CurveZMQ client.
        timeout_s: receive timeout for :meth:`wait_for_report`'s default.
        reconnect_after_s: silence after which the socket connects again (a message over
            :data:`MAX_MESSAGE_BYTES` makes ZeroMQ drop the connection for good), s.
    """

    def __init__(self, endpoint: str, *, max_age_s: float, fallback: Condition, conflate: bool = True,
                 curve: CurveKeys | None = None, timeout_s: float = 2.0, reconnect_after_s: float = 10.0,
                 context: zmq.Context | None = None) -> None:
        if not max_age_s > 0:
            raise ConfigError(f"max_age_s must be positive, got {max_age_s}")
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.linger = 0
        self._sock.rcvtimeo = int(timeout_s * 1000)
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        if conflate:
            self._sock.setsockopt(zmq.CONFLATE, 1)  # must precede connect()
        try:
            if curve is not None:
                curve.apply_client(self._sock)
            self._sock.setsockopt(zmq.SUBSCRIBE, b"")
            self._sock.connect(endpoint)
        except BaseException:
            self._sock.close(linger=0)
            raise
        self._heard_at = self._reconnected_at = time.monotonic()  # last message of any kind; last reconnect
        self.endpoint = endpoint
        self.max_age_s = max_age_s
        self.fallback = fallback
        self.timeout_s = timeout_s
        self.reconnect_after_s = reconnect_after_s
        self.counters = FeedbackCounters()
        self.gate = SessionGate(max_age_s)
        self.latest: CsiReport | None = None
        self.latest_received_at: float | None = None
        self.on_accept = None  # optional callable(report, received_at) for latency measurement

    def _handle(self, payload: bytes, received_at: float) -> bool:
        c = self.counters
        c.received += 1
        try:
            report = decode_report(payload)
        except MalformedReport:
            c.malformed += 1
            return False
        if not report.has_condition:
            c.unusable += 1
            return False
        session = self.gate.current.session_id if self.gate.current is not None else None
        verdict = self.gate.admit(report, received_at)
        setattr(c, verdict, getattr(c, verdict) + 1)
        if verdict != "accepted":
            return False
        c.sessions += report.session_id != session
        self.latest, self.latest_received_at = report, received_at
        if self.on_accept is not None:
            self.on_accept(report, received_at)
        return True

    def _reconnect_if_silent(self) -> None:
        """ZeroMQ drops the connection on an oversized message and does not come back by itself: after
        ``reconnect_after_s`` without any message (and as long since the last try) connect again."""
        now = time.monotonic()
        if min(now - self._heard_at, now - self._reconnected_at) > self.reconnect_after_s:
            self._sock.disconnect(self.endpoint)
            self._sock.connect(self.endpoint)
            self._reconnected_at = now
            self.counters.reconnects += 1

    def poll(self, timeout_s: float = 0.0) -> int:
        """Drain the socket, waiting up to ``timeout_s`` for the first message; returns how many were accepted."""
        self._reconnect_if_silent()
        accepted = 0
        wait_ms = int(timeout_s * 1000)
        while self._sock.poll(wait_ms, zmq.POLLIN):
            payload = self._sock.recv(copy=True)
            self._heard_at = time.monotonic()
            accepted += self._handle(payload, time.monotonic())
            wait_ms = 0
        return accepted

    def wait_for_report(self, timeout_s: float | None = None) -> CsiReport:
        """Block until a new report is accepted. Raises :class:`FeedbackTimeout`."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if self.poll(left):
                return self.latest
        raise FeedbackTimeout(f"no valid CSI report from {self.endpoint} within {timeout_s} s")

    def condition(self) -> ConditionResult:
        """Newest report younger than ``max_age_s``, otherwise the fallback (counted)."""
        self.poll(0.0)
        if self.latest is None:
            self.counters.fallbacks += 1
            return ConditionResult(self.fallback, "fallback", None, None)
        age = time.monotonic() - self.latest_received_at
        r = self.latest
        if age > self.max_age_s:
            self.counters.fallbacks += 1
            return ConditionResult(self.fallback, "fallback", age, r.seq, r.frame_id)
        return ConditionResult(r.condition, "feedback", age, r.seq, r.frame_id)

    def close(self) -> None:
        self._sock.close(linger=0)

    def __enter__(self) -> CsiSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def publisher_from_config(cfg: FeedbackConfig, **kwargs: object) -> CsiPublisher:
    """The user's publisher as :class:`FeedbackConfig` describes it."""
    return CsiPublisher(cfg.endpoint, curve=cfg.curve_keys(), timeout_s=cfg.timeout_s, **kwargs)


def subscriber_from_config(cfg: FeedbackConfig, **kwargs: object) -> CsiSubscriber:
    """The edge's subscriber as :class:`FeedbackConfig` describes it."""
    return CsiSubscriber(cfg.endpoint, max_age_s=cfg.max_age_s, fallback=cfg.fallback,
                         curve=cfg.curve_keys(), timeout_s=cfg.timeout_s, **kwargs)
