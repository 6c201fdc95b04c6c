"""radio: the air interface. Frame format, OFDM, synchronisation, estimation, transmitter/receiver,
channel emulator, radio backends and CSI feedback. Knows nothing about images or neural networks.

>>> import numpy as np, radio
>>> cfg = radio.FrameConfig()
>>> iq = radio.Transmitter(cfg).modulate(np.ones(20, complex), frame_id=7, condition=(10.0, 1e-7))
>>> [f.header.frame_id for f in radio.Receiver(cfg).receive(np.concatenate([iq, np.zeros(100, np.complex64)]))]
[7]
"""
from radio.config import FrameConfig, ReceiverConfig
from radio.errors import BadInputError, ConfigurationError, RadioError
from radio.header import FrameHeader
from radio.impairments import Impairments
from radio.receiver import ReceivedFrame, Receiver, ReceiverStats
from radio.transmitter import Transmitter

# The emulator pulls in torch (and Sionna when one is built): imported on first use only, so that
# `import radio` stays light for scripts that only transmit and receive.
_EMULATOR_NAMES = ("ChannelTruth", "Emulator", "EmulatorConfig", "EmulatorInputError")


def __getattr__(name: str):
    if name in _EMULATOR_NAMES:
        import radio.emulator

        return getattr(radio.emulator, name)
    raise AttributeError(f"module 'radio' has no attribute {name!r}")


__all__ = ["BadInputError", "ConfigurationError", "FrameConfig", "FrameHeader", "Impairments", "RadioError",
           "ReceivedFrame", "Receiver", "ReceiverConfig", "ReceiverStats", "Transmitter", *_EMULATOR_NAMES]
