"""``dekag-testbed calibrate NAME``: run one calibration routine, write NAME.json + NAME.png, update a profile.

    dekag-testbed calibrate oscillator --cfo-ppm 7.5                   # emulator with an injected offset
    dekag-testbed calibrate dc-iq --backend fake-pluto --iq-phase-deg 2
    dekag-testbed calibrate gain-snr --backend pluto --uri ip:192.168.2.1 --profile lab.toml --key SERIAL
    dekag-testbed calibrate estimator-bias --channel TDL-C --snr-db 5 10 20 --delay-spread-ns 30 300
    dekag-testbed calibrate delay --from-profile lab.toml --key SERIAL   # an emulator impersonating a device

Backends: ``emulator`` (the Sionna emulator with the impairments given on the command line),
``fake-pluto`` (:class:`radio.backends.FakePluto` through :class:`radio.backends.PlutoBackend`, the same
impairments in its air channel), ``pluto`` (a real device at ``--uri``). With ``--profile FILE`` the
measured fields are written into that device's profile (key ``--key``: the device serial; default its
URI), keeping every other field and device.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from calibration.dc_iq import measure_dc_iq
from calibration.estimator_bias import EstimatorBiasResult, measure_estimator_bias
from calibration.gain_snr import measure_gain_snr
from calibration.loopback_delay import measure_delay
from calibration.oscillator import measure_oscillator
from common.provenance import provenance
from radio import FrameConfig, Impairments
from radio.backends import (
    EmulatedBackend,
    FakePluto,
    PlutoBackend,
    PlutoConfig,
    RadioBackend,
)
from radio.device_profile import (
    DeviceProfile,
    MeasurementConditions,
    find_profile,
    load_profiles,
    save_profile,
)

ROUTINES = ("oscillator", "gain-snr", "dc-iq", "delay", "estimator-bias")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dekag-testbed calibrate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("name", choices=ROUTINES)
    p.add_argument("--backend", choices=["emulator", "fake-pluto", "pluto"], default="emulator")
    p.add_argument("--uri", default="ip:192.168.2.1", help="Pluto libiio URI")
    p.add_argument("--center-frequency-hz", type=float, default=2.4e9)
    p.add_argument("--sample-rate-hz", type=float, default=3.84e6)
    p.add_argument("--tx-gain-db", type=float, help="TX gain (default: 0 on the emulator, -30 on a Pluto)")
    p.add_argument("--rx-gain-db", type=float, help="RX gain (default: 0 on the emulator, 30 on a Pluto)")
    p.add_argument("--out", default="runs/calibration", help="folder for NAME.json and NAME.png")
    p.add_argument("--profile", help="profile file (TOML) to update with what was measured")
    p.add_argument("--key", help="the device's key in the profile file: its serial (default: its URI)")
    p.add_argument("--firmware", default="", help="device firmware, recorded in the profile")
    p.add_argument("--link", default="", help="what connects TX and RX, recorded in the profile")
    p.add_argument("--captures", type=int, default=4, help="captures (oscillator, dc-iq, delay)")
    p.add_argument("--frames", type=int, default=8, help="frames per condition (estimator-bias) or per gain")
    p.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("gain-snr")
    g.add_argument("--tx-gains-db", type=float, nargs="+", help="TX gains to sweep "
                   "(default: -10..20 step 3 on the emulator, -60..0 step 5 on a Pluto)")
    g.add_argument("--target-snr-db", type=float, help="print the TX gain that gives this SNR")
    g = p.add_argument_group("estimator-bias on a Pluto or the fake (the emulator uses its truth)")
    g.add_argument("--reference-snr-db", type=float, help="known SNR of the link")
    g.add_argument("--reference-delay-spread-ns", type=float, default=0.0, help="known delay spread (cable: 0)")
    g = p.add_argument_group("emulator / fake-pluto channel: what to inject")
    g.add_argument("--channel", default="AWGN", help="AWGN, Rayleigh, TDL-A..TDL-E")
    g.add_argument("--snr-db", type=float, nargs="+", default=[25.0],
                   help="SNR (estimator-bias: every value is a condition; fake-pluto: ignored, its gains set it)")
    g.add_argument("--delay-spread-ns", type=float, nargs="+", default=[100.0],
                   help="RMS delay spread of TDL channels (estimator-bias: every value is a condition)")
    g.add_argument("--cfo-ppm", type=float, help="carrier offset")
    g.add_argument("--dc-dbc", type=float, help="DC offset relative to the received power")
    g.add_argument("--iq-amplitude-db", type=float, help="IQ amplitude imbalance")
    g.add_argument("--iq-phase-deg", type=float, help="IQ phase imbalance")
    g.add_argument("--start-offset", type=int, help="largest random number of leading samples")
    g.add_argument("--phase-noise-hz", type=float, help="LO linewidth")
    g.add_argument("--from-profile", help="impersonate the device of this profile file (with --key)")
    return p


# ---------------------------------------------------------------------------------------------- backends

def injected_impairments(args: argparse.Namespace) -> Impairments:
    """The emulator impairments the command line asks for (or those of ``--from-profile``)."""
    base = Impairments()
    if args.from_profile:
        base = find_profile(args.from_profile, serial=args.key or "", uri=args.key or args.uri).impairments()
    flags = {"cfo_ppm": ("cfo", args.cfo_ppm), "dc_offset_dbc": ("dc_offset", args.dc_dbc),
             "iq_amplitude_db": ("iq_imbalance", args.iq_amplitude_db),
             "iq_phase_deg": ("iq_imbalance", args.iq_phase_deg),
             "start_offset_max_samples": ("start_offset", args.start_offset),
             "phase_noise_linewidth_hz": ("phase_noise", args.phase_noise_hz)}
    for field_name, (switch, value) in flags.items():
        if value is not None:
            base = replace(base, **{field_name: value, switch: True})
    return base


def open_backend(args: argparse.Namespace, snr_db: float, delay_spread_s: float) -> RadioBackend:
    """The backend the command line names; emulated channels carry the injected impairments."""
    cfg = FrameConfig.at_sample_rate(args.sample_rate_hz)
    if args.backend == "pluto":
        return PlutoBackend(_pluto_config(args))
    from radio.emulator import Emulator  # lazy: Sionna

    emulator = Emulator(cfg, profile=args.channel, snr_db=snr_db if args.backend == "emulator" else 60.0,
                        delay_spread_s=delay_spread_s, carrier_frequency_hz=args.center_frequency_hz,
                        seed=args.seed, impairments=injected_impairments(args))
    if args.backend == "emulator":
        return EmulatedBackend(emulator, sample_rate_hz=args.sample_rate_hz,
                               center_frequency_hz=args.center_frequency_hz,
                               tx_gain_db=args.tx_gain_db or 0.0, rx_gain_db=args.rx_gain_db or 0.0)
    def air(burst: np.ndarray) -> np.ndarray:   # the emulator expects unit power: scale in and out
        rms = float(np.sqrt(np.mean(np.abs(burst) ** 2)))
        return emulator((burst / rms).astype(np.complex64))[0] * rms

    return PlutoBackend(_pluto_config(args), device=FakePluto(args.uri, channel=air, seed=args.seed))


def _pluto_config(args: argparse.Namespace) -> PlutoConfig:
    return PlutoConfig(uri=args.uri, sample_rate_hz=args.sample_rate_hz, center_frequency_hz=args.center_frequency_hz,
                       tx_gain_db=-30.0 if args.tx_gain_db is None else args.tx_gain_db,
                       rx_gain_db=30.0 if args.rx_gain_db is None else args.rx_gain_db)


# ---------------------------------------------------------------------------------------------- routines

def run_routine(args: argparse.Namespace, out: Path) -> tuple[Any, RadioBackend]:
    """Run the routine, write its figure; returns the result and the (closed) backend it ran on."""
    cfg = FrameConfig.at_sample_rate(args.sample_rate_hz)
    png = out / f"{args.name}.png"
    if args.name == "estimator-bias":
        return _estimator_bias(args, cfg, png)
    with open_backend(args, args.snr_db[0], args.delay_spread_ns[0] * 1e-9) as backend:
        if args.name == "oscillator":
            result, last = measure_oscillator(backend, captures=args.captures)
            result.plot(png, last)
        elif args.name == "dc-iq":
            result, last = measure_dc_iq(backend, captures=args.captures)
            result.plot(png, last, backend.sample_rate_hz)
        elif args.name == "delay":
            known = _known_profile(args)
            result = measure_delay(backend, captures=args.captures, seed=args.seed,
                                   cfo_hz=known.cfo_hz(backend.center_frequency_hz) if known else 0.0)
            result.plot(png)
        else:
            default = np.arange(-10, 21, 3) if args.backend == "emulator" else np.arange(-60, 1, 5)
            gains = args.tx_gains_db or [float(g) for g in default]
            result = measure_gain_snr(backend, cfg, gains, frames=min(args.frames, 4), seed=args.seed)
            result.plot(png)
    return result, backend


def _estimator_bias(args: argparse.Namespace, cfg: FrameConfig, png: Path) -> tuple[EstimatorBiasResult, RadioBackend]:
    points = []
    if args.backend != "emulator":   # over the air (or the fake's air): the user knows the reference
        if args.reference_snr_db is None:
            raise SystemExit(f"estimator-bias on {args.backend} needs --reference-snr-db "
                             "(and --reference-delay-spread-ns; a cable has 0)")
        with open_backend(args, math.nan, 0.0) as backend:
            reference = (args.reference_snr_db, args.reference_delay_spread_ns * 1e-9)
            points.append(measure_estimator_bias(backend, cfg, label=f"reference {args.reference_snr_db:g} dB",
                                                 frames=args.frames, reference=reference, seed=args.seed))
    else:
        tdl = args.channel.startswith("TDL")
        for snr in args.snr_db:
            for ds_ns in args.delay_spread_ns if tdl else [0.0]:
                with open_backend(args, snr, ds_ns * 1e-9) as backend:
                    label = f"{args.channel} {snr:g} dB" + (f" {ds_ns:g} ns" if tdl else "")
                    points.append(measure_estimator_bias(backend, cfg, label=label, frames=args.frames,
                                                         seed=args.seed))
    result = EstimatorBiasResult(points)
    result.plot(png)
    return result, backend


def _profile_key(args: argparse.Namespace) -> str:
    return args.key or (args.uri if args.backend != "emulator" else "emulator")


def _known_profile(args: argparse.Namespace) -> DeviceProfile | None:
    """The device's profile as calibrated so far (``--profile``), if any."""
    return load_profiles(args.profile).get(_profile_key(args)) if args.profile else None


