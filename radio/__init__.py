"""radio: the air interface. Frame format, OFDM, synchronisation, estimation, transmitter/receiver,
channel emulator, radio backends and CSI feedback. Knows nothing about images or neural networks.
"""
from radio.config import FrameConfig

__all__ = ["FrameConfig"]
from radio.emulator import ChannelTruth, Emulator, EmulatorConfig, EmulatorInputError, Impairments  # emulator
__all__ += ["ChannelTruth", "Emulator", "EmulatorConfig", "EmulatorInputError", "Impairments"]
