"""A fax terminal on stdin/stdout: ``python -m dsp.fax.terminal (--send FILE.tif | --receive OUT.tif) ...``.

The line is signed 16-bit little-endian samples at 8 kHz in blocks of 160:
each step writes one block to stdout and then reads one from stdin (EOF is
the line dropping). At the end one result line goes to stderr
(``result ok pages=... rate=...`` or ``result failed cause="..."``); the
exit status is 0 for a fax sent or received, 1 for a failed one, 2 for bad
arguments or an unreadable document. A received fax is written as TIFF-F
(with the coding it arrived in), only when the session succeeded, through
a temporary file, so no half-written file is left behind.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from appliance.errors import ApplianceError, DspError
from dsp.fax.t30 import FaxSession
from dsp.fax.tiff import read_tiff_f, write_tiff_f

BLOCK = 160


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dsp.fax.terminal",
                                description="A T.30 fax terminal speaking 8 kHz s16le audio on stdin/stdout.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--send", metavar="FILE.tif", help="send this TIFF-F document")
    what.add_argument("--receive", metavar="OUT.tif", help="receive into this TIFF-F file")
    role = p.add_mutually_exclusive_group()
    role.add_argument("--calling", action="store_true", help="we placed the call (default when sending)")
    role.add_argument("--answering", action="store_true", help="we answered (default when receiving)")
    p.add_argument("--modems", default="v27ter,v29", help="page modems to offer (default v27ter,v29)")
    p.add_argument("--rates", default=None,
                   help="bit rates to accept, e.g. 7200,4800 (default: all the modems have)")
    p.add_argument("--compression", choices=("mh", "mr"), default="mr", help="mr: 2-D when the other side has it")
    p.add_argument("--ident", default="", help="our identity (CSI/TSI), up to 20 digits")
    p.add_argument("--verbose", action="store_true", help="print the T.30 log on stderr before the result")
    p.add_argument("--max-seconds", type=float, default=600.0, help="give up after this much line time")
    return p


def _rates(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(r) for r in text.split(",")]
    except ValueError:
        raise DspError(f"--rates must be bit rates separated by commas, e.g. 7200,4800; got {text!r}") from None


def _read_block(stream) -> np.ndarray | None:
    want = 2 * BLOCK
    buf = b""
    while len(buf) < want:
        got = stream.read(want - len(buf))
        if not got:
            return None
        buf += got
    return np.frombuffer(buf, "<i2").astype(np.int16)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    calling = args.calling or (not args.answering and args.send is not None)
    try:
        pages = read_tiff_f(args.send) if args.send else None
        session = FaxSession(calling=calling, pages=pages, ident=args.ident,
                             modems=[m.strip() for m in args.modems.split(",") if m.strip()],
                             compression=args.compression, block=BLOCK,
                             rates=_rates(args.rates), max_seconds=args.max_seconds)
    except (ApplianceError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out, inp = sys.stdout.buffer, sys.stdin.buffer
    try:
        while not session.done:
            out.write(session.transmit().astype("<i2").tobytes())
            out.flush()
            x = _read_block(inp)
            if x is None:
                break
            session.receive(x)
    except BrokenPipeError:
        pass
    result = session.result
    if args.verbose:
        print("\n".join(session.log), file=sys.stderr)
    if result is None:
        print(f'result failed cause="the line dropped" pages={session.progress[0] - 1}', file=sys.stderr)
        return 1
    if result.ok and args.receive:
        tmp = f"{args.receive}.part"
        try:
            write_tiff_f(tmp, result.received, two_d=result.compression == "MR")
            os.replace(tmp, args.receive)
        except (ApplianceError, OSError) as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            print(f'result failed cause="cannot write {args.receive}: {exc}"', file=sys.stderr)
            return 1
    print(result.line(), file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
