"""The one error tree of the project; a leaf module that every package may import."""


class ApplianceError(Exception):
    """Root of every error the appliance raises on purpose."""


class ConfigError(ApplianceError):
    """A configuration value, key or file is wrong; the message names the key and what is allowed."""


class DriverError(ApplianceError):
    """A card, port or device failed or was asked for something it cannot do."""


class ProtocolError(ApplianceError):
    """A peer sent bytes or a request that break the protocol in use."""


class DspError(ApplianceError, ValueError):
    """A signal-processing function got an array of the wrong shape, type or range."""


class AudioFileError(DspError, ProtocolError):
    """An audio file is not a WAV file we can read: both bad DSP input and a broken file format."""
