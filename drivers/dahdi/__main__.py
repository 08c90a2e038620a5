"""Command line of the DAHDI driver: ``python -m drivers.dahdi abi`` prints the compiled constants."""

from __future__ import annotations

import argparse
import sys

from appliance.errors import DriverError

from . import binding


def _abi(_args: argparse.Namespace) -> int:
    """One ``NAME 0xHEX`` line per constant, as the target's compiler computed it."""
    for _group, name, value in binding.constants():
        # two's complement keeps a (hypothetical) negative value printable as hex
        print(f"{name} 0x{value & 0xFFFFFFFF if value < 0 else value:X}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.dahdi", description="DAHDI driver tools")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("abi", help="print every ioctl, event, hook, alarm and other constant of the compiled binding "
                               "as NAME 0xHEX").set_defaults(func=_abi)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DriverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
