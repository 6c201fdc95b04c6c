#!/usr/bin/env bash
# One-stop set-up for a fresh Debian/Ubuntu machine, then run something.
#
#   bash bootstrap.sh run      # set up, then run the main job on the embedded default (emulator, miniature models)
#   bash bootstrap.sh test     # set up, then run the default test suite (fast tier)
#   bash bootstrap.sh test -m slow        # extra pytest arguments pass through
#   bash bootstrap.sh shell    # set up, then print how to activate the environment
#
# Environment: VENV (default .venv), DEKAG_NO_SDR=1 to skip pyadi-iio/libiio.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
action=${1:-test}; shift || true

say() { printf '[bootstrap] %s\n' "$*" >&2; }

have_libiio() { ldconfig -p 2>/dev/null | grep -q 'libiio\.so\.0'; }

install_libiio() {
    [ "${DEKAG_NO_SDR:-0}" = 1 ] && return 1
    have_libiio && return 0
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
            say "libiio0 is not installed and I cannot run apt-get as root here."
            say "For the Pluto backend run: sudo apt-get install -y libiio0   (then re-run this script)."
            return 1
        fi
    fi
    say "installing Debian's libiio0 (C library behind pyadi-iio)"
    if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq libiio0 >/dev/null; }; then
        say "apt-get could not install libiio0: the Pluto backend will be unavailable (emulator and ZMQ backends still work)."
        return 1
    fi
}

if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV"
    $PY -m venv "$VENV" || { say "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"; exit 1; }
fi
stamp="$VENV/.dekag-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch first and pinned: 2.13.0 is the local CPU build; a bare 'torch' pulls a multi-GB CUDA build.
    "$VENV/bin/python" -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
    extras="test"
    if install_libiio; then extras="test,sdr"; fi
    say "installing dekag-testbed[$extras]"
    "$VENV/bin/python" -m pip install -q -e ".[$extras]"
    touch "$stamp"
fi

case "$action" in
    run)   exec "$VENV/bin/dekag-testbed" run "$@" ;;
    test)  exec "$VENV/bin/python" -m pytest "$@" ;;   # pytest exits 5 when no test ran: that fails this script too
    shell) say "environment ready: source $VENV/bin/activate" ;;
    *)     say "unknown action '$action' (run | test | shell)"; exit 2 ;;
esac
