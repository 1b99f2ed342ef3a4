#!/usr/bin/env bash
# Makes sure a moto_server of the pinned version exists for the integration tests, and prints its path
# on the last line of stdout ("moto_server: PATH").
#
# The project installs its own moto into .venv/ rather than relying on whatever is on the machine: a
# fresh CI machine has nothing, and moto 5.2.0 broke S3 uploads, so the version is pinned (design.md §6).
# MOTO_SERVER_BIN=/path/to/moto_server skips the virtualenv entirely (a developer's own install).
# PYTHON=/path/to/python3 picks the interpreter the virtualenv is built from.
set -euo pipefail

readonly MOTO_VERSION=5.2.5

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
bin="$venv/bin/moto_server"
# Written only after a complete install, so an interrupted pip run is redone rather than trusted.
marker="$venv/.moto-server-$MOTO_VERSION"

if [[ -n "${MOTO_SERVER_BIN:-}" ]]; then
  if [[ ! -x "$MOTO_SERVER_BIN" ]]; then
    echo "moto-venv: MOTO_SERVER_BIN=$MOTO_SERVER_BIN is not an executable file" >&2
    exit 1
  fi
  echo "moto_server: $MOTO_SERVER_BIN (from MOTO_SERVER_BIN)"
  exit 0
fi

installed_ok() {
  # The dist-info check catches a venv whose moto was changed by hand after the marker was written;
  # running the interpreter catches a venv whose base Python has gone (pyenv upgrade, moved tree).
  [[ -f "$marker" && -x "$bin" ]] \
    && compgen -G "$venv/lib/python*/site-packages/moto-$MOTO_VERSION.dist-info" >/dev/null \
    && "$venv/bin/python" -c '' 2>/dev/null
}

if installed_ok; then
  echo "moto_server: $bin"
  exit 0
fi

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  for candidate in python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$(command -v "$candidate")"; break; fi
  done
fi
if [[ -z "$python" ]]; then
  echo "moto-venv: no python3 found; install Python >= 3.9 or set MOTO_SERVER_BIN" >&2
  exit 1
fi
# moto 5.2 requires Python 3.9+; saying so here beats a pip resolver error about no matching version.
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)'; then
  echo "moto-venv: $python is $("$python" --version 2>&1); moto $MOTO_VERSION needs Python >= 3.9" >&2
  exit 1
fi

if [[ -d "$venv" ]] && ! "$venv/bin/python" -c '' 2>/dev/null; then
  echo "moto-venv: $venv is broken (its Python no longer runs); recreating it" >&2
  rm -rf "$venv"
fi
if [[ ! -d "$venv" ]]; then
  echo "moto-venv: creating $venv with $python" >&2
  "$python" -m venv "$venv"
fi

rm -f "$venv"/.moto-server-*
echo "moto-venv: installing moto[server]==$MOTO_VERSION into $venv" >&2
start=$SECONDS
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
"$venv/bin/python" - "$MOTO_VERSION" <<'PY'
import sys
import moto
import flask  # moto_server's own dependency: proves the [server] extra came along
if moto.__version__ != sys.argv[1]:
    sys.exit(f"moto-venv: expected moto {sys.argv[1]}, found {moto.__version__}")
PY
touch "$marker"
echo "moto-venv: installed in $((SECONDS - start)) s" >&2

echo "moto_server: $bin"
