"""SigMF record and replay: keep every capture with its full metadata, and feed it back to the receiver.

A recording is one SigMF pair ``<name>.sigmf-data`` (complex64, ``cf32_le``) + ``<name>.sigmf-meta``.
Global metadata: sample rate, device description (``core:hw`` and ``dekag:device`` with gains, URI,
...), the frame configuration (``dekag:frame_config``). One SigMF capture segment per
:meth:`SigMFRecorder.append`, with its centre frequency, gains, frame id and, when known, the channel
truth (``dekag:truth``). The data file's SHA-512 is stored and checked on replay.

>>> import numpy as np, tempfile, pathlib
>>> from radio.backends import SigMFRecorder, SigMFReplayBackend
>>> base = pathlib.Path(tempfile.mkdtemp()) / "capture"
>>> with SigMFRecorder(base, sample_rate_hz=3.84e6, center_frequency_hz=915e6, device={"device": "demo"},
...                    frame_config={"fft_size": 128}) as rec:
...     rec.append(np.ones(100, np.complex64), truth={"snr_db": 12.0}, frame_id=0)
0
>>> with SigMFReplayBackend(base, expected_frame_config={"fft_size": 128}) as replay:
...     replay.receive(60).shape, replay.captures[0]["truth"]
((60,), {'snr_db': 12.0})
"""
from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import sigmf
from sigmf import SigMFFile
from sigmf.error import SigMFError

from radio.backends.base import BackendError, RadioBackend, check_num_samples

NAMESPACE = "dekag"
_EXTENSION = {"name": NAMESPACE, "version": "1.0.0", "optional": True}
_RECORDER = "dekag-testbed radio.backends.sigmf_io"


class RecordingError(BackendError):
    """A SigMF recording is missing, corrupt or does not match what the replay expects."""


class ReplayExhausted(RecordingError, EOFError):
    """The replay reached the end of the recording."""


def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars/arrays to Python, dataclass-like ``to_dict`` honoured."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, complex):
        return [value.real, value.imag]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _paths(path: str | Path) -> tuple[Path, Path]:
    base = Path(path)
    if base.suffix in (".sigmf-meta", ".sigmf-data"):
        base = base.with_suffix("")
    return base.with_suffix(".sigmf-data"), base.with_suffix(".sigmf-meta")


