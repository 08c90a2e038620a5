"""DAHDI event codes and alarm bits decoded into our events, by the kind of port that reported them.

No I/O here: :class:`EventDecoder` maps one code from ``DAHDI_GETEVENT`` to a
``drivers.base`` event (or one of the four driver-level events below, which the
DAHDI card's signalling state machines consume and the core never sees). What a
code means depends on the port's signalling (DAHDI's naming is inverted):

- phone port (``fxoks``, our FXS): RINGOFFHOOK -> OffHook, ONHOOK -> OnHook,
  WINKFLASH -> Flash, RINGERON/RINGEROFF -> Ringer(on);
- line port (``fxsks``, our FXO): RINGBEGIN -> Ringing(on=True), RINGOFFHOOK ->
  Ringing(on=False) (DAHDI sends it once the burst has been gone 50 ms), ONHOOK ->
  Released(16) (loop current lost while off hook);
- a code meant for the other kind of port is dropped.

On every port: ALARM/NOALARM become ``Alarm`` for the span, POLARITY ``Polarity``,
REMOVED ``PortFault``, DTMFUP and PULSEDIGIT (OR'd with the digit) ``Digit``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Union

from ..base import Alarm, CardEvent, Digit, Flash, OffHook, OnHook, Polarity, PortFault, PortKind, Released, Ringing
from . import names

log = logging.getLogger(__name__)

DIGITS = "0123456789*#ABCD"


@dataclass(frozen=True)
class DialComplete:
    """DAHDI finished playing the digits of a ``DAHDI_DIAL`` string on this port."""

    port: int


@dataclass(frozen=True)
class HookComplete:
    """A flash, wink or start asked for without blocking has finished."""

    port: int


@dataclass(frozen=True)
class Ringer:
    """The ringing voltage on a phone port went on or off within the cadence.

    Caller ID for the phone's display goes out as FSK after the first ``on=False``.
    """

    port: int
    on: bool


@dataclass(frozen=True)
class BitsChanged:
    """The received ABCD bits of a CAS channel changed (R2); read them with ``DAHDI_GETRXBITS``."""

    port: int


ChannelEvent = Union[CardEvent, DialComplete, HookComplete, Ringer, BitsChanged]


def alarm_names(lib: Any) -> dict[int, str]:
    """Alarm bit -> our name ("RED", "LOS", ...), from the compiled constants."""
    return {getattr(lib, n): n.removeprefix("DAHDI_ALARM_") for n in names.ALARMS if getattr(lib, n)}


def decode_alarms(bits: int, table: dict[int, str]) -> frozenset[str]:
    """The set of alarm names in ``bits`` (empty: the span is up).

    An unknown bit is kept as ``"0x400"`` and the like: the span is still down,
    even if we cannot name why.
    """
    found = {name for bit, name in table.items() if bits & bit}
    rest = bits & ~sum(table)
    found.update(f"0x{1 << i:X}" for i in range(32) if rest >> i & 1)
    return frozenset(found)


class EventDecoder:
    """Decode DAHDI event codes for the ports of one card.

    One decoder serves every channel of a card, so that an unknown code is
    logged once for the card, not once per channel; then it is ignored.

    Parameters
    ----------
    lib : the compiled binding's ``lib`` (event codes come from the compiler).
    """

    def __init__(self, lib: Any) -> None:
        ev = {n.removeprefix("DAHDI_EVENT_"): getattr(lib, n) for n in names.EVENTS}
        self._known = frozenset(ev.values())
        self._pulse, self._dtmf_down, self._dtmf_up = ev["PULSEDIGIT"], ev["DTMFDOWN"], ev["DTMFUP"]
        self._digit_flags = self._pulse | self._dtmf_down | self._dtmf_up
        self._alarm, self._noalarm = ev["ALARM"], ev["NOALARM"]
        self._common: dict[int, Callable[[int], ChannelEvent]] = {
            ev["DIALCOMPLETE"]: DialComplete,
            ev["HOOKCOMPLETE"]: HookComplete,
            ev["POLARITY"]: Polarity,
            ev["BITSCHANGED"]: BitsChanged,
            ev["REMOVED"]: lambda p: PortFault(p, False, "the channel was removed (DAHDI_EVENT_REMOVED)"),
        }
        self._by_kind: dict[PortKind, dict[int, Callable[[int], ChannelEvent]]] = {
            PortKind.FXS: {
                ev["RINGOFFHOOK"]: OffHook,
                ev["ONHOOK"]: OnHook,
                ev["WINKFLASH"]: Flash,
                ev["RINGERON"]: lambda p: Ringer(p, True),
                ev["RINGEROFF"]: lambda p: Ringer(p, False),
            },
            PortKind.FXO: {
                ev["RINGBEGIN"]: lambda p: Ringing(p, True),
                # DAHDI reports RINGOFFHOOK on a line port once the ring has been gone for a while
                ev["RINGOFFHOOK"]: lambda p: Ringing(p, False),
                ev["ONHOOK"]: lambda p: Released(p, 16),
            },
            PortKind.TRUNK: {},
        }
        self._unknown_seen: set[int] = set()

    def decode(self, code: int, *, port: int, kind: PortKind, span: int,
               span_alarms: Callable[[], frozenset[str]]) -> ChannelEvent | None:
        """The event for ``code`` on ``port``, or None for a code that means nothing here.

        ``span_alarms`` is called only for DAHDI_EVENT_ALARM, to ask the span which
        alarms it has (the event itself does not say).
        """
        if code & self._digit_flags:
            return self._digit(code, port)
        if code == self._alarm:
            return Alarm(span, span_alarms())
        if code == self._noalarm:
            return Alarm(span, frozenset())
        make = self._by_kind[kind].get(code) or self._common.get(code)
        if make is not None:
            return make(port)
        if code not in self._known:
            self._unknown(code, port)
        return None  # known to DAHDI, meaningless for this kind of port (HDLC, echo canceller, timers...)

    def _digit(self, code: int, port: int) -> Digit | None:
        char = chr(code & 0xFFFF) if code & 0xFFFF < 0x80 else ""
        if code & self._dtmf_down:
            return None  # the key's release (DTMFUP) reports it
        if len(char) == 1 and char in DIGITS:
            return Digit(port, char)
        self._unknown(code, port)
        return None

    def _unknown(self, code: int, port: int) -> None:
        if code not in self._unknown_seen:
            self._unknown_seen.add(code)
            log.warning("DAHDI event code 0x%X on port %d is unknown to this driver; ignored "
                        "(logged once per card)", code, port)
