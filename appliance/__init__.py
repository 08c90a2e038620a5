"""The call-centre core: sans-I/O call logic and the one runtime that drives it."""

__version__ = "0.1.0"