class SigMFRecorder:
    """Appends captures to one SigMF recording; the metadata is written by :meth:`close`.

    Args:
        path: recording name (``.sigmf-meta``/``.sigmf-data`` are added).
        sample_rate_hz: sample rate of everything appended.
        center_frequency_hz: default centre frequency of the captures.
        device: device description (``RadioBackend.describe()``), stored as ``dekag:device``.
        frame_config: the frame configuration as a dict (``FrameConfig.to_dict()``).
        description: free text for ``core:description``.
    """

    def __init__(self, path: str | Path, *, sample_rate_hz: float, center_frequency_hz: float,
                 device: Mapping[str, Any], frame_config: Mapping[str, Any] | None = None,
                 description: str = "") -> None:
        self.data_path, self.meta_path = _paths(path)
        if self.meta_path.exists() or self.data_path.exists():
            raise RecordingError(f"recording {self.meta_path.with_suffix('')} already exists")
        self.data_path.parent.mkdir(parents=True, exist_ok=True)
        self._data = open(self.data_path, "wb")
        self._global = {
            "core:datatype": "cf32_le", "core:sample_rate": float(sample_rate_hz),
            "core:hw": str(device.get("device", "unknown")), "core:recorder": _RECORDER,
            "core:description": description, "core:extensions": [dict(_EXTENSION)],
            f"{NAMESPACE}:device": _plain(device), f"{NAMESPACE}:frame_config": _plain(frame_config or {}),
        }
        self.center_frequency_hz = float(center_frequency_hz)
        self._captures: list[dict[str, Any]] = []
        self.num_samples = 0

    @classmethod
    def for_backend(cls, path: str | Path, backend: RadioBackend, *, frame_config: Mapping[str, Any] | None = None,
                    description: str = "") -> SigMFRecorder:
        """A recorder whose global metadata is ``backend.describe()``."""
        return cls(path, sample_rate_hz=backend.sample_rate_hz, center_frequency_hz=backend.center_frequency_hz,
                   device=backend.describe(), frame_config=frame_config, description=description)

    def append(self, iq: np.ndarray, *, truth: Any = None, frame_id: int | None = None,
               center_frequency_hz: float | None = None, gains: Mapping[str, float] | None = None,
               extra: Mapping[str, Any] | None = None) -> int:
        """Write one capture (1-D complex); returns its capture index."""
        if self._data.closed:
            raise RecordingError("recorder is closed")
        iq = np.asarray(iq)
        if iq.ndim != 1 or not np.iscomplexobj(iq):
            raise RecordingError(f"a capture must be a 1-D complex array, got {iq.dtype} {iq.shape}")
        capture = {"core:sample_start": self.num_samples,
                   "core:frequency": float(center_frequency_hz or self.center_frequency_hz),
                   f"{NAMESPACE}:num_samples": int(iq.size)}
        if frame_id is not None:
            capture[f"{NAMESPACE}:frame_id"] = int(frame_id)
        if gains:
            capture[f"{NAMESPACE}:gains"] = _plain(gains)
        if truth is not None:
            capture[f"{NAMESPACE}:truth"] = _plain(truth)
        for key, value in (extra or {}).items():
            capture[f"{NAMESPACE}:{key}"] = _plain(value)
        iq.astype("<c8").tofile(self._data)
        self._captures.append(capture)
        self.num_samples += iq.size
        return len(self._captures) - 1

    def close(self) -> Path:
        """Finish the data file and write the metadata (with SHA-512); returns the ``.sigmf-meta`` path."""
        if self._data.closed:
            return self.meta_path
        self._data.close()
        if self.num_samples:
            meta = SigMFFile(data_file=str(self.data_path), global_info=self._global)
        else:   # nothing captured (e.g. interrupted at once): metadata without a checksum
            meta = SigMFFile(global_info=self._global)
        for capture in self._captures:
            meta.add_capture(capture["core:sample_start"],
                             metadata={k: v for k, v in capture.items() if k != "core:sample_start"})
        try:
            meta.tofile(str(self.meta_path.with_suffix("")))
        except SigMFError as exc:
            raise RecordingError(f"cannot write {self.meta_path}: {exc}") from exc
        return self.meta_path

    def __enter__(self) -> SigMFRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordingBackend(RadioBackend):
    """Wraps any backend and records every :meth:`receive` into a :class:`SigMFRecorder`.

    Args:
        inner: the backend doing the work.
        recorder: where captures go (e.g. ``SigMFRecorder.for_backend(path, inner, frame_config=...)``).
        truth: optional callable returning the channel truth of the latest capture (or None).
    """

    def __init__(self, inner: RadioBackend, recorder: SigMFRecorder, *,
                 truth: Callable[[], Any] | None = None) -> None:
        self.inner, self.recorder, self._truth = inner, recorder, truth
        self.device = inner.device
        self.frame_id: int | None = None   # set by the caller to tag the next capture

    @property
    def sample_rate_hz(self) -> float:
        return self.inner.sample_rate_hz

    @property
    def center_frequency_hz(self) -> float:
        return self.inner.center_frequency_hz

    @property
    def gains(self) -> dict[str, float]:
        return self.inner.gains

    @property
    def counters(self) -> dict[str, int]:
        return self.inner.counters

    def describe(self) -> dict[str, object]:
        return {**self.inner.describe(), "recording": str(self.recorder.meta_path)}

    def transmit(self, iq: np.ndarray) -> None:
        self.inner.transmit(iq)

    def receive(self, num_samples: int) -> np.ndarray:
        iq = self.inner.receive(num_samples)
        self.recorder.append(iq, truth=self._truth() if self._truth else None, frame_id=self.frame_id,
                             center_frequency_hz=self.inner.center_frequency_hz, gains=self.inner.gains)
        return iq

    def close(self) -> None:
        self.recorder.close()
        self.inner.close()


