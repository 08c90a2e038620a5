"""Fax machines on the simulated card's virtual PSTN: a caller that sends a document to the box, and numbers the
box dials that a fax machine answers. Each runs a real ``dsp.fax.t30.FaxSession`` on the line's audio.

``FaxSimCard`` is a ``SimCard`` whose trunk lines can carry a fax machine: its
session's blocks are what the port sends (``read``) and the box's A-law frames on
that port, decoded, are what it hears (``write``), one block each per tick as a
real line would carry them. A fax caller (``add_fax_caller``) is seized like any
caller and starts its calling session (CNG, then the pages) when the box answers;
a fax number (``fax_numbers``) answers after ringing and starts an answering session
(CED, DIS, then it receives). When a machine's session ends it hangs up (cause 16);
its ``FaxMachine`` keeps the session for the test to read (``result``, the pages).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from appliance.errors import DriverError
from dsp.fax.t30 import FaxSession
from dsp.g711 import alaw_decode

from ..base import BLOCK, Connected
from .card import SimCard
from .parties import CallerScript, CallerState
from .source import Source

__all__ = ["FaxMachine", "FaxSimCard", "FaxSource"]

DRAIN_S = 40.0  # longest a machine whose line dropped runs on silence to reach its result (T1 is 35 s)


@dataclass
class FaxMachine:
    """A fax machine on the far end: sends ``pages`` (a caller) or receives (None: a number the box dials)."""

    ident: str = ""
    pages: list | None = None
    modems: tuple[str, ...] = ("v27ter", "v29")
    compression: str = "mr"
    session: FaxSession | None = field(default=None, repr=False)
    port: int | None = None
    started_at: float | None = None
    ended_at: float | None = None

    def start(self, port: int, now: float, calling: bool) -> FaxSession:
        self.port, self.started_at = port, now
        self.session = FaxSession(calling=calling, pages=self.pages, ident=self.ident, modems=self.modems,
                                  compression=self.compression)
        return self.session

    @property
    def result(self):
        return None if self.session is None else self.session.result


class FaxSource(Source):
    """A port's sound that is a fax session's output, block by block."""

    __slots__ = ("session",)

    def __init__(self, session: FaxSession) -> None:
        super().__init__()
        self.session = session

    def fill(self, out: np.ndarray, t: np.ndarray) -> None:
        out[:] = self.session.transmit() if not self.session.done else 0

    @property
    def active(self) -> bool:
        return True


class FaxSimCard(SimCard):
    """A ``SimCard`` with fax machines: ``add_fax_caller`` and ``fax_numbers`` (number -> FaxMachine answering).

    The numbers in ``fax_numbers`` must also be in ``network`` with outcome "answered" (their ring time and
    set-up); ``talk_s`` None there, as the machine hangs up itself.
    """

    def __init__(self, *args, fax_numbers: dict[str, FaxMachine] | None = None, **kw) -> None:
        super().__init__(*args, **kw)
        if not self.media:
            raise DriverError("fax machines need media=True: they talk in audio")
        self.fax_numbers = dict(fax_numbers or {})
        self.fax_callers: dict[int, FaxMachine] = {}  # caller's CallerState id -> its machine (until seized)
        self.machines: dict[int, FaxMachine] = {}  # trunk port -> the machine talking on it now
        self._rxblock = np.zeros(BLOCK, np.int16)

    def add_fax_caller(self, number: str, arrive_at: float, machine: FaxMachine) -> CallerState:
        """A fax machine calls the box at ``arrive_at`` from ``number`` and sends ``machine.pages``."""
        if not machine.pages:
            raise DriverError("a fax caller needs pages to send")
        c = self.add_caller(CallerScript(number, arrive_at, digits=""))
        self.fax_callers[id(c)] = machine
        return c

    # --- the box answers a fax caller; a fax number answers the box ------------------------------------

    def answer(self, port: int) -> None:
        c = self.trunk_caller.get(port)
        machine = self.fax_callers.pop(id(c), None) if c is not None else None
        if machine is None:
            super().answer(port)
            return
        if c.answered_at is not None:
            return
        c.answered_at, c.connected_at, c.outcome = self._now, self._now, "fax"
        self._attach(port, machine, calling=True)

    def _out_connect(self, call) -> None:
        machine = self.fax_numbers.get(call.number)
        if machine is None or not call.live:
            super()._out_connect(call)
            return
        call.state = "connected"
        self._out.append(Connected(call.port))
        self._attach(call.port, machine, calling=False)

    def _attach(self, port: int, machine: FaxMachine, calling: bool) -> None:
        self._silence(port)
        self._src[port] = FaxSource(machine.start(port, self._now, calling))
        self.machines[port] = machine

    def _detach(self, port: int) -> None:
        machine = self.machines.pop(port, None)
        if machine is not None:
            machine.ended_at = self._now
            self._src[port] = Source()
            quiet = np.zeros(BLOCK, np.int16)
            for _ in range(int(DRAIN_S * 50)):  # the line dropped: the machine concludes on its own timers
                if machine.session.done:
                    break
                machine.session.transmit()
                machine.session.receive(quiet)

    # --- the line's audio --------------------------------------------------------------------------------

    def write(self, frames: np.ndarray) -> None:
        super().write(frames)
        for port, machine in list(self.machines.items()):
            alaw_decode(frames[port], out=self._rxblock)
            machine.session.receive(self._rxblock)
            if machine.session.done:  # the machine puts its line down
                self._detach(port)
                self.far_end_clears(port, 16)

    # --- the line cleared from either side ----------------------------------------------------------------

    def hangup(self, port: int, cause: int = 16) -> None:
        self._detach(port)
        super().hangup(port, cause)

    def _caller_hangs_up(self, c: CallerState, outcome: str, cause: int = 16) -> None:
        if c.port is not None and self.trunk_caller.get(c.port) is c:
            self._detach(c.port)
        super()._caller_hangs_up(c, outcome, cause)

    def _out_end(self, call, cause: int) -> None:
        if call.live and self.trunk_out.get(call.port) is call:
            self._detach(call.port)
        super()._out_end(call, cause)
