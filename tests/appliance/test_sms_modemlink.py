"""The GSM modem as an SmsTransport, against simulated modems on real pseudo-terminals.

Time is driven with explicit ``now`` values; only the bytes crossing the pty need
real time, so ``run`` polls with short real sleeps until what is awaited came (its
limit only bounds a broken test).
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from appliance.sms.modemlink import CMS_RETRYABLE, ModemLink, retryable
from appliance.sms.transport import Accepted, Down, Inbound, NotSent, Rejected, Report, Up
from tests.appliance.simmodem import SimModem

CHINESE = ("您好，这是呼叫中心的测试短信。" * 11)[:150]  # 150 UCS2 units: 3 parts of 67
NUMBER = "+8613912345678"


@pytest.fixture
def sims():
    made = []

    def make(**attrs):
        s = SimModem()
        for key, value in attrs.items():
            setattr(s, key, value)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()
    assert not [e for s in made for e in s.errors]


@pytest.fixture
def sim(sims):
    return sims()


@pytest.fixture
def links():
    made = []

    def make(*args, **kwargs):
        link = ModemLink(*args, **kwargs)
        made.append(link)
        return link
    yield make
    for link in made:
        link.close()


def run(link, now, done, limit=5.0):
    """Poll at ``now`` until ``done(events)``; real sleeps only let the pty carry the bytes."""
    events, end = [], time.monotonic() + limit
    while True:
        events += link.poll(now)
        if done(events):
            return events
        assert time.monotonic() < end, f"gave up waiting; events so far: {events}"
        time.sleep(0.005)


def settle(link, now, seconds=0.2):
    """Poll at ``now`` for a short real while: what arrives meanwhile (for asserting nothing more comes)."""
    events, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        events += link.poll(now)
        time.sleep(0.005)
    return events


def of(kind, n=1):
    return lambda events: sum(isinstance(e, kind) for e in events) >= n


def up(link, now=0.0):
    events = run(link, now, lambda ev: of(Up)(ev) or of(Down)(ev))
    assert events == [Up()], events
    return link


def short(path):
    return path[len("/dev/"):]


# --- a named port --------------------------------------------------------------------------------------


def test_named_port_comes_up_and_sends_a_plain_and_a_three_part_message(sim, links):
    link = links(sim.port)
    assert link.status()["state"] == "absent" and link.next_deadline() == 0.0
    up(link)
    assert link.status() == {"state": "ready", "port": sim.port, "signal_dbm": -73,
                             "registration": "registered (home)", "reason": None}
    link.submit("m1", NUMBER, "hello", 1.0)
    link.submit("m2", NUMBER, CHINESE, 1.0)
    events = run(link, 1.0, of(Accepted, 2))
    mrs = [s.mr for s in sim.submits]
    assert events == [Accepted("m1", str(mrs[0])), Accepted("m2", f"{mrs[1]},{mrs[2]},{mrs[3]}")]
    assert [s.text for s in sim.submits] == ["hello", CHINESE[:67], CHINESE[67:134], CHINESE[134:]]
    assert all(s.srr for s in sim.submits)
    assert link.next_deadline() is None  # nothing waits: the caller polls for bytes at its own pace


def test_reports_for_every_part_make_one_report_delivered(sim, links):
    link = up(links(sim.port))
    link.submit("m1", NUMBER, CHINESE, 0.0)
    ref = run(link, 0.0, of(Accepted))[0].ref
    mrs = [s.mr for s in sim.submits]
    sim.report(mrs[1], 0x20)  # still trying: not final
    sim.report(mrs[0], 0x00)
    sim.report(mrs[2], 0x00)
    assert settle(link, 1.0) == []  # part 2 is still pending
    sim.report(mrs[1], 0x00)
    assert run(link, 2.0, of(Report)) == [Report(ref, "0", True)]


def test_one_failed_part_makes_the_report_not_delivered_with_its_status(sim, links):
    link = up(links(sim.port))
    link.submit("m1", NUMBER, CHINESE, 0.0)
    ref = run(link, 0.0, of(Accepted))[0].ref
    mrs = [s.mr for s in sim.submits]
    sim.report(mrs[2], 0x00)
    sim.report(mrs[1], 0x41)  # incompatible destination
    sim.report(mrs[0], 0x00)
    assert run(link, 1.0, of(Report)) == [Report(ref, "65", False)]


def test_single_part_report(sim, links):
    link = up(links(sim.port))
    link.submit("m1", NUMBER, "hello", 0.0)
    ref = run(link, 0.0, of(Accepted))[0].ref
    sim.report(int(ref), 0x46)  # validity period expired
    assert run(link, 1.0, of(Report)) == [Report(ref, "70", False)]


@pytest.mark.parametrize("code, name, again", [
    (1, "unassigned number", False), (8, "operator determined barring", False),
    (21, "short message transfer rejected", False), (28, "unidentified subscriber", False),
    (96, "invalid mandatory information", False),
    (38, "network out of order", True), (41, "temporary failure", True), (42, "congestion", True),
    (331, "no network service", True), (332, "network timeout", True), (300, "ME failure", True),
])
def test_cms_error_is_rejected_retryable_or_not(sim, links, code, name, again):
    link = up(links(sim.port))
    sim.cms_on_submit = {1: code}
    link.submit("m1", NUMBER, "hello", 0.0)
    link.submit("m2", NUMBER, "next", 0.0)
    events = run(link, 0.0, lambda ev: of(Rejected)(ev) and of(Accepted)(ev))
    assert events == [Rejected("m1", f"+CMS ERROR {code}: {name}", again), Accepted("m2", str(sim.submits[1].mr))]


def test_a_part_refused_after_the_first_went_is_final(sim, links):
    link = up(links(sim.port))
    sim.cms_on_submit = {2: 38}  # temporary, but part 1 is out: a retry would send it twice
    link.submit("m1", NUMBER, CHINESE, 0.0)
    events = run(link, 0.0, of(Rejected))
    mr = sim.submits[0].mr
    assert events == [Rejected("m1", f"part 1 of 3 sent (TP-MR {mr}), then: +CMS ERROR 38: network out of order; "
                                     "not retried: the sent parts would go twice", False)]
    assert len(sim.submits) == 2  # part 3 never tried


def test_a_bad_number_is_refused_for_good_without_a_byte(sim, links):
    link = up(links(sim.port))
    link.submit("m1", "+86139abc", "hello", 0.0)
    assert link.poll(0.0) == [Rejected(
        "m1", "bad phone number '+86139abc': want an optional '+' and 1..20 digits", False)]
    assert not any(c.startswith("AT+CMGS") for c in sim.commands)


def test_inbound_message(sim, links):
    link = up(links(sim.port))
    text = "来电回拨：" + "请尽快联系客户服务中心。" * 15  # three parts, joined
    sim.inject("+8613512345678", text)
    events = run(link, 0.0, of(Inbound))
    when = datetime(2026, 11, 28, 11, 20, 5, tzinfo=timezone(timedelta(hours=8))).timestamp()
    assert events == [Inbound("+8613512345678", text, when)]


def test_submit_while_not_ready_is_not_sent_and_nothing_is_written(sim, links):
    auto = links("auto")
    auto.submit("m1", NUMBER, "hello", 3.0)
    assert auto.next_deadline() == 3.0  # the answer waits for a poll
    assert auto.poll(3.0) == [NotSent("m1", "GSM modem not ready: no modem plugged in")]
    assert auto.next_deadline() is None
    named = links(sim.port)
    assert named.poll(0.0) == []  # opened, set-up under way
    assert named.status()["state"] == "starting"
    named.submit("m2", NUMBER, "hello", 0.0)
    events = run(named, 0.0, of(Up))
    assert events == [NotSent("m2", f"GSM modem not ready: setting up the modem on {sim.port}"), Up()]
    assert not any(c.startswith("AT+CMGS") for c in sim.commands)


def test_set_up_refused_is_down_with_the_modems_words_and_retried(sim, links):
    sim.cpin = "SIM PIN"
    link = links(sim.port, reopen_s=5.0)
    events = run(link, 10.0, of(Down))
    assert events == [Down(f"GSM modem on {sim.port}: PIN required")]
    assert link.status() == {"state": "down", "port": sim.port, "signal_dbm": None, "registration": None,
                             "reason": f"GSM modem on {sim.port}: PIN required"}
    assert link.next_deadline() == 15.0
    link.submit("m1", NUMBER, "hello", 11.0)
    assert link.poll(11.0) == [NotSent("m1", f"GSM modem not ready: GSM modem on {sim.port}: PIN required")]
    before = len(sim.commands)
    assert settle(link, 14.9) == [] and len(sim.commands) == before  # closed until the reopen
    run(link, 15.0, lambda ev: sim.commands.count("AT+CPIN?") == 2)
    assert settle(link, 15.0) == []  # the same reason again: no second Down
    assert link.status()["state"] == "down"
    sim.cpin = "READY"
    assert link.next_deadline() == 20.0
    assert run(link, 20.0, of(Up)) == [Up()]


def test_not_registered_is_down(sim, links):
    sim.creg = 3
    link = links(sim.port)
    assert run(link, 0.0, of(Down)) == [Down(f"GSM modem on {sim.port}: denied")]


def test_named_port_that_does_not_exist_is_down_and_retried_every_reopen_s(sim, links, tmp_path):
    path = tmp_path / "gsmmodem"  # as a udev symlink would name it
    link = links(str(path), reopen_s=5.0)
    (down,) = link.poll(100.0)
    assert isinstance(down, Down) and down.reason.startswith(f"GSM modem on {path}: cannot open: ")
    assert "No such file" in down.reason
    assert link.status()["state"] == "down" and link.next_deadline() == 105.0
    assert link.poll(104.9) == []
    assert link.poll(105.0) == [] and link.next_deadline() == 110.0  # tried again, same reason, no new Down
    os.symlink(sim.port, path)
    assert link.poll(109.0) == [] and sim.commands == []
    assert run(link, 110.0, of(Up)) == [Up()]
    assert link.status()["port"] == str(path)


def test_named_port_unplugged_is_reopened_every_reopen_s(sims, links, tmp_path):
    first = sims(hold_submits=True)
    path = tmp_path / "gsmmodem"
    os.symlink(first.port, path)
    link = up(links(str(path), reopen_s=5.0), 0.0)
    link.submit("m1", NUMBER, "in flight", 1.0)
    run(link, 1.0, lambda ev: len(first.submits) == 1)
    first.unplug()
    (down,) = run(link, 2.0, of(Down))
    assert down.reason.startswith(f"GSM modem on {path}: unplugged or failed: ")
    assert link.next_deadline() == 7.0
    (down,) = link.poll(7.0)  # the node is gone: a new reason, said once
    assert down.reason.startswith(f"GSM modem on {path}: cannot open: ")
    assert link.poll(12.0) == [] and link.next_deadline() == 17.0
    second = sims()
    os.unlink(path)
    os.symlink(second.port, path)  # the modem is back (udev made its link again)
    assert run(link, 17.0, of(Up)) == [Up()]
    link.submit("m2", NUMBER, "back", 18.0)
    assert run(link, 18.0, of(Accepted)) == [Accepted("m2", str(second.submits[0].mr))]
    assert settle(link, 100.0) == []  # and never a Rejected for m1


def test_no_answer_to_cmgs_takes_the_modem_down_and_makes_no_rejection(sim, links):
    link = up(links(sim.port, reopen_s=5.0))
    sim.hold_submits = True
    link.submit("m1", NUMBER, "hello", 0.0)
    run(link, 0.0, lambda ev: len(sim.submits) == 1)
    assert link.next_deadline() == 60.0
    events = run(link, 60.0, of(Down))
    assert len(events) == 1 and events[0].reason.startswith(f"GSM modem on {sim.port}: no answer to AT+CMGS=")
    assert link.next_deadline() == 65.0
    sim.hold_submits = False
    assert run(link, 65.0, of(Up)) == [Up()]  # the modem is set up again
    link.submit("m2", NUMBER, "again", 66.0)
    assert run(link, 66.0, of(Accepted)) == [Accepted("m2", str(sim.submits[-1].mr))]


def test_bookkeeping_of_reports_is_bounded(sim, links):
    link = up(links(sim.port, report_keep_s=100.0))
    link.submit("m1", NUMBER, "hello", 0.0)
    ref = run(link, 0.0, of(Accepted))[0].ref
    assert "m1" in link._msgs
    assert link.poll(100.0) == [] and "m1" in link._msgs
    assert link.poll(100.5) == [] and link._msgs == {}
    sim.report(int(ref), 0)  # a report for a message forgotten: a one-part message's ref is its TP-MR
    assert run(link, 101.0, of(Report)) == [Report(ref, "0", True)]


def test_reports_for_messages_sent_before_a_reopen_or_a_restart(sims, links, tmp_path):
    first = sims()
    path = tmp_path / "gsmmodem"
    os.symlink(first.port, path)
    link = up(links(str(path), reopen_s=5.0), 0.0)
    link.submit("long", NUMBER, CHINESE, 0.0)
    link.submit("short", NUMBER, "hi", 0.0)
    refs = {e.msg_id: e.ref for e in run(link, 0.0, of(Accepted, 2))}
    first.unplug()
    run(link, 1.0, of(Down))
    second = sims()  # the same modem back on a new node: its dialogue starts afresh, the link still knows the MRs
    second._mr = first._mr
    os.unlink(path)
    os.symlink(second.port, path)
    run(link, 6.0, of(Up))
    for mr in refs["long"].split(","):
        second.report(int(mr), 0)
    assert run(link, 7.0, of(Report)) == [Report(refs["long"], "0", True)]
    fresh = up(links(second.port), 8.0)  # the core restarted: nothing in memory, a one-part ref still matches
    second.report(int(refs["short"]), 0x41)
    assert run(fresh, 9.0, of(Report)) == [Report(refs["short"], "65", False)]


# --- auto: probing, unplug, plug ---------------------------------------------------------------------


def test_auto_skips_a_tty_that_does_not_answer_at(sims, links):
    deaf, sim = sims(mute=True), sims()
    link = links("auto", probe_timeout_s=2.0)
    assert link.poll(0.0) == [] and link.status()["state"] == "absent"
    # a node that is gone already, one that does not answer, the AT port; names as hotplug gives them or paths
    link.plugged(("ttyUSB-gone", short(deaf.port), sim.port), 1.0)
    assert link.next_deadline() == 1.0
    assert link.poll(1.0) == []
    assert link.status()["state"] == "probing" and link.status()["port"] == deaf.port
    assert link.next_deadline() == 3.0
    assert settle(link, 2.9) == [] and deaf.commands == ["AT"]
    events = run(link, 3.0, of(Up))
    assert events == [Up()]
    assert link.status()["port"] == sim.port and link.status()["state"] == "ready"
    assert sim.commands[0] == "AT" and deaf.commands == ["AT"]
    link.submit("m1", NUMBER, "found", 4.0)
    assert run(link, 4.0, of(Accepted)) == [Accepted("m1", str(sim.submits[0].mr))]


def test_auto_with_no_tty_answering_is_down_and_probes_again(sims, links):
    deaf = sims(mute=True)
    link = links("auto", probe_timeout_s=2.0, reopen_s=5.0)
    link.plugged((deaf.port,), 0.0)
    assert link.poll(0.0) == []
    assert link.poll(2.0) == [Down(f"GSM modem: no tty answered AT ({short(deaf.port)}: no OK within 2 s)")]
    assert link.next_deadline() == 7.0
    assert link.poll(6.9) == [] and link.status()["state"] == "down"
    deaf.mute = False  # the modem finished booting
    assert run(link, 7.0, of(Up)) == [Up()]
    assert deaf.commands[:3] == ["AT", "AT", "ATE0"]


def test_unplug_mid_send_is_down_without_rejection_and_a_new_modem_works(sims, links):
    first = sims(hold_submits=True)
    link = links("auto")
    link.plugged((first.port,), 0.0)
    up(link)
    link.submit("m1", NUMBER, "in flight", 1.0)
    run(link, 1.0, lambda ev: len(first.submits) == 1)  # the PDU went, no +CMGS yet
    first.unplug()
    events = run(link, 2.0, of(Down))
    assert len(events) == 1
    assert events[0].reason.startswith(f"GSM modem on {first.port}: unplugged or failed: ")
    assert link.status()["state"] == "down"
    link.unplugged(2.5)  # hotplug's word comes after the EIO: no second Down
    assert link.poll(2.5) == [] and link.status()["state"] == "absent" and link.status()["port"] is None
    assert link.poll(100.0) == []  # no late Rejected for m1: the outbox makes it unknown on the Down
    second = sims()
    link.plugged((second.port,), 200.0)
    assert run(link, 200.0, of(Up)) == [Up()]
    link.submit("m2", NUMBER, "after the swap", 201.0)
    assert run(link, 201.0, of(Accepted)) == [Accepted("m2", str(second.submits[0].mr))]


def test_hotplug_unplug_before_the_port_notices(sims, links):
    sim = sims()
    link = links("auto")
    link.plugged((sim.port,), 0.0)
    up(link)
    link.unplugged(1.0)
    assert link.next_deadline() == 1.0
    assert link.poll(1.0) == [Down(f"GSM modem on {sim.port}: unplugged")]
    sim.unplug()
    assert settle(link, 2.0) == [] and link.status()["state"] == "absent"


def test_more_ttys_of_the_modem_in_use_change_nothing(sims, links):
    sim, other = sims(), sims()
    link = links("auto")
    link.plugged((sim.port,), 0.0)
    up(link)
    link.plugged((sim.port, other.port), 1.0)
    assert settle(link, 1.0) == [] and other.commands == [] and link.status()["port"] == sim.port


def test_ttys_arriving_while_probing_are_probed_too(sims, links):
    deaf, sim = sims(mute=True), sims()
    link = links("auto", probe_timeout_s=2.0)
    link.plugged((deaf.port,), 0.0)
    link.poll(0.0)
    link.plugged((deaf.port, sim.port), 0.5)
    assert run(link, 2.0, of(Up)) == [Up()] and link.status()["port"] == sim.port
    assert deaf.commands == ["AT"]


# --- the table ---------------------------------------------------------------------------------------------


def test_retryable_by_reason():
    assert retryable("+CMS ERROR 38: network out of order") is True
    assert retryable("+CMS ERROR 1: unassigned number") is False
    assert retryable("+CMS ERROR 304: invalid PDU mode parameter") is False
    assert retryable("+CMS ERROR 999: unknown error") is True  # not judged: temporary, bounded by tries
    assert retryable("+CME ERROR 14: SIM busy") is True
    assert retryable("ERROR") is True
    assert all(isinstance(v, bool) for v in CMS_RETRYABLE.values())


def test_unplugged_before_the_prompt_the_message_is_not_sent_before_the_down(sim, links):
    link = up(links(sim.port, reopen_s=5.0))
    sim.hold_prompt = True  # the AT+CMGS line went, the modem never asked for the PDU
    link.submit("m1", NUMBER, "hello", 1.0)
    link.submit("m2", NUMBER, "queued behind", 1.0)
    run(link, 1.0, lambda ev: any(c.startswith("AT+CMGS=") for c in sim.commands))
    sim.unplug()
    events = run(link, 2.0, of(Down))
    assert [type(e) for e in events] == [NotSent, NotSent, Down]  # the outbox requeues them before the Down
    why = f"not sent: {events[2].reason}"
    assert events[:2] == [NotSent("m1", why), NotSent("m2", why)]
    assert sim.submits == []


def test_no_prompt_for_cmgs_is_not_sent_and_resets_the_modem(sim, links):
    link = up(links(sim.port, reopen_s=5.0))
    sim.hold_prompt = True
    link.submit("m1", NUMBER, "hello", 0.0)
    run(link, 0.0, lambda ev: any(c.startswith("AT+CMGS=") for c in sim.commands))
    events = run(link, 60.0, of(Down))
    assert [type(e) for e in events] == [NotSent, Down]
    assert events[0].msg_id == "m1" and "no answer to AT+CMGS=" in events[0].reason
    sim.hold_prompt = False
    assert run(link, 65.0, of(Up)) == [Up()]
    link.submit("m1", NUMBER, "hello", 66.0)  # the outbox hands it out again: sent once
    assert [type(e) for e in run(link, 66.0, of(Accepted))] == [Accepted]
    assert len(sim.submits) == 1


def test_unsent_takes_back_the_queued_and_leaves_the_current_command(sim, links):
    link = up(links(sim.port))
    link.submit("m1", NUMBER, "first", 1.0)  # its AT+CMGS line is written at once: the modem's now
    link.submit("m2", NUMBER, CHINESE, 1.0)
    link.submit("m3", NUMBER, "third", 1.0)
    assert link.unsent() == ["m2", "m3"]
    assert link.unsent() == []
    assert run(link, 1.0, of(Accepted)) == [Accepted("m1", str(sim.submits[0].mr))]
    assert settle(link, 2.0) == [] and len(sim.submits) == 1  # never written after being taken back
    assert sum(c.startswith("AT+CMGS=") for c in sim.commands) == 1


def test_unsent_then_unplugged_says_nothing_more_of_them(sim, links):
    link = up(links(sim.port))
    sim.hold_submits = True  # m1's PDU went; the modem holds its +CMGS
    link.submit("m1", NUMBER, "in flight", 1.0)
    link.submit("m2", NUMBER, "second", 1.0)
    link.submit("m3", NUMBER, "third", 1.0)
    run(link, 1.0, lambda ev: len(sim.submits) == 1)
    assert link.unsent() == ["m2", "m3"]
    sim.unplug()
    (down,) = run(link, 2.0, of(Down))  # no NotSent: m2 and m3 were given back, m1 may have gone
    assert isinstance(down, Down)


def test_unsent_leaves_a_message_waiting_for_its_prompt(sim, links):
    link = up(links(sim.port))
    sim.hold_prompt = True  # m1's AT+CMGS line went: it is the modem's now, not taken back
    link.submit("m1", NUMBER, "waits for the prompt", 1.0)
    link.submit("m2", NUMBER, "queued", 1.0)
    run(link, 1.0, lambda ev: any(c.startswith("AT+CMGS=") for c in sim.commands))
    assert link.unsent() == ["m2"]


def test_unsent_gives_back_a_not_sent_not_yet_polled(sim, links):
    link = links("auto")
    link.submit("m1", NUMBER, "hello", 3.0)
    assert link.unsent() == ["m1"]
    assert link.poll(3.0) == []
