"""``python -m dsp.callerid``: decode caller ID in an 8 kHz WAV file, or write a caller-ID burst."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from appliance.errors import DspError
from dsp.callerid.messages import FORMATS, CallerId, _datetime_digits
from dsp.callerid.receiver import decode_callerid
from dsp.callerid.sending import callerid_burst
from dsp.wavio import read_wav_8k, write_wav


def _parse_when(text: str) -> tuple[int, int, int, int]:
    try:
        day, clock = text.split()
        month, mday = (int(v) for v in day.split("-"))
        hour, minute = (int(v) for v in clock.split(":"))
    except ValueError:
        raise DspError(f"--datetime must look like 'MM-DD HH:MM', got {text!r}") from None
    _datetime_digits((month, mday, hour, minute))
    return month, mday, hour, minute


def main(argv: list[str] | None = None) -> int:
    """``python -m dsp.callerid FILE.wav`` decodes; ``--generate ... -o OUT.wav`` writes a burst."""
    ap = argparse.ArgumentParser(prog="python -m dsp.callerid", description="Decode caller ID from an 8 kHz WAV, or generate a caller-ID burst.")
    ap.add_argument("file", nargs="?", help="WAV file to decode (mono 8 kHz, 16-bit PCM or A-law)")
    ap.add_argument("--generate", action="store_true", help="write a caller-ID burst instead of decoding")
    ap.add_argument("--number", help="calling number (digits)")
    ap.add_argument("--name", default="", help="calling name (MDMF only; Chinese goes as GBK)")
    ap.add_argument("--format", choices=FORMATS, default="mdmf")
    absent = ap.add_mutually_exclusive_group()
    absent.add_argument("--private", action="store_true", help="number withheld by the caller ('P')")
    absent.add_argument("--unavailable", action="store_true", help="number not available ('O')")
    ap.add_argument("--datetime", help="'MM-DD HH:MM' (default: now; not sent by DTMF)")
    ap.add_argument("--level", type=float, help="dBm0 (default -13.5 for FSK, -10 a tone for DTMF)")
    ap.add_argument("-o", "--output", help="WAV file to write with --generate")
    args = ap.parse_args(argv)

    if not args.generate:
        if not args.file:
            ap.error("give a WAV file to decode, or --generate")
        try:
            x = read_wav_8k(args.file)
        except (OSError, DspError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            cid = decode_callerid(x)
        except DspError as exc:
            print(f"no caller ID in {args.file}: {exc}", file=sys.stderr)
            return 1
        for key, value in cid.fields():
            print(f"{key}: {value}")
        return 0

    if not args.output:
        ap.error("--generate needs -o OUT.wav")
    reason = "P" if args.private else "O" if args.unavailable else None
    if bool(args.number) == bool(reason):
        ap.error("--generate needs --number, or --private / --unavailable instead of a number")
    try:
        when = _parse_when(args.datetime) if args.datetime else tuple(time.localtime()[1:5])
        cid = CallerId(number=args.number or "", name=args.name, datetime=when,  # type: ignore[arg-type]
                       number_absent_reason=reason,
                       name_absent_reason=reason if reason and not args.name and args.format == "mdmf" else None,
                       format=args.format)
        burst = callerid_burst(cid, level_dbm0=args.level)
        gap = np.zeros(burst.rate // 5, np.int16)
        write_wav(args.output, np.concatenate((gap, burst.samples, gap)))
    except DspError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
