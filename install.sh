#!/usr/bin/env bash
# Installs worldjepa and everything it needs on a fresh Debian/Ubuntu machine with Python >= 3.10, into
# the virtual environment .venv (WORLDJEPA_VENV to put it elsewhere; made here if it does not exist, so a
# system Python that refuses `pip install` (PEP 668) is never touched). Enter it with `. .venv/bin/activate`.
#
# Root also gets the Debian packages: headless OpenGL for MuJoCo rendering (EGL via Mesa, OSMesa as the
# fallback) and python3-venv. Every Python package is pinned by constraints.txt, the set CI tested
# (torch 2.13.0 CPU among them); the package itself accepts a range (pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${WORLDJEPA_VENV:-.venv}

debian_packages="libegl1 libgl1-mesa-dri libosmesa6 python3-venv"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $debian_packages >/dev/null
elif command -v apt-get >/dev/null 2>&1; then
  echo "note: not root; if rendering or venv creation fails, run: sudo apt-get install $debian_packages" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# constraints.txt holds wheels for the Python CI runs (3.11); another Python resolves within pyproject's
# bounds, with torch still pinned.
python_version=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$python_version" = 3.11 ]; then
  pins=(-c constraints.txt)
else
  echo "note: constraints.txt was tested on Python 3.11; Python $python_version gets the newest versions within pyproject.toml's bounds" >&2
  pins=("torch==2.13.0")
fi
"$VENV/bin/python" -m pip install -q "${pins[@]}" -e ".[test]"
echo "worldjepa is installed in $VENV: run its commands as $VENV/bin/worldjepa, or enter it with . $VENV/bin/activate"
