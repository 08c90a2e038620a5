"""Feature codes an agent dials on the seat's phone (analog or IP): log in and out, idle and busy with a reason,
play a recording.

======================== ==============================================================
``*1 ID * PIN #``        log in as agent ID (``*1 ID #`` without a PIN; ``*1#`` at a seat
                         that is its own agent, when no agents are configured)
``*2#``                  log out
``*3#``                  available (示闲); also ends wrap-up early
``*4#``, ``*4 R #``      busy (示忙), with reason R: ``BUSY_REASONS``
``*6 N #``               play recording number N (``appliance.recindex``) on the phone
======================== ==============================================================

``parse`` turns the digits dialled (up to and including ``#``) into a ``Code``, or
raises ValueError saying what is wrong with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# reason digit -> the reason recorded with the busy state; "no_answer" is the ACD's own (missed offers)
BUSY_REASONS = {"1": "rest", "2": "meal", "3": "meeting", "4": "training", "5": "paperwork"}
REASONS = ("other", *BUSY_REASONS.values(), "no_answer", "supervisor")
INTERDIGIT_S = 8.0  # dialling that stops this long is abandoned
_CODE = re.compile(r"\*([1-46])([0-9]*)(?:\*([0-9]*))?#")


@dataclass(frozen=True)
class Code:
    action: str  # login | logout | available | busy | play
    agent_id: str | None = None
    pin: str = ""
    reason: str | None = None
    number: str | None = None  # play: the recording number


def complete(digits: str) -> bool:
    """Whether ``digits`` end a feature code (they do at ``#``; a code never starts without ``*``)."""
    return digits.endswith("#") or not digits.startswith("*")


def parse(digits: str) -> Code:
    m = _CODE.fullmatch(digits)
    if m is None:
        raise ValueError(f"{digits!r} is not a feature code (*1 ID * PIN #, *2#, *3#, *4 R #, *6 N #)")
    which, arg, pin = m[1], m[2], m[3]
    if which == "1":
        return Code("login", arg or None, pin or "")
    if which == "6":
        if not arg or pin is not None:
            raise ValueError(f"{digits!r}: *6 takes one recording number (*6 N #)")
        return Code("play", number=arg)
    if pin is not None or (arg and which != "4"):
        raise ValueError(f"{digits!r}: *{which} takes no number")
    if which == "2":
        return Code("logout")
    if which == "3":
        return Code("available")
    if arg and arg not in BUSY_REASONS:
        raise ValueError(f"{digits!r}: busy reason {arg} is not one of {', '.join(BUSY_REASONS)}")
    return Code("busy", reason=BUSY_REASONS.get(arg, "other"))
