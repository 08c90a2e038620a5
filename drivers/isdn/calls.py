"""Q.931 basic call control for one PRI interface (EuroISDN, E1), either side, sans-I/O.

``PriCalls`` keeps the calls on the interface's B-channels: it takes layer-3
messages from the data link (``receive``) and commands from the card (``setup``,
``answer``, ``hangup``), and gives back messages to send (``messages_to_send``)
and what happened to each channel (``next_event``). Time comes in as ``now``.

What it does, after Q.931 §5 and ETSI EN 300 403:

- inbound SETUP: checked (bearer, a free B-channel of ours named in the channel
  identification), answered at once with CALL PROCEEDING, offered to the card;
  ``answer`` sends CONNECT (the user side then waits T313 for CONNECT ACK);
  calls are en bloc: the number in the SETUP is the whole number;
- outbound: SETUP on the exclusive channel the card chose, T303 (the SETUP is
  sent twice), CALL PROCEEDING (T310), ALERTING, CONNECT (answered by CONNECT
  ACK); a RELEASE COMPLETE or DISCONNECT ends it with the network's cause;
- clearing both ways: DISCONNECT/RELEASE/RELEASE COMPLETE with T305 and T308,
  collisions, clearing before the answer;
- STATUS ENQUIRY answered with STATUS; a STATUS saying the peer has no call
  ends ours; messages for unknown call references answered as §5.8.3.2 says;
- RESTART (a channel or the whole interface) clears the calls and is acknowledged;
- data-link loss: calls not yet answered are cleared, answered ones wait T309
  for the link to come back.

A busy channel named in an inbound SETUP is refused with cause 44, on either
side: glare is settled by the network side refusing the user's SETUP, and our
own SETUP on that channel then ends with the network's cause.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable

from appliance.errors import DriverError, ProtocolError

from .q931 import (MT, BearerCapability, Cause, CallState, ChannelId, Message, PartyNumber, RestartIndicator,
                   decode, encode)

from ..trunkcalls import Alerted, Answered, CallEvent, Cleared, Offered  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

TIMERS = {"T303": 4.0, "T305": 30.0, "T308": 4.0, "T309": 90.0, "T310": 30.0, "T313": 4.0}
# A repeated SETUP (answered already), overlap digits or keypad INFORMATION (calls are en bloc here),
# NOTIFY and FACILITY (no supplementary services): nothing to do, nothing to answer.
IGNORED = frozenset({MT.SETUP, MT.INFORMATION, MT.NOTIFY, MT.FACILITY})
LOCATION = {True: 2, False: 0}  # cause location we send: public network serving the local user / user


@dataclass
class _Call:
    cref: int
    ours: bool  # we originated the call reference
    channel: int
    state: int = 0  # Q.931 call state number (0 null, 1, 3, 4, 8, 9, 10, 11, 12, 19)
    timer: str | None = None
    due: float = 0.0
    tries: int = 0
    cause: int = 16  # the cause we clear with
    reported: bool = False  # the card was told the call ended (no second Cleared)
    setup: bytes = field(default=b"", repr=False)


class PriCalls:
    """The calls on one PRI interface; ``network`` True when we are the network side."""

    def __init__(self, network: bool, channels: Iterable[int], timers: dict[str, float] | None = None) -> None:
        self.network = network
        self.channels = frozenset(channels)
        self.timers = {**TIMERS, **(timers or {})}
        self._calls: dict[tuple[int, bool], _Call] = {}
        self._by_channel: dict[int, _Call] = {}
        self._next_cref = 1
        self._out: list[bytes] = []
        self._events: list[CallEvent] = []
        self.link_up = False

    # --- commands from the card ----------------------------------------------------------

    def setup(self, channel: int, called: str, calling: str | None, now: float, *,
              presentation: str = "allowed") -> None:
        """Place a call on ``channel`` to ``called``, showing ``calling`` (the box's number) if given."""
        self._need_free(channel)
        if not called or not all(c in "0123456789*#" for c in called):
            raise DriverError(f"cannot dial {called!r}: a PRI number is digits 0-9, * and #")
        call = self._new(self._alloc_cref(), True, channel)
        msg = Message(MT.SETUP, call.cref, bearer=BearerCapability(), channel=ChannelId(channel, exclusive=True),
                      calling=(PartyNumber(calling, type="unknown", presentation=presentation)
                               if calling is not None else None),
                      called=PartyNumber(called, type="unknown"), sending_complete=True)
        call.setup = encode(msg)
        self._out.append(call.setup)
        self._enter(call, 1, "T303", now)

    def answer(self, channel: int, now: float) -> None:
        call = self._by_channel.get(channel)
        if call is None or call.ours or call.state not in (6, 7, 9):
            raise DriverError(f"no inbound call to answer on B-channel {channel}")
        self._send(call, MT.CONNECT, channel=ChannelId(channel))
        if self.network:
            self._enter(call, 10, None, now)
        else:
            self._enter(call, 8, "T313", now)

    def hangup(self, channel: int, cause: int, now: float) -> None:
        """Clear the call on ``channel`` (nothing to do when there is none or it is already clearing)."""
        call = self._by_channel.get(channel)
        if call is None or call.state in (11, 19):
            return
        call.reported = True  # the card cleared it: it needs no Cleared back
        call.cause = cause
        if call.state == 12:  # the far end disconnected first: release
            self._release(call, now)
        else:
            self._send(call, MT.DISCONNECT, cause=self._cause(cause))
            self._enter(call, 11, "T305", now)

    def drop_all(self, cause: int) -> None:
        """The interface is gone (span alarm): every call ends here and now, without messages."""
        for call in list(self._calls.values()):
            self._end(call, cause)

    def busy(self, channel: int) -> bool:
        return channel in self._by_channel

    # --- the data link ---------------------------------------------------------------------

    def link_changed(self, up: bool, now: float) -> None:
        """The data link came up or went down (Q.931 §5.8.9: answered calls wait T309 for it)."""
        self.link_up = up
        for call in list(self._calls.values()):
            if up and call.timer == "T309":  # back in time: ask whether the peer still has the call
                self._enter(call, call.state, None, now)
                self._send(call, MT.STATUS_ENQUIRY)
            elif not up and call.state == 10:
                self._enter(call, 10, "T309", now)
            elif not up:
                self._end(call, 41)  # temporary failure: the call had not been answered

    def link_reset(self, now: float) -> None:
        """The data link was re-established under us (§5.8.8): answered calls are checked by status enquiry."""
        for call in self._calls.values():
            if call.state == 10:
                self._send(call, MT.STATUS_ENQUIRY)

    def receive(self, payload: bytes, now: float) -> None:
        try:
            msg = decode(payload)
        except ProtocolError as exc:
            log.warning("PRI: discarded a layer-3 message (%s): %s", exc, payload.hex())
            return
        if msg.cref == 0:
            self._global(msg, now)
            return
        call = self._calls.get((msg.cref, msg.from_destination))
        if call is None:
            self._unknown_cref(msg, now)
            return
        if msg.type in IGNORED:
            return
        handler = getattr(self, f"_on_{msg.type.name.lower()}", None)
        if handler is None:
            self._send(call, MT.STATUS, cause=self._cause(98 if msg.type in MT else 97),
                       call_state=CallState(call.state))
        else:
            handler(call, msg, now)

    # --- timers and output --------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        dues = [c.due for c in self._calls.values() if c.timer]
        return min(dues) if dues else None

    def handle_timer(self, now: float) -> None:
        for call in list(self._calls.values()):
            if call.timer and now >= call.due - 1e-9:
                getattr(self, f"_expired_{call.timer.lower()}")(call, now)

    def messages_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> CallEvent | None:
        return self._events.pop(0) if self._events else None

    # --- inbound messages on a call --------------------------------------------------------------

    def _on_call_proceeding(self, call: _Call, msg: Message, now: float) -> None:
        if call.state == 1:
            self._enter(call, 3, "T310", now)

    def _on_alerting(self, call: _Call, msg: Message, now: float) -> None:
        if call.state in (1, 3):
            self._enter(call, 4, None, now)
            self._events.append(Alerted(call.channel))

    def _on_progress(self, call: _Call, msg: Message, now: float) -> None:
        if call.state == 3:
            self._enter(call, 3, None, now)  # in-band information: T310 stops, the tones tell the rest

    def _on_connect(self, call: _Call, msg: Message, now: float) -> None:
        if call.state in (1, 3, 4):
            self._send(call, MT.CONNECT_ACKNOWLEDGE)
            self._enter(call, 10, None, now)
            self._events.append(Answered(call.channel))

    def _on_connect_acknowledge(self, call: _Call, msg: Message, now: float) -> None:
        if call.state == 8:
            self._enter(call, 10, None, now)

    def _on_disconnect(self, call: _Call, msg: Message, now: float) -> None:
        cause = msg.cause.value if msg.cause else 31
        if call.state == 11:  # clear collision: both sent DISCONNECT
            self._release(call, now)
            return
        if call.state == 19:
            return
        self._report(call, cause)
        self._release(call, now)

    def _on_release(self, call: _Call, msg: Message, now: float) -> None:
        self._send(call, MT.RELEASE_COMPLETE)
        self._end(call, msg.cause.value if msg.cause else 16)

    def _on_release_complete(self, call: _Call, msg: Message, now: float) -> None:
        self._end(call, msg.cause.value if msg.cause else 16)

    def _on_status_enquiry(self, call: _Call, msg: Message, now: float) -> None:
        self._send(call, MT.STATUS, cause=self._cause(30), call_state=CallState(call.state))

    def _on_status(self, call: _Call, msg: Message, now: float) -> None:
        if msg.call_state is not None and msg.call_state.value == 0:  # the peer has no such call
            self._end(call, msg.cause.value if msg.cause else 101)

    # --- calls the peer starts, and messages outside any call ---------------------------------------

    def _unknown_cref(self, msg: Message, now: float) -> None:
        if msg.type is MT.SETUP and not msg.from_destination:
            self._offer(msg, now)
        elif msg.type is MT.RELEASE_COMPLETE:
            return
        elif msg.type is MT.STATUS:
            if msg.call_state is not None and msg.call_state.value != 0:
                self._reply(msg, MT.RELEASE_COMPLETE, 101)
        else:
            self._reply(msg, MT.RELEASE_COMPLETE, 81)  # invalid call reference value

    def _offer(self, msg: Message, now: float) -> None:
        channel = msg.channel.channel if msg.channel else None
        if msg.bearer is None:
            self._reply(msg, MT.RELEASE_COMPLETE, 96)  # mandatory information element is missing
            return
        if msg.bearer.transfer not in ("speech", "audio"):
            self._reply(msg, MT.RELEASE_COMPLETE, 65)  # bearer capability not implemented
            return
        if channel is None:
            channel = next((c for c in sorted(self.channels) if c not in self._by_channel), None)
            if channel is None:
                self._reply(msg, MT.RELEASE_COMPLETE, 34)  # no circuit/channel available
                return
        elif channel not in self.channels or channel in self._by_channel:
            self._reply(msg, MT.RELEASE_COMPLETE, 44)  # requested circuit/channel not available
            return
        call = self._new(msg.cref, False, channel)
        self._send(call, MT.CALL_PROCEEDING, channel=ChannelId(channel, exclusive=True))
        self._enter(call, 9, None, now)
        calling, withheld = _calling(msg.calling)
        called = msg.called.digits if msg.called else ""
        self._events.append(Offered(channel, calling, called, withheld))

    def _global(self, msg: Message, now: float) -> None:
        if msg.type is MT.RESTART:
            klass = msg.restart.klass if msg.restart else "indicated"
            channels = (self.channels if klass != "indicated" or msg.channel is None or msg.channel.channel is None
                        else {msg.channel.channel})
            for ch in channels:
                if (call := self._by_channel.get(ch)) is not None:
                    self._end(call, 41)
            self._out.append(encode(Message(MT.RESTART_ACKNOWLEDGE, 0, from_destination=True, channel=msg.channel,
                                            restart=msg.restart or RestartIndicator("indicated"), cref_len=msg.cref_len)))
        elif msg.type is MT.STATUS_ENQUIRY:
            self._out.append(encode(Message(MT.STATUS, 0, from_destination=not msg.from_destination,
                                            cause=self._cause(30), call_state=CallState(0),
                                            cref_len=msg.cref_len)))

    def _reply(self, msg: Message, mtype: MT, cause: int) -> None:
        self._out.append(encode(Message(mtype, msg.cref, from_destination=not msg.from_destination,
                                        cause=self._cause(cause), cref_len=msg.cref_len)))

    # --- timers ------------------------------------------------------------------------------------

    def _expired_t303(self, call: _Call, now: float) -> None:
        if call.tries < 2:  # no answer to the SETUP: send it once more
            self._out.append(call.setup)
            self._enter(call, 1, "T303", now, again=True)
        else:
            self._send(call, MT.RELEASE_COMPLETE, cause=self._cause(102))
            self._end(call, 102)

    def _expired_t310(self, call: _Call, now: float) -> None:
        self._report(call, 102)
        call.cause = 102
        self._send(call, MT.DISCONNECT, cause=self._cause(102))
        self._enter(call, 11, "T305", now)

    _expired_t313 = _expired_t310  # no CONNECT ACK to our CONNECT: clear as Q.931 §5.2.8 says

    def _expired_t305(self, call: _Call, now: float) -> None:
        self._release(call, now)

    def _expired_t308(self, call: _Call, now: float) -> None:
        if call.tries < 2:
            self._send(call, MT.RELEASE, cause=self._cause(call.cause))
            self._enter(call, 19, "T308", now, again=True)
        else:
            self._end(call, 102)  # the peer never confirmed: the channel goes back to idle

    def _expired_t309(self, call: _Call, now: float) -> None:
        self._end(call, 27)  # destination out of order: the link stayed down

    # --- helpers ---------------------------------------------------------------------------------------

    def _new(self, cref: int, ours: bool, channel: int) -> _Call:
        call = _Call(cref, ours, channel)
        self._calls[(cref, ours)] = call
        self._by_channel[channel] = call
        return call

    def _alloc_cref(self) -> int:
        for _ in range(0x7FFF):
            cref, self._next_cref = self._next_cref, self._next_cref % 0x7FFF + 1
            if (cref, True) not in self._calls:
                return cref
        raise DriverError("no free call reference")

    def _need_free(self, channel: int) -> None:
        if channel not in self.channels:
            raise DriverError(f"B-channel {channel} is not on this PRI interface")
        if channel in self._by_channel:
            raise DriverError(f"B-channel {channel} is busy")

    def _enter(self, call: _Call, state: int, timer: str | None, now: float, again: bool = False) -> None:
        call.state, call.timer = state, timer
        call.tries = call.tries + 1 if again else 1
        call.due = now + self.timers[timer] if timer else 0.0

    def _send(self, call: _Call, mtype: MT, **ies) -> None:
        self._out.append(encode(Message(mtype, call.cref, from_destination=not call.ours, **ies)))

    def _cause(self, value: int) -> Cause:
        return Cause(value, LOCATION[self.network])

    def _release(self, call: _Call, now: float) -> None:
        self._send(call, MT.RELEASE, cause=self._cause(call.cause))
        self._enter(call, 19, "T308", now)

    def _report(self, call: _Call, cause: int) -> None:
        if not call.reported:
            call.reported = True
            self._events.append(Cleared(call.channel, cause))

    def _end(self, call: _Call, cause: int) -> None:
        self._report(call, cause)
        self._calls.pop((call.cref, call.ours), None)
        if self._by_channel.get(call.channel) is call:
            del self._by_channel[call.channel]


def _calling(number: PartyNumber | None) -> tuple[str | None, str | None]:
    """The calling number as the core wants it, or None and why it is missing."""
    if number is None:
        return None, "unavailable"
    if number.presentation == "restricted":
        return None, "private"
    if number.presentation == "unavailable" or not number.digits:
        return None, "unavailable"
    return ("+" + number.digits if number.type == "international" else number.digits), None
