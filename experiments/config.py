"""The testbed's configuration: :class:`TestbedConfig`, one TOML file for all three nodes.

``dekag-testbed run`` with no ``--config`` uses the embedded default (:func:`default_config`): the
ZeroMQ virtual RF between three local processes, the Sionna emulator with hardware impairments on,
an SNR/delay-spread schedule that changes every few frames so CALA has something to adapt to, and the
shipped miniature models (``[models]``: local diffusers folders of any other edge and cloud).
``dekag-testbed config`` prints it as a starting point for a lab file.

Every value is checked when a config is built or loaded (types, finiteness, ranges, with the key named)
and a config is read-only afterwards; a changed one is made with ``cfg.replace(section={key: value})``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from common.tomlconfig import MAX_TIMEOUT_S, ConfigError, TomlConfig
from radio.backends.pluto import PlutoConfig
from radio.backends.zmq_rf import MAX_CHUNK_SAMPLES, MAX_TOKEN_CHARS
from radio.config import FrameConfig, ReceiverConfig
from radio.emulator import MAX_DELAY_SPREAD_S, EmulatorConfig
from radio.feedback import FeedbackConfig
from radio.impairments import Impairments

BACKENDS = ("zmq", "emulator", "pluto")
MAX_FRAMES = 10_000_000
"""Most frames one run may send (frame ids on the air wrap at 65 536; the nodes unwrap them)."""


@dataclass
class LinkSection(TomlConfig):
    """How samples travel from edge to user.

    Attributes:
        backend: ``zmq`` (virtual RF through a channel-node process), ``emulator`` (in-process, edge and
            user in one process) or ``pluto`` (an ADALM-Pluto at each node; edge and user may be two hosts).
        tx_endpoint: ZeroMQ address the edge serves TX samples on (the channel node connects).
        rx_endpoint: ZeroMQ address the channel node serves RX samples on (the user connects).
        timeout_s: once running, how long a node waits for its peer before it reports the peer lost.
        max_peer_timeouts: a node stops (exit code 3) after this many consecutive peer timeouts.
        startup_timeout_s: how long a node waits for its peers to come up (model loading, Sionna import).
        guard_samples: zeros after each frame burst (≥ 2 × ``chunk_samples`` so a frame is complete
            before the next burst is needed).
        chunk_samples: samples the user asks for per read.
        edge_pluto, user_pluto: the two radios for ``backend = "pluto"``.
        record_sigmf: also record everything the user receives as SigMF in the run folder.
        session_token: the virtual-RF ports serve samples only to requests carrying it (``run`` draws one
            per run when empty; empty for single nodes = no check).
    """

    backend: str = "zmq"
    tx_endpoint: str = "tcp://127.0.0.1:52100"
    rx_endpoint: str = "tcp://127.0.0.1:52101"
    timeout_s: float = 10.0
    max_peer_timeouts: int = 3
    startup_timeout_s: float = 120.0
    guard_samples: int = 8192
    chunk_samples: int = 4096
    edge_pluto: PlutoConfig = field(default_factory=PlutoConfig)
    user_pluto: PlutoConfig = field(default_factory=PlutoConfig)
    record_sigmf: bool = False
    session_token: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"link.backend must be one of {BACKENDS}, got {self.backend!r}")
        self.check_range("chunk_samples", 256, MAX_CHUNK_SAMPLES)
        self.check_range("guard_samples", 2 * self.chunk_samples, 100 * MAX_CHUNK_SAMPLES)
        for name in ("timeout_s", "startup_timeout_s"):
            self.check_range(name, 0.0, MAX_TIMEOUT_S, open_low=True)
        self.check_range("max_peer_timeouts", 1, 1_000_000)
        if len(self.session_token) > MAX_TOKEN_CHARS:
            raise ConfigError(f"link.session_token must be at most {MAX_TOKEN_CHARS} characters")


@dataclass
class ChannelSection(TomlConfig):
    """The emulated channel and how its condition changes over the run.

    Attributes:
        emulator: profile, nominal SNR, delay spread, carrier, Doppler, impairments, seed.
        snr_db_schedule: nominal SNR per step (cycled); empty = ``emulator.snr_db`` throughout.
        delay_spread_s_schedule: RMS delay spread per step (cycled); empty = ``emulator.delay_spread_s``.
        frames_per_step: frame bursts each schedule step lasts.
    """

    emulator: EmulatorConfig = field(default_factory=EmulatorConfig)
    snr_db_schedule: list[float] = field(default_factory=list)
    delay_spread_s_schedule: list[float] = field(default_factory=list)
    frames_per_step: int = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.frames_per_step < 1:
            raise ConfigError("channel.frames_per_step must be ≥ 1")
        if any(not 0 < d <= MAX_DELAY_SPREAD_S for d in self.delay_spread_s_schedule):
            raise ConfigError(f"channel.delay_spread_s_schedule values must be in (0, {MAX_DELAY_SPREAD_S}] s, "
                              f"got {self.delay_spread_s_schedule}")

    def condition_at(self, burst: int) -> tuple[float, float]:
        """Nominal ``(snr_db, delay_spread_s)`` of burst number ``burst`` (0-based)."""
        step = burst // self.frames_per_step
        snr = self.snr_db_schedule[step % len(self.snr_db_schedule)] if self.snr_db_schedule else self.emulator.snr_db
        ds = (self.delay_spread_s_schedule[step % len(self.delay_spread_s_schedule)]
              if self.delay_spread_s_schedule else self.emulator.delay_spread_s)
        return float(snr), float(ds)


@dataclass
class EdgeSection(TomlConfig):
    """The edge node: what it generates and how it picks the encoder's condition.

    Attributes:
        num_frames: images to send (one frame each).
        prompts: prompts cycled over frames; ``{metaword}`` is replaced by the knowledge package's metaword.
        seed: first generation seed (frame ``i`` uses ``seed + i``).
        knowledge_package: folder of the downlink knowledge package; empty = the shipped miniature one
            (then ``[models]`` must be the miniature world too).
        condition: ``feedback`` (latest CSI from the user, else fallback) or ``fixed`` (always the fallback).
        feedback_wait_s: before encoding frame k the edge waits up to this long for the user's report on
            frame k-1 (so CSI is at most one frame old while the user keeps up).
        codec: what the frames carry: ``jscc`` (the package's JSCC codec with CALA) or ``digital`` (the digital
            baseline, :mod:`dekag.digital`: quantised latent, CRC, 5G LDPC, QAM, its MCS chosen from the same
            fed-back condition; the frame header carries that condition, so the user reads the MCS from it and
            must set ``user.decoder_condition = "header"``).
        digital_codec: the digital baseline's saved state (``DigitalCodec.save``); empty = the shipped one,
            fitted on the miniature world's aligned-edge latents.
    """

    num_frames: int = 12
    prompts: list[str] = field(default_factory=lambda: ["a photo of a {metaword}"])
    seed: int = 1000
    knowledge_package: str = ""
    condition: str = "feedback"
    feedback_wait_s: float = 2.0
    codec: str = "jscc"
    digital_codec: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        self.check_range("num_frames", 1, MAX_FRAMES)
        self.check_range("seed", 0, 2**32 - 1)
        self.check_range("feedback_wait_s", 0.0, MAX_TIMEOUT_S)
        if not self.prompts:
            raise ConfigError("edge.prompts must hold at least one prompt")
        if self.condition not in ("feedback", "fixed"):
            raise ConfigError(f"edge.condition must be 'feedback' or 'fixed', got {self.condition!r}")
        if self.codec not in ("jscc", "digital"):
            raise ConfigError(f"edge.codec must be 'jscc' or 'digital', got {self.codec!r}")


@dataclass
class UserSection(TomlConfig):
    """The user node: which condition gates its decoder.

    Attributes:
        decoder_condition: ``estimate`` (its own SNR/delay-spread estimate) or ``header`` (the condition the
            edge's encoder used, carried in the frame header). Both are always decoded and measured; this
            picks the one whose image is kept.
        save_images: write each received image as PNG.
    """

    decoder_condition: str = "estimate"
    save_images: bool = True

    def __post_init__(self) -> None:
        if self.decoder_condition not in ("estimate", "header"):
            raise ConfigError(f"user.decoder_condition must be 'estimate' or 'header', got {self.decoder_condition!r}")


@dataclass
class ModelsSection(TomlConfig):
    """The models the nodes load (:func:`dekag.model_set.load_model_set`). All empty = the shipped miniature
    world. Real scale: local folders on each host, nothing downloaded.

    Attributes:
        edge_dir: diffusers pipeline folder of the edge model (UNet or transformer denoiser, e.g. SD 2.1); the
            knowledge package (``edge.knowledge_package``) must have been made for it.
        cloud_dir: diffusers pipeline folder of the cloud model (e.g. PixArt-Σ): the edge's reference images.
        vae_dir: ``AutoencoderKL`` folder the latents are decoded with; empty = the edge pipeline's VAE.
        feature_model_dir: transformers DINO/DINOv2/ViT/CLIP folder for the consistency metric.
        device: torch device of the models (``cpu``, ``cuda``, ``cuda:1``).
    """

    edge_dir: str = ""
    cloud_dir: str = ""
    vae_dir: str = ""
    feature_model_dir: str = ""
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        needed = {"edge_dir": self.edge_dir, "cloud_dir": self.cloud_dir, "feature_model_dir": self.feature_model_dir}
        if (any(needed.values()) or self.vae_dir) and not all(needed.values()):
            missing = sorted(k for k, v in needed.items() if not v)
            raise ConfigError(f"models: local models need edge_dir, cloud_dir and feature_model_dir; missing "
                              f"{missing} (leave all empty for the miniature world)")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"models.device must be 'cpu' or 'cuda[:N]', got {self.device!r}")

    @property
    def miniature(self) -> bool:
        return not self.edge_dir


@dataclass
class TestbedConfig(TomlConfig):
    """Everything a run needs. Sections: ``frame``, ``receiver``, ``link``, ``channel``, ``feedback``,
    ``edge``, ``user``, ``models``; plus ``seed`` and ``name``."""

    __test__ = False  # not a pytest class

    name: str = "default"
    seed: int = 1
    frame: FrameConfig = field(default_factory=FrameConfig)
    receiver: ReceiverConfig = field(default_factory=ReceiverConfig)
    link: LinkSection = field(default_factory=LinkSection)
    channel: ChannelSection = field(default_factory=ChannelSection)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    edge: EdgeSection = field(default_factory=EdgeSection)
    user: UserSection = field(default_factory=UserSection)
    models: ModelsSection = field(default_factory=ModelsSection)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.edge.codec == "digital" and self.user.decoder_condition != "header":
            raise ConfigError("edge.codec = 'digital' needs user.decoder_condition = 'header': the digital "
                              "decoder reads its MCS from the condition the frame header carries")
        if not self.models.miniature and not self.edge.knowledge_package:
            raise ConfigError("models: local edge/cloud folders need edge.knowledge_package (the shipped package "
                              "is made for the miniature edge; build one with dekag-testbed build-package)")


def default_config() -> TestbedConfig:
    """The embedded default: three processes over ZeroMQ, TDL-C with impairments, a changing condition."""
    # CFO and sample-clock offset both follow from the two devices' crystals (Pluto-like ±5 ppm defaults)
    impairments = Impairments(cfo=True, start_offset=True, start_offset_max_samples=500, sample_clock=True,
                              dc_offset=True, iq_imbalance=True, phase_noise=True, quantization=True)
    return TestbedConfig(
        channel=ChannelSection(
            emulator=EmulatorConfig(profile="TDL-C", snr_db=10.0, delay_spread_s=100e-9, carrier_frequency_hz=2.4e9,
                                    seed=1, impairments=impairments),
            snr_db_schedule=[18.0, 12.0, 6.0, 2.0, 6.0, 12.0], delay_spread_s_schedule=[100e-9, 300e-9, 1000e-9],
            frames_per_step=2),
        feedback=FeedbackConfig(endpoint="tcp://127.0.0.1:52102", max_age_s=5.0),
    )
