"""What the sans-I/O call logic asks the runtime to do, and the runtime's own events back to it.

Times inside actions are on the runtime's clock (``now``, seconds); the runtime turns
every ``*_ts`` field of a call record into wall-clock epoch seconds in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class PromptDone:
    """Event: the prompt playing on ``port`` reached its end (not sent when stopped early)."""

    port: int


@dataclass(frozen=True)
class HttpResult:
    """Event: the business system answered an IVR flow's ``flowrun.HttpLookup`` for ``call_id`` (``ok``, with
    its fields) or failed (not ``ok``; ``fields["error"]`` says why)."""

    call_id: str
    ok: bool
    fields: dict = field(hash=False, default_factory=dict)


@dataclass(frozen=True)
class CallerIdHeard:
    """Event: the caller-ID receiver decoded a message (FSK or DTMF) on FXO ``port`` while its line was on hook.

    ``number`` is None when the message has none; ``absent`` is its reason code then ("P" private, "O"
    unavailable, others as sent); ``format`` is mdmf, sdmf or dtmf (``dsp.callerid``).
    """

    port: int
    number: str | None
    absent: str | None = None
    name: str = ""
    format: str = "mdmf"


@dataclass(frozen=True)
class LineTone:
    """Event: a call-progress tone of the plan (``dsp.progress``: busy, congestion, ...) was recognised on the
    audio of FXO ``port`` while its line was off hook."""

    port: int
    tone: str


@dataclass(frozen=True)
class TrunkTone:
    """Event: a call-progress tone of the plan (``dsp.progress``: ringback, busy, congestion, vacant, sit, ced, cng)
    was recognised on the audio of trunk ``port`` while an outbound call is dialled on it (from its ``Dial`` until
    ``StopProgress`` or the port is cleared; ``appliance.outbound`` classifies the attempt)."""

    port: int
    tone: str


# --- signalling on the card ---------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    port: int


@dataclass(frozen=True)
class Hangup:
    port: int
    cause: int = 16  # Q.850 normal clearing


@dataclass(frozen=True)
class Dial:
    """Place an outbound call on trunk ``port``; the card answers with Alerting, Connected or Released."""

    port: int
    number: str


@dataclass(frozen=True)
class StopProgress:
    """Stop listening for call-progress tones on trunk ``port`` (the outbound attempt there is decided)."""

    port: int


@dataclass(frozen=True)
class Ring:
    port: int
    caller: str | None


@dataclass(frozen=True)
class StopRing:
    port: int


# --- media ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Play:
    port: int
    prompt: str  # a name in the runtime's prompt set: welcome, invalid, goodbye, transfer


@dataclass(frozen=True)
class StopPlay:
    port: int


@dataclass(frozen=True)
class PlayRecording:
    """Play recording ``number`` (``appliance.recindex``) to ``port``, loaded off the tick
    (``appliance.recplay``); ``PromptDone`` at its end. One that cannot be played: the ``code.failed`` prompt."""

    port: int
    number: int


@dataclass(frozen=True)
class StartTone:
    port: int
    tone: str  # a tone of the configured plan (dsp.toneplans): ringback, busy, ...


@dataclass(frozen=True)
class StopTone:
    port: int


@dataclass(frozen=True)
class Connect:
    """Bridge two ports both ways through the switch."""

    a: int
    b: int


@dataclass(frozen=True)
class Hear:
    """One way through the switch: ``listener`` hears ``talker`` (``on``) or no longer does. Conferences, hold and
    a supervisor's listen, whisper and barge are made of these; the card is not told."""

    listener: int
    talker: int
    on: bool = True


@dataclass(frozen=True)
class Isolate:
    """``port`` leaves every mix (its row and column of the switch cleared) and the card learns it has no peer:
    a party dropped from a call that goes on without it."""

    port: int


@dataclass(frozen=True)
class Disconnect:
    a: int
    b: int


@dataclass(frozen=True)
class StartRecording:
    call_id: str
    caller_port: int
    agent_port: int  # the caller's port again for a recording of one party (voicemail)
    kind: str = "call"  # call (recordings/) or voicemail (voicemail/)


@dataclass(frozen=True)
class StopRecording:
    call_id: str


# --- records and events ---------------------------------------------------------------------


@dataclass(frozen=True)
class WriteCall:
    """Write the whole call record (a journal ``calls`` row) once the call has ended."""

    record: dict = field(hash=False)


@dataclass(frozen=True)
class LogEvent:
    call_id: str
    type: str
    data: dict = field(hash=False, default_factory=dict)


@dataclass(frozen=True)
class SaveCampaign:
    """Save a group-calling campaign's state (``appliance.campaign``) in the journal, replacing the last one;
    ``data`` is JSON-able and belongs to the journal from now on."""

    name: str
    data: dict = field(hash=False)


@dataclass(frozen=True)
class Publish:
    """An event for control-API subscribers (web dashboard, console)."""

    type: str
    data: dict = field(hash=False, default_factory=dict)


Action = Union[
    Answer, Hangup, Dial, Ring, StopRing, Play, StopPlay, StartTone, StopTone, Connect, Hear, Isolate, Disconnect,
    StartRecording, StopRecording, PlayRecording, WriteCall, LogEvent, Publish, StopProgress, SaveCampaign,
]
