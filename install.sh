#!/usr/bin/env bash
# Installs worldjepa and everything it needs on a fresh Debian/Ubuntu machine with Python >= 3.10:
# headless OpenGL for MuJoCo rendering (EGL via Mesa, OSMesa as the fallback), then the package with its
# test extras. torch is pinned to the CPU build CI uses; the package itself accepts torch >= 2.3.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

gl_packages="libegl1 libgl1-mesa-dri libosmesa6"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $gl_packages >/dev/null
elif command -v apt-get >/dev/null 2>&1; then
  echo "note: not root; if rendering fails, run: sudo apt-get install $gl_packages" >&2
fi

"$PYTHON" -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
"$PYTHON" -m pip install -q -e ".[test]"
# transformers is a test-only oracle (IJepaModel / VJEPA2Model parity); its tests skip without it.
"$PYTHON" -m pip install -q "transformers>=4.50" || echo "note: transformers unavailable; its parity tests will skip" >&2
