"""The journal's queue events count every waiting, ringing, answered, abandoned, timed-out and overflowed call,
and agree with the call records: a busy stretch of the whole core on the simulated card in virtual time."""

from __future__ import annotations

from collections import Counter

from appliance.clock import VirtualClock
from appliance.config import validate
from appliance.core import Core
from appliance.datadir import DataDir
from drivers.sim import AgentScript, SimCard, poisson_callers

EPOCH0 = 1_764_300_000.0


def test_queue_events_count_every_outcome_and_match_the_records(tmp_path):
    data = DataDir.open(tmp_path / "data", create=True)
    cfg = validate({"card": {"seats": 3}, "queue": {"max_wait_s": 60, "max_length": 4, "overflow": "hangup",
                                                    "ring_timeout_s": 8, "missed_offers": 0}})
    card = SimCard(30, 3, agent=AgentScript(ring_delay_s=2.0, talk_s=lambda r: r.exponential(90.0)), media=False,
                   seed=5)
    card.phones[32].agent = AgentScript(ring_delay_s=30.0)  # seat 3 never answers in time
    card.set_traffic(poisson_callers(150.0, until=3600.0, patience_s=45.0, seed=9))
    core = Core(data, cfg, VirtualClock(EPOCH0), card=card, media=False)
    try:
        core.runtime.run_until(3600.0 + 600.0)
        core.settle()
        calls = {c["call_id"]: c for c in core.journal.calls(limit=10_000)}
        events = [e for cid in calls for e in core.journal.events(cid)]
    finally:
        core.close()
    by_type = Counter(e["type"] for e in events)
    disp = Counter(c["disposition"] for c in calls.values())
    overflow = Counter(e["data"]["reason"] for e in events if e["type"] == "call.overflow")
    ended = [e["data"] for e in events if e["type"] == "call.ended"]

    assert len(calls) == by_type["call.offered"] > 100  # every offered call has its record
    assert by_type["call.answered"] == disp["answered"] > 0
    assert by_type["call.queued"] == sum(c["queued_ts"] is not None for c in calls.values())
    # the never-answering seat was offered calls that rang out, each one an event and an offer counted
    assert by_type["call.ring_no_answer"] > 0
    # every offer to a seat ends one way: answered there, rung out, or the caller gone while it rang
    step = {"call.ringing": 1, "call.answered": -1, "call.ring_no_answer": -1}
    open_offers = Counter()
    for e in events:
        open_offers[e["call_id"]] += step.get(e["type"], 0)
    gone = [cid for cid, n in open_offers.items() if n]
    assert set(open_offers.values()) <= {0, 1} and gone  # at most one offer open: rung while the caller left
    assert all((calls[cid]["disposition"], calls[cid]["ended_by"], calls[cid]["seat"]) == ("abandoned", "caller", None)
               for cid in gone)
    # waits beyond 60 s time out; a queue of 4 overflows the 5th: both end as overflow (target hangup)
    assert overflow["max_wait"] + overflow["max_length"] == disp["overflow"] > 0
    assert disp["abandoned"] == sum(1 for d in ended if d["disposition"] == "abandoned" and d["ended_by"] == "caller")
    assert sum(disp.values()) == len(calls)
