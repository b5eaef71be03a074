#!/usr/bin/env bash
# The main job: a video through a real ComfyUI host with this pack (see scripts/demo.py).
#   bash scripts/demo.sh            the shipped toy workflow on the embedded toy bundle (models/)
#   bash scripts/demo.sh --smoke    the same on random-weight stand-ins (before the bundle is trained)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python -m scripts.demo "$@"
