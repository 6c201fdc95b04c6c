"""``dekag-testbed``: the command line.

    dekag-testbed run                      # the whole emulated loop: channel, user and edge processes
    dekag-testbed run --config lab.toml    # any TOML config (see `dekag-testbed config`)
    dekag-testbed edge    --config lab.toml --out runs/x    # one node alone (two hosts, two Plutos)
    dekag-testbed user    --config lab.toml --out runs/x
    dekag-testbed channel --config lab.toml --out runs/x
    dekag-testbed report runs/x            # figures + summary.md of a (possibly partial) run folder
    dekag-testbed replay capture.sigmf-meta --out runs/r   # the receiver over a SigMF recording
    dekag-testbed config                   # print the embedded default configuration as TOML
    dekag-testbed train-world | align | train | build-package   # dekag training commands (each has --help)
    dekag-testbed bench NAME [--smoke]      # a benchmark from bench/
    dekag-testbed calibrate NAME            # per-device calibration: oscillator, gain-snr, dc-iq, delay, estimator-bias
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from common.tomlconfig import ConfigError
from experiments import exit_codes
from experiments.config import TestbedConfig, default_config

REPO = Path(__file__).resolve().parent.parent
OVERRIDES = (("frames", "edge", "num_frames"), ("backend", "link", "backend"),
             ("feedback_endpoint", "feedback", "endpoint"))
"""(command-line option, config section, key) of the node commands' overrides."""


def _sigterm_as_interrupt() -> None:
    def handler(signum, frame):
        raise exit_codes.Stopped(signum)
    signal.signal(signal.SIGTERM, handler)


def load_config(path: str | None) -> TestbedConfig:
    return TestbedConfig.load(path) if path else default_config()


def _apply_overrides(cfg: TestbedConfig, args: argparse.Namespace) -> TestbedConfig:
    """The config with the command line's overrides, validated like any other change."""
    changes = {section: {key: getattr(args, option)} for option, section, key in OVERRIDES
               if getattr(args, option, None) is not None}
    return cfg.replace(**changes)


def _out_dir(args: argparse.Namespace, cfg: TestbedConfig) -> Path:
    if args.out:
        return Path(args.out)
    return Path("runs") / f"{datetime.now():%Y%m%d-%H%M%S}-{cfg.name}"


def _node(role: str, args: argparse.Namespace) -> int:
    from experiments import nodes  # heavy imports (torch, diffusers, sionna) only for node commands

    cfg = _apply_overrides(load_config(args.config), args)
    return nodes.run_node(role, cfg, _out_dir(args, cfg))


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _apply_overrides(load_config(args.config), args)
    if not cfg.link.session_token:  # the run's own virtual-RF ports: other local processes get no samples
        cfg = cfg.replace(link={"session_token": secrets.token_hex(16)})
    out = _out_dir(args, cfg)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.toml")
    print(f"run folder: {out}", flush=True)
    if cfg.link.backend == "emulator":
        from experiments import nodes
        rc = nodes.run_in_process(cfg, out)
    else:
        rc = _run_processes(cfg, out, with_channel=cfg.link.backend == "zmq")
    from experiments.report import build_report
    summary = build_report(out)
    print(summary.read_text(), flush=True)
    return rc


def node_command(role: str, out: Path) -> list[str]:
    """The command line of one node of a ``run`` (its config is the run folder's)."""
    return [sys.executable, "-m", "experiments.cli", role, "--config", str(out / "config.toml"), "--out", str(out)]


def _run_processes(cfg: TestbedConfig, out: Path, with_channel: bool, command=node_command) -> int:
    """Start channel (if emulated), user and edge as separate processes (``command(role, out)``) and wait for
    edge and user. When a node fails (or the channel stops while the others run), the others are stopped and
    the parent says which and why; the run's exit status is that node's (:mod:`experiments.exit_codes`)."""
    roles = (["channel"] if with_channel else []) + ["user", "edge"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = {}
    for role in roles:
        cmd = command(role, out)
        log = open(out / f"{role}.log", "w")
        procs[role] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=os.getcwd()), log)
    from tqdm import tqdm

    from experiments.run_folder import read_jsonl

    status = exit_codes.OK
    bar = tqdm(total=cfg.edge.num_frames, desc="frames decoded at the user", unit="frame")
    # once the edge is done, the user may still wait for its last frame up to this long
    grace_s = cfg.link.timeout_s * cfg.link.max_peer_timeouts + 5
    try:
        deadline = None
        while True:
            decoded = sum(1 for r in read_jsonl(out / "user.results.jsonl") if r.get("frame_id") is not None)
            if decoded > bar.n:
                bar.update(decoded - bar.n)
            codes = {role: proc.poll() for role, (proc, _) in procs.items()}
            failed = [r for r in roles if codes[r] is not None and (codes[r] != 0 or r == "channel")]
            if failed:
                role = failed[0]
                code = exit_codes.shell_status(codes[role])
                status = code or exit_codes.NODE_STOPPED
                print(f"dekag-testbed: the {role} node exited with status {code} ({exit_codes.describe(status)})"
                      f"{_last_error(out, role)}; stopping the others. See {out / (role + '.log')}", flush=True)
                break
            if codes["edge"] is not None and codes["user"] is not None:
                break
            if codes["edge"] is not None and deadline is None:
                deadline = time.monotonic() + grace_s
            if deadline is not None and time.monotonic() > deadline:
                print(f"dekag-testbed: the user node did not finish within {grace_s} s of the edge; stopping it",
                      flush=True)
                status = exit_codes.NODE_STOPPED
                break
            time.sleep(0.2)
    except KeyboardInterrupt as exc:
        print("interrupted: stopping the nodes (results so far are kept)", flush=True)
        status = exit_codes.status_of(exc)
    finally:
        bar.close()
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, log in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
    return status


