"""``python -m microcinema_core.train``: the trainer's command line (see ``training/cli.py``)."""
import sys

from .training.cli import main

if __name__ == "__main__":
    sys.exit(main())
