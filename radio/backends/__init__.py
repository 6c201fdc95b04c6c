"""Radio backends behind one small interface (:class:`RadioBackend`): sample rate, centre frequency,
gains, ``transmit(iq)``, ``receive(num_samples)``, ``close()``; all are context managers.

| backend | what moves the samples |
|---|---|
| :class:`PlutoBackend` | an ADALM-Pluto through pyadi-iio (imported lazily), or :class:`FakePluto` in CI |
| :class:`ZmqRfBackend` | ZeroMQ REQ/REP sample streams, srsRAN style; :class:`ZmqChannelRelay` sits between two |
| :class:`SigMFReplayBackend` | a SigMF recording (made with :class:`SigMFRecorder` / :class:`RecordingBackend`) |
| :class:`EmulatedBackend` | the in-process channel emulator |

Importing this package imports neither pyadi-iio nor Sionna.
"""
from radio.backends.base import BackendError, PeerTimeout, RadioBackend
from radio.backends.emulated import EmulatedBackend
from radio.backends.fake_pluto import FakePluto
from radio.backends.pluto import PlutoBackend, PlutoConfig, scale_for_dac
from radio.backends.sigmf_io import RecordingBackend, RecordingError, ReplayExhausted, SigMFRecorder, SigMFReplayBackend
from radio.backends.zmq_rf import SampleClient, SampleServer, ZmqChannelRelay, ZmqRfBackend, ZmqRfConfig

__all__ = ["BackendError", "PeerTimeout", "RadioBackend", "EmulatedBackend", "FakePluto", "PlutoBackend",
           "PlutoConfig", "scale_for_dac", "RecordingBackend", "RecordingError", "ReplayExhausted",
           "SigMFRecorder", "SigMFReplayBackend", "SampleClient", "SampleServer", "ZmqChannelRelay",
           "ZmqRfBackend", "ZmqRfConfig"]