def _last_error(out: Path, role: str) -> str:
    """``": <error>"`` of the node's last event that carries one (empty if none)."""
    from experiments.run_folder import read_jsonl
    errors = [e["error"] for e in read_jsonl(out / f"{role}.events.jsonl") if "error" in e]
    return f": {errors[-1]}" if errors else ""


def cmd_report(args: argparse.Namespace) -> int:
    from experiments.report import build_report
    print(build_report(args.run_dir).read_text())
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from experiments import nodes
    cfg = load_config(args.config)
    return nodes.replay(cfg, Path(args.recording), _out_dir(args, cfg))


def cmd_config(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    sys.stdout.write(cfg.to_toml_str())
    return 0


def _delegate(module: str, argv: list[str]) -> int:
    import importlib
    return importlib.import_module(module).main(argv) or 0


def cmd_bench(args: argparse.Namespace) -> int:
    script = REPO / "bench" / f"{args.name}.py"
    if not script.is_file():
        names = sorted(p.stem for p in (REPO / "bench").glob("*.py"))
        raise SystemExit(f"no benchmark {args.name!r}; available: {', '.join(names)}")
    return subprocess.call([sys.executable, str(script), *args.rest])  # the script's own arguments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dekag-testbed", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def node_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", help="TOML configuration (default: the embedded one; see `config`)")
        sp.add_argument("--out", help="run folder (default: runs/<time>-<name>)")
        sp.add_argument("--frames", type=int, help="override edge.num_frames")
        sp.add_argument("--backend", choices=["zmq", "emulator", "pluto"], help="override link.backend")
        sp.add_argument("--feedback-endpoint", help="override feedback.endpoint (two hosts: the user binds "
                                                    "tcp://0.0.0.0:PORT, the edge connects tcp://USER_HOST:PORT)")

    sp = sub.add_parser("run", help="run edge, channel and user together and write a run folder")
    node_args(sp)
    sp.set_defaults(func=cmd_run)
    for role, text in (("edge", "the edge node alone: generate, encode with CALA, transmit"),
                       ("user", "the user node alone: receive, feed CSI back, decode, measure"),
                       ("channel", "the channel node alone: the emulator between two ZeroMQ RF ports")):
        sp = sub.add_parser(role, help=text)
        node_args(sp)
        sp.set_defaults(func=lambda a, r=role: _node(r, a))
    sp = sub.add_parser("report", help="figures and summary.md of a run folder")
    sp.add_argument("run_dir")
    sp.set_defaults(func=cmd_report)
    sp = sub.add_parser("replay", help="run the receiver (and decoder) over a SigMF recording")
    sp.add_argument("recording", help="path to a .sigmf-meta (or .sigmf-data) file")
    sp.add_argument("--config")
    sp.add_argument("--out")
    sp.set_defaults(func=cmd_replay)
    sp = sub.add_parser("config", help="print a configuration as TOML (the embedded default without --config)")
    sp.add_argument("--config")
    sp.set_defaults(func=cmd_config)
    for name, (module, text) in DELEGATED.items():
        sub.add_parser(name, help=f"{text} (python -m {module}; `{name} --help` for its options)", add_help=False)
    sp = sub.add_parser("bench", help="run a benchmark from bench/ (JSON to bench/results/): bench NAME [ARGS]")
    sp.add_argument("name")
    sp.set_defaults(func=cmd_bench)
    return p


DELEGATED = {"train-world": ("dekag.miniature.train_world", "train the miniature world"),
             "align": ("dekag.makd.align", "MAKD: metaword + G-LoRA, with baselines"),
             "train": ("experiments.tka_training", "T-KA: JSCC codec + CALA, with baselines"),
             "build-package": ("dekag.downlink", "the downlink knowledge package from a MAKD and a T-KA run"),
             "calibrate": ("calibration.cli", "per-device calibration: JSON, PNG and a device profile"),
             "study": ("experiments.studies.base", "a study (csi, mismatch, staleness): rows, figures, report")}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) > 1 and argv[0] == "bench" and not argv[1].startswith("-"):
        return cmd_bench(argparse.Namespace(name=argv[1], rest=argv[2:]))
    delegated = argv[0] in DELEGATED if argv else False   # their own argument parsers, --help included
    args = None if delegated else build_parser().parse_args(argv)
    _sigterm_as_interrupt()
    try:
        return _delegate(DELEGATED[argv[0]][0], argv[1:]) if delegated else args.func(args)
    except ConfigError as exc:
        print(f"dekag-testbed: configuration error: {exc}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    except KeyboardInterrupt as exc:
        return exit_codes.status_of(exc)


if __name__ == "__main__":
    sys.exit(main())
