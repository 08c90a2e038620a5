"""The card seam: ports, the events a card reports, and the Card protocol every driver implements.

A card has ports: trunk channels on a span (E1 to the carrier), FXS ports with the
agents' phones, FXO ports on analog lines. Every 20 ms the runtime reads one frame
of A-law audio per port and writes one back; between frames it polls the card for
events and sends it commands. Simulated, DAHDI and SIP cards all look like this.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, Union, runtime_checkable

import numpy as np

from appliance.errors import DriverError

BLOCK = 160  # samples in one 20 ms frame at 8 kHz
RATE = 8000


class PortKind(str, enum.Enum):
    TRUNK = "trunk"  # a B-channel or timeslot of a digital trunk span
    FXS = "fxs"  # a port that powers and rings a phone (an agent's seat)
    FXO = "fxo"  # a port wired to an analog line from the exchange


@dataclass(frozen=True)
class PortInfo:
    index: int  # row of this port in the runtime's (n_ports, 160) frame arrays
    kind: PortKind
    name: str  # for people: "E1 1/5", "FXS 3"
    span: int | None = None


# --- events a card reports (card -> core) -------------------------------------------


@dataclass(frozen=True)
class Seized:
    """An inbound call arrived on a trunk channel with its numbers (PRI SETUP, R2 seizure)."""

    port: int
    calling: str | None  # None when the number is withheld or unavailable
    called: str
    withheld: str | None = None  # why calling is None: "private" (restricted) or "unavailable"


@dataclass(frozen=True)
class Released:
    """The far end of a trunk channel cleared the call; ``cause`` is the Q.850 cause."""

    port: int
    cause: int = 16


@dataclass(frozen=True)
class OffHook:
    """A phone on an FXS port went off hook: answering a ring, or about to dial."""

    port: int


@dataclass(frozen=True)
class OnHook:
    port: int


@dataclass(frozen=True)
class Digit:
    """A DTMF digit detected by the card itself (out-of-band signalling, or a card DSP)."""

    port: int
    digit: str


@dataclass(frozen=True)
class Alarm:
    """A span's alarm set changed; an empty set means the span is up."""

    span: int
    alarms: frozenset[str]


@dataclass(frozen=True)
class Ringing:
    """The line on an FXO port started (``on``) or ended (not ``on``) a ring burst.

    Caller ID comes as audio between the first and second burst (``dsp.callerid``).
    """

    port: int
    on: bool


@dataclass(frozen=True)
class Polarity:
    """The line on an FXO port reversed its polarity: the far end answered or, on some lines, cleared."""

    port: int


@dataclass(frozen=True)
class Flash:
    """The phone on an FXS port flashed its hook (on hook for about 100-800 ms)."""

    port: int


@dataclass(frozen=True)
class Hold:
    """An IP phone put its call on hold (``on``) or took it off hold (a re-INVITE's media direction)."""

    port: int
    on: bool


@dataclass(frozen=True)
class Alerting:
    """An outbound call on a trunk channel reached a phone that rings (Q.931 ALERTING)."""

    port: int


@dataclass(frozen=True)
class Connected:
    """An outbound call on a trunk channel was answered, by signalling (Q.931 CONNECT)."""

    port: int


@dataclass(frozen=True)
class PortFault:
    """A port stopped delivering frames or its hardware failed (``ok`` False), or works again (True)."""

    port: int
    ok: bool
    reason: str = ""


CardEvent = Union[Seized, Released, OffHook, OnHook, Digit, Alarm, Ringing, Polarity, Flash, Hold, Alerting,
                  Connected, PortFault]


@runtime_checkable
class Card(Protocol):
    """What the runtime needs of a card. Methods never block; slow work stays in the driver's threads.

    ``read`` and ``write`` move one frame per port: arrays of shape ``(n_ports, 160)``,
    uint8, A-law codes, rows in ``PortInfo.index`` order. A card paced by hardware
    (DAHDI) blocks in its own thread, never in these calls.
    """

    ports: tuple[PortInfo, ...]

    def poll(self, now: float) -> list[CardEvent]:
        """Events that happened up to ``now`` (seconds on the runtime's clock)."""

    def next_deadline(self) -> float | None:
        """When the card next has something to report on its own, or None (virtual time uses it)."""

    def read(self, out: np.ndarray) -> None:
        """Fill ``out``, shape (n_ports, 160) uint8, with the frame each port received."""

    def write(self, frames: np.ndarray) -> None:
        """Send ``frames``, shape (n_ports, 160) uint8, one frame to each port."""

    def answer(self, port: int) -> None:
        """Answer an inbound call on a trunk or FXO port."""

    def hangup(self, port: int, cause: int = 16) -> None:
        """Clear the call on a trunk or FXO port with a Q.850 cause."""

    def dial(self, port: int, number: str) -> None:
        """Seize a trunk channel or an FXO line and dial ``number`` (an outbound call).

        Signalling reports back as ``Alerting``, ``Connected`` or ``Released`` with a
        cause; an analog line only carries tones, which ``dsp.progress`` hears.
        """

    def ring(self, port: int, caller: str | None) -> None:
        """Ring the phone on an FXS port, showing ``caller`` on its display."""

    def stop_ring(self, port: int) -> None:
        """Stop ringing an FXS port (no-op when it is not ringing)."""

    def bridge(self, a: int, b: int | None) -> None:
        """Tell the card port ``a`` now talks to ``b`` (None: to nobody).

        A DAHDI card may bridge the two natively; the simulated card uses it so its
        virtual callers and agents know whom they talk to. The runtime's switch
        carries the audio either way.
        """

    def close(self) -> None:
        """Release the hardware."""


def check_frames(arr: object, n_ports: int, what: str) -> None:
    """Raise DriverError unless ``arr`` is a uint8 array of shape (n_ports, 160): every card's read/write."""
    want = (n_ports, BLOCK)
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.shape != want:
        got = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise DriverError(f"{what}: frames must be a uint8 array of shape {want}, got {got}")
