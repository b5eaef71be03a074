"""Reading SD2.1 checkpoints and reading/writing MicroCinema checkpoints."""
