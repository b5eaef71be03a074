"""Errors the pack raises on bad input. Every message names the input and says what to do."""


class MicroCinemaInputError(ValueError):
    """A user-supplied tensor, number or option is unusable (shape, range, NaN...)."""


class CheckpointError(ValueError):
    """A weights file is not what the loader expects (wrong kind, missing or mismatched tensors)."""