class SigMFReplayBackend(RadioBackend):
    """A backend whose :meth:`receive` reads a recording, for running the receiver offline.

    Args:
        path: the recording (with or without ``.sigmf-meta``).
        expected_sample_rate_hz: refuse a recording made at another rate.
        expected_frame_config: refuse a recording whose ``dekag:frame_config`` differs.
        loop: start again at the end instead of raising :class:`ReplayExhausted`.

    Raises:
        RecordingError: missing files, checksum mismatch (corrupt data), a data size that is not a whole
            number of samples, a non-complex datatype, or a mismatch with what is expected.
    """

    device = "sigmf-replay"

    def __init__(self, path: str | Path, *, expected_sample_rate_hz: float | None = None,
                 expected_frame_config: Mapping[str, Any] | None = None, loop: bool = False) -> None:
        data_path, meta_path = _paths(path)
        for p in (meta_path, data_path):
            if not p.is_file():
                raise RecordingError(f"recording file not found: {p}")
        if data_path.stat().st_size == 0:
            raise RecordingError(f"{data_path}: the recording is empty")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)   # sigmf warns on a partial sample; we raise below
                self._meta = sigmf.fromfile(str(meta_path))
        except (SigMFError, json.JSONDecodeError, KeyError, ValueError) as exc:
            raise RecordingError(f"{meta_path} is not a valid SigMF recording: {exc}") from exc
        g = self._meta.get_global_info()
        datatype = g.get("core:datatype", "")
        if not datatype.startswith("c"):
            raise RecordingError(f"{meta_path}: datatype {datatype!r} is not complex IQ")
        if data_path.stat().st_size % self._meta.get_sample_size():
            raise RecordingError(f"{data_path}: size {data_path.stat().st_size} B is not a whole number of "
                                 f"{datatype} samples (truncated?)")
        self.path = meta_path
        self._rate = float(g["core:sample_rate"])
        if expected_sample_rate_hz is not None and not math.isclose(self._rate, expected_sample_rate_hz,
                                                                    rel_tol=1e-9):
            raise RecordingError(f"{meta_path}: recorded at {self._rate} S/s, expected {expected_sample_rate_hz}")
        self.frame_config = g.get(f"{NAMESPACE}:frame_config", {})
        if expected_frame_config is not None:
            expected = _plain(expected_frame_config)
            diff = {k: (self.frame_config.get(k), expected.get(k)) for k in set(expected) | set(self.frame_config)
                    if self.frame_config.get(k) != expected.get(k)}
            if diff:
                raise RecordingError(f"{meta_path}: frame configuration differs (recorded, expected): {diff}")
        self.device_info = g.get(f"{NAMESPACE}:device", {})
        self.captures = [self._capture(c) for c in self._meta.get_captures()]
        self.num_samples = int(self._meta.sample_count)
        self.loop = loop
        self.position = 0

    @staticmethod
    def _capture(c: Mapping[str, Any]) -> dict[str, Any]:
        prefix = f"{NAMESPACE}:"
        out = {"start": c.get("core:sample_start", 0), "center_frequency_hz": c.get("core:frequency")}
        out.update({k[len(prefix):]: v for k, v in c.items() if k.startswith(prefix)})
        return out

    @property
    def sample_rate_hz(self) -> float:
        return self._rate

    @property
    def center_frequency_hz(self) -> float:
        freq = self.captures[0]["center_frequency_hz"] if self.captures else None
        return float(freq) if freq is not None else 0.0

    @property
    def gains(self) -> dict[str, float]:
        return {k: v for k, v in self.device_info.items() if k.endswith("_gain_db")}

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "recording": str(self.path), "recorded_device": self.device_info}

    def transmit(self, iq: np.ndarray) -> None:
        raise BackendError("a SigMF replay only receives; transmit on the backend that made the recording")

    def receive(self, num_samples: int) -> np.ndarray:
        """The next ``num_samples`` recorded samples (complex64); :class:`ReplayExhausted` at the end."""
        n = check_num_samples(num_samples)
        parts, have = [], 0
        while have < n:
            left = self.num_samples - self.position
            if left == 0:
                if not self.loop or self.num_samples == 0:
                    raise ReplayExhausted(f"{self.path}: {n - have} samples asked beyond the end "
                                          f"({self.num_samples} recorded)")
                self.position = 0
                continue
            take = min(left, n - have)
            parts.append(self._meta.read_samples(self.position, take))
            self.position += take
            have += take
        return np.concatenate(parts).astype(np.complex64)

    def capture_at(self, sample_index: int) -> dict[str, Any] | None:
        """The capture segment (metadata dict, with ``truth`` when recorded) holding ``sample_index``."""
        found = None
        for c in self.captures:
            if c["start"] <= sample_index:
                found = c
        return found
