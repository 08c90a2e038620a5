"""Caller ID on analog lines (YD/T 1277, Bellcore GR-30): messages, FSK and DTMF bursts, decoders, a command line.

FSK caller ID goes between the first and second ring: a channel seizure (300
bits of 0101...), 180 mark bits, then one message in Bell 202 async bytes:
type, length, parameters, checksum (two's complement of the byte sum). SDMF
(type 0x04) carries MMDDHHMM and the number (or 'O' unavailable, 'P'
private); MDMF (0x80) carries parameters, here date-time (0x01), number
(0x02), reason for absent number (0x04), name (0x07, GBK or ASCII) and reason
for absent name (0x08). DTMF caller ID goes before the first ring as keys: a
start key, the number, an end key (ETSI EN 300 659-1 annex B and its national
variants, and whatever digit string spandsp's ADSI_STANDARD_CLIP_DTMF sends).
"""

from dsp.callerid.messages import (ABSENT_REASONS, FORMATS, MDMF, SDMF, CallerId, checksum, dtmf_keys,
                                   encode_message, parse_dtmf_keys, parse_message)
from dsp.callerid.receiver import CallerIdReceiver, decode_callerid
from dsp.callerid.sending import CallerIdBurst, callerid_burst, fsk_burst

__all__ = [
    "SDMF", "MDMF", "ABSENT_REASONS", "FORMATS", "CallerId", "CallerIdBurst", "CallerIdReceiver", "checksum",
    "encode_message", "parse_message", "dtmf_keys", "parse_dtmf_keys", "fsk_burst", "callerid_burst",
    "decode_callerid",
]