def update_profile(args: argparse.Namespace, result: Any, backend: RadioBackend) -> tuple[str, DeviceProfile]:
    """Write the measured fields into the device's profile in ``args.profile``; returns key and profile."""
    key = _profile_key(args)
    profile = _known_profile(args) or DeviceProfile(serial=args.key or "", uri=args.uri)
    gains = backend.gains
    conditions = MeasurementConditions(center_frequency_hz=backend.center_frequency_hz,
                                       sample_rate_hz=backend.sample_rate_hz,
                                       tx_gain_db=gains.get("tx_gain_db"), rx_gain_db=gains.get("rx_gain_db"),
                                       link=args.link or profile.conditions.link, backend=args.backend)
    profile = replace(profile, date=date.today().isoformat(), firmware=args.firmware or profile.firmware,
                      conditions=conditions)
    profile = result.update(profile)
    save_profile(args.profile, profile, key)
    return key, profile


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result, backend = run_routine(args, out)
    record: dict[str, Any] = {"routine": args.name, "backend": backend.describe(), "result": result.to_dict(),
                              "provenance": provenance()}
    if args.backend != "pluto":
        record["injected"] = injected_impairments(args).to_dict() | {"channel": args.channel, "snr_db": args.snr_db}
    try:
        if args.name == "gain-snr" and args.target_snr_db is not None:
            record["tx_gain_for_target_db"] = result.update(DeviceProfile()).tx_gain_for_snr(args.target_snr_db)
            print(f"TX gain for {args.target_snr_db:g} dB SNR: {record['tx_gain_for_target_db']:.2f} dB")
        if args.profile:
            key, _ = update_profile(args, result, backend)
            record["profile"] = {"file": args.profile, "key": key}
            print(f"profile {key!r} updated in {args.profile}")
    except ValueError as exc:   # the measurement holds nothing to store (no frame decoded, no linear range)
        print(f"dekag-testbed calibrate {args.name}: {exc}", file=sys.stderr)
        return 1
    finally:
        (out / f"{args.name}.json").write_text(json.dumps(_jsonable(record), indent=1) + "\n")
        print(f"wrote {out / (args.name + '.json')} and {out / (args.name + '.png')}")
    return 0


def _jsonable(value: Any) -> Any:
    """Strict JSON: NaN → null, ±inf → "inf"/"-inf", numpy scalars → Python."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
