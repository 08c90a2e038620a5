"""DTMF (ITU-T Q.23/Q.24): the generator, the streaming receiver for many channels, offline key events.

``python -m dsp.dtmf FILE.wav`` lists the keys in a file; see ``dsp.dtmf.__main__``.
"""

from dsp.dtmf.generator import DTMF_FREQS, DTMF_KEYS, dtmf_digit, dtmf_generate
from dsp.dtmf.offline import detect_digits, dtmf_events
from dsp.dtmf.receiver import DtmfDetector

__all__ = ["DTMF_FREQS", "DTMF_KEYS", "DtmfDetector", "dtmf_digit", "dtmf_generate", "dtmf_events", "detect_digits"]
