#!/usr/bin/env bash
# The main job: a video through a real ComfyUI host with this pack (see scripts/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python scripts/demo.py "$@"
