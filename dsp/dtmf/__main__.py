"""``python -m dsp.dtmf``: list the DTMF keys in an 8 kHz WAV file, or write keys to one."""

from __future__ import annotations

import argparse
import sys

from appliance.errors import DspError
from dsp.dtmf.generator import dtmf_generate
from dsp.dtmf.offline import dtmf_events
from dsp.wavio import read_wav_8k, write_wav


def main(argv: list[str] | None = None) -> int:
    """``python -m dsp.dtmf FILE.wav`` lists the keys; ``--generate DIGITS -o OUT.wav`` writes them."""
    ap = argparse.ArgumentParser(prog="python -m dsp.dtmf",
                                 description="Find DTMF keys in an 8 kHz WAV (16-bit or A-law), or generate them.")
    ap.add_argument("file", nargs="?", help="WAV file to read: prints 'KEY START_S END_S' per key")
    ap.add_argument("--generate", metavar="DIGITS", help="keys to generate (0-9 * # A-D)")
    ap.add_argument("-o", "--output", metavar="OUT.wav", help="where --generate writes 16-bit PCM")
    ap.add_argument("--level", type=float, default=-10.0, help="dBm0 of each tone (default -10)")
    ap.add_argument("--on", type=float, default=100.0, help="tone duration, ms (default 100)")
    ap.add_argument("--off", type=float, default=100.0, help="pause after each key, ms (default 100)")
    ap.add_argument("--twist", type=float, default=0.0, help="dB the high tone is below the low one")
    args = ap.parse_args(argv)
    try:
        if args.generate is not None:
            if not args.output or args.file:
                ap.error("--generate needs -o OUT.wav and no input file")
            write_wav(args.output, dtmf_generate(args.generate, args.level, args.on / 1000.0, args.off / 1000.0,
                                                 args.twist))
            return 0
        if not args.file:
            ap.error("give a WAV file to read, or --generate DIGITS -o OUT.wav")
        for key, start, end in dtmf_events(read_wav_8k(args.file)):
            print(f"{key} {start:.2f} {end:.2f}")
        return 0
    except DspError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
