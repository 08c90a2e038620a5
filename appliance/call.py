"""One call's state as call control keeps it (``appliance.callcontrol``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .acd import Agent
from .flowrun import FlowSession

LIVE_STATES = ("ivr", "blocked", "queued", "ringing", "talking", "leaving", "external", "voicemail", "moving",
               "calling_back")


@dataclass
class Call:
    call_id: str
    port: int | None  # the trunk channel the caller is on now (None: a parked callback)
    caller: str | None
    called: str
    start: float
    answer: float | None = None
    queued: float | None = None
    agent_answer: float | None = None
    end: float | None = None
    state: str = "ivr"  # LIVE_STATES, then ended
    agent: Agent | None = None  # the agent rung (one) or talking; None while ring-all rings several
    ringing: list[Agent] = field(default_factory=list)  # the agents being rung for the call
    ivr: FlowSession | None = None
    recorded: bool = False
    deadline: float | None = None  # ring timeout, maximum queue wait, or end of a voicemail
    caller_national: str | None = None  # the calling number normalised (appliance.caller); None when withheld
    caller_area: str | None = None  # "湖北省武汉市", or None
    caller_kind: str | None = None  # appliance.caller.KINDS, or None when withheld
    vip: bool = False  # screening says VIP: queued ahead of normal callers
    block_reason: str | None = None  # screening blocked the call: "blacklist" or "withheld"
    trunk_port: int | None = None  # the channel the call came in on (for the record)
    queue: str | None = None  # the queue it waits or waited in
    direct_seat: int | None = None  # transferred to this seat only
    audio: str | None = None  # what the waiting caller hears: transfer, announce, hold, callback, goodbye
    announce_at: float | None = None  # the next position announcement
    callback: bool = False  # the caller asked to be called back (parked once told so)
    leaving: str | None = None  # why a caller hearing goodbye leaves: ivr, overflow, failed
    leg: int | None = None  # the trunk channel of an outbound leg (transfer to a number, callback)
    target: str | None = None  # where the call was sent outside the queues: number:..., voicemail:...
    disposition: str | None = None  # set before the end when it is not the state's usual one
    hops: int = 0  # overflows so far (queues that overflow into each other end in goodbye)
    left_queue: float | None = None  # sent on from the queue without an agent (overflow): the wait ends here
    skipped: frozenset[int] = frozenset()  # seats that let the call ring out: offered to others first
    answer_out: float | None = None  # the outbound leg answered, or the voicemail message began
    conf: list[int] = field(default_factory=list)  # the talk group: ports that all hear each other (handling)
    members: list[Agent] = field(default_factory=list)  # further seats in a conference
    flash: str | None = None  # digits the agent dialled since a hook flash (None: no flash)
    flash_deadline: float | None = None
    consult: dict | None = None  # the party the agent consults: port, seat or number, state
    sup: dict | None = None  # the supervisor on the call: agent, mode, state

    @property
    def wait_s(self) -> float | None:
        if self.queued is None:
            return None
        until = next(t for t in (self.agent_answer, self.left_queue, self.end) if t is not None)
        return until - self.queued
