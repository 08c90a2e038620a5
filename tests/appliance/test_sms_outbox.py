"""The SMS outbox (appliance.sms.outbox): states, exactly-once across restarts and unplugs, backoff, rate limit."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from appliance.apischema import CommandError
from appliance.errors import ApplianceError, ConfigError
from appliance.sms.outbox import Outbox

T0 = 1_800_000_000.0


@pytest.fixture
def path(tmp_path):
    return tmp_path / "outbox.sqlite"


def send(box, msg_id, ref, now):
    """What a sender does when the transport accepts: claim, hand over, sent."""
    assert box.claim(msg_id, now)
    box.handed_over(msg_id, now)
    return box.sent(msg_id, ref, now)


def test_file_is_wal_with_schema(path):
    Outbox(path).close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"messages_due", "messages_ref"} <= names


def test_add_claim_sent_delivered(path):
    with Outbox(path) as box:
        mid = box.add("+8613800138000", "您好", "cmpp", T0, origin="api", msg_id="m1")
        assert mid == "m1"
        m = box.get("m1")
        assert (m.state, m.to_number, m.text, m.via, m.tries, m.parts, m.origin) == \
            ("queued", "+8613800138000", "您好", "cmpp", 0, 1, "api")
        assert [d.id for d in box.due(T0, "cmpp", 10)] == ["m1"]
        assert box.claim("m1", T0 + 1)
        assert box.due(T0 + 1, "cmpp", 10) == []
        box.handed_over("m1", T0 + 2)
        m = box.sent("m1", "ref-7", T0 + 3)
        assert (m.state, m.transport_ref, m.sent_at) == ("sent", "ref-7", T0 + 3)
        m = box.delivered("ref-7", "DELIVRD", T0 + 10)
        assert (m.id, m.state, m.done_at, m.reason) == ("m1", "delivered", T0 + 10, None)
        assert box.counts() == {"queued": 0, "sending": 0, "sent": 0, "delivered": 1, "failed": 0, "unknown": 0}


def test_failed_delivery_report_and_unknown_ref(path, caplog):
    with Outbox(path) as box:
        box.add("10086", "hi", "smgp", T0, msg_id="a")
        send(box, "a", "r1", T0)
        with caplog.at_level(logging.WARNING, logger="appliance.sms.outbox"):
            assert box.delivered("nope", "DELIVRD", T0 + 1) is None
        assert "unknown transport ref 'nope'" in caplog.text
        m = box.delivered("r1", "UNDELIV", T0 + 2)
        assert (m.state, m.reason) == ("failed", "delivery report: UNDELIV")
        again = box.delivered("r1", "DELIVRD", T0 + 3)  # a repeated report changes nothing
        assert (again.state, again.done_at) == ("failed", T0 + 2)


def test_long_text_counts_parts(path):
    with Outbox(path) as box:
        assert box.get(box.add("10086", "a" * 161, "modem", T0)).parts == 2
        assert box.get(box.add("10086", "短" * 71, "modem", T0)).parts == 2


def test_two_claimers_one_wins(path):
    a, b = Outbox(path), Outbox(path)
    try:
        a.add("10086", "x", "modem", T0, msg_id="m")
        assert [a.claim("m", T0), b.claim("m", T0), a.claim("m", T0)] == [True, False, False]
        assert b.get("m").state == "sending"
    finally:
        a.close()
        b.close()


def test_backoff_times_exact_and_max_tries(path):
    with Outbox(path, backoff_s=30, backoff_cap_s=100, max_tries=5) as box:
        box.add("10086", "x", "modem", T0, msg_id="m")
        now, waits = T0, []
        for _ in range(4):
            assert box.due(now, "modem", 1)[0].id == "m"
            assert box.claim("m", now)
            m = box.failed_try("m", "+CMS ERROR: 38", now, retryable=True)
            assert m.state == "queued"
            waits.append(m.next_try_at - now)
            assert box.due(m.next_try_at - 0.001, "modem", 1) == []
            now = m.next_try_at
        assert waits == [30.0, 60.0, 100.0, 100.0]
        assert box.claim("m", now)
        m = box.failed_try("m", "+CMS ERROR: 38", now, retryable=True)
        assert (m.state, m.tries, m.reason, m.done_at) == ("failed", 5, "+CMS ERROR: 38 (after 5 tries)", now)
        assert box.due(now + 10_000, "modem", 1) == []


def test_not_retryable_fails_at_once(path):
    with Outbox(path) as box:
        box.add("10086", "x", "cmpp", T0, msg_id="m")
        box.claim("m", T0)
        m = box.failed_try("m", "Submit_Resp result 9", T0, retryable=False)
        assert (m.state, m.tries, m.reason) == ("failed", 1, "Submit_Resp result 9")


def test_due_oldest_first_and_only_its_transport(path):
    with Outbox(path) as box:
        box.add("10086", "b", "modem", T0 + 5, msg_id="b")
        box.add("10086", "a", "modem", T0, msg_id="a")
        box.add("10086", "c", "smgp", T0, msg_id="c")
        box.add("10086", "later", "modem", T0 + 100, msg_id="later")
        assert [m.id for m in box.due(T0 + 10, "modem", 10)] == ["a", "b"]
        assert [m.id for m in box.due(T0 + 10, "modem", 1)] == ["a"]


def test_rate_limit_exact(path):
    with Outbox(path, rates={"modem": 6}) as box:  # 6 a minute: one token every 10 s, a bucket of 6
        for i in range(20):
            box.add("10086", f"m{i}", "modem", T0, msg_id=f"m{i:02d}")
        first = box.due(T0, "modem", 100)
        assert [m.id for m in first] == [f"m{i:02d}" for i in range(6)]
        for m in first:
            box.claim(m.id, T0)
        assert box.due(T0 + 9.9, "modem", 100) == []
        got = box.due(T0 + 10, "modem", 100)
        assert [m.id for m in got] == ["m06"]
        box.claim("m06", T0 + 10)
        got = box.due(T0 + 40, "modem", 2)  # 3 tokens, limit 2: one token is kept
        assert [m.id for m in got] == ["m07", "m08"]
        for m in got:
            box.claim(m.id, T0 + 40)
        assert [m.id for m in box.due(T0 + 40, "modem", 100)] == ["m09"]


def test_rate_limit_survives_reopen(path):
    with Outbox(path, rates={"smgp": 60}, burst={"smgp": 2}) as box:
        for i in range(10):
            box.add("10086", "x", "smgp", T0, msg_id=f"m{i}")
        for m in box.due(T0, "smgp", 10):
            box.claim(m.id, T0)
    with Outbox(path, rates={"smgp": 60}, burst={"smgp": 2}) as box:  # a restart: the bucket is still empty
        assert box.due(T0 + 0.5, "smgp", 10) == []
        assert [m.id for m in box.due(T0 + 1, "smgp", 10)] == ["m2"]


def test_unlimited_transport_is_not_limited(path):
    with Outbox(path, rates={"modem": 1}) as box:
        for i in range(5):
            box.add("10086", "x", "http", T0, msg_id=f"m{i}")
        assert len(box.due(T0, "http", 10)) == 5


@pytest.mark.parametrize("point", ["before_claim", "after_claim", "after_hand_over", "after_sent"])
def test_restart_at_each_point(path, point):
    """Close and reopen at each point: the message is sent exactly once, or kept for a human when that cannot
    be decided."""
    box = Outbox(path)
    box.add("10086", "x", "modem", T0, msg_id="m")
    if point != "before_claim":
        assert box.claim("m", T0)
    if point in ("after_hand_over", "after_sent"):
        box.handed_over("m", T0 + 1)
    if point == "after_sent":
        box.sent("m", "42", T0 + 2)
    box.close()
    box = Outbox(path)
    out = box.recover(T0 + 60)
    m = box.get("m")
    if point in ("before_claim", "after_claim"):
        assert out == {"requeued": ["m"] if point == "after_claim" else [], "unknown": []}
        assert (m.state, m.tries) == ("queued", 0)
        assert [d.id for d in box.due(T0 + 60, "modem", 10)] == ["m"]
        send(box, "m", "43", T0 + 61)
        assert box.get("m").state == "sent"
    elif point == "after_hand_over":
        assert out == {"requeued": [], "unknown": ["m"]}
        assert m.state == "unknown" and "handed over" in m.reason
        assert box.due(T0 + 10_000, "modem", 10) == []  # never re-sent blindly
        assert box.counts()["unknown"] == 1
        assert box.resolve("m", True, T0 + 100).state == "queued"  # a human decides
        assert [d.id for d in box.due(T0 + 100, "modem", 10)] == ["m"]
    else:
        assert out == {"requeued": [], "unknown": []}
        assert (m.state, m.transport_ref) == ("sent", "42")
        assert box.due(T0 + 10_000, "modem", 10) == []
        assert box.delivered("42", "0", T0 + 70).state == "delivered"
    box.close()


def test_unknown_resolved_by_delivery_report_or_given_up(path):
    with Outbox(path) as box:
        for mid in ("a", "b"):
            box.add("10086", "x", "cmpp", T0, msg_id=mid)
            box.claim(mid, T0)
            box.handed_over(mid, T0)
        box.recover(T0 + 1)
        assert box.sent("a", "99", T0 + 2).state == "sent"  # a late acceptance still counts
        assert box.delivered("99", "DELIVRD", T0 + 3).state == "delivered"
        m = box.resolve("b", False, T0 + 4)
        assert (m.state, m.done_at) == ("failed", T0 + 4)
        with pytest.raises(CommandError, match="cannot resend a message that is failed") as e:
            box.resolve("b", True, T0 + 5)
        assert e.value.code == "conflict"


def test_unplug_mid_send(path):
    with Outbox(path) as box:
        for mid in ("a", "b", "c"):
            box.add("10086", mid, "modem", T0, msg_id=mid)
        box.add("10086", "s", "smgp", T0, msg_id="s")
        for mid in ("a", "b", "s"):
            assert box.claim(mid, T0)
        box.handed_over("b", T0 + 1)
        out = box.transport_down("modem", T0 + 2)
        assert out == {"requeued": ["a"], "unknown": ["b"]}
        assert [(box.get(i).state, box.get(i).tries) for i in "abcs"] == \
            [("queued", 0), ("unknown", 0), ("queued", 0), ("sending", 0)]
        # back again: both waiting messages go, no try used, the handed-over one is not sent twice
        assert [m.id for m in box.due(T0 + 30, "modem", 10)] == ["a", "c"]


def test_add_same_msg_id_is_idempotent(path):
    with Outbox(path) as box:
        assert box.add("10086", "x", "modem", T0, msg_id="k") == "k"
        assert box.add("10086", "x", "modem", T0 + 5, msg_id="k") == "k"
        assert box.counts()["queued"] == 1
        with pytest.raises(CommandError, match="msg_id: 'k' is already used") as e:
            box.add("10086", "other", "modem", T0, msg_id="k")
        assert e.value.code == "conflict"


@pytest.mark.parametrize("kwargs, message", [
    ({"to": "12"}, "to: '12' must be 3 to 20 digits"),
    ({"to": "138-0013"}, "to: '138-0013'"),
    ({"to": 10086}, "to: 10086"),
    ({"text": ""}, "text: '' must be a non-empty string"),
    ({"text": None}, "text: None"),
    ({"text": "a" * 153 * 256}, "text: too long"),
    ({"via": "pigeon"}, "via: 'pigeon' is not one of modem, smgp, cmpp, http"),
    ({"now": float("nan")}, "now: nan must be a finite number"),
    ({"msg_id": ""}, "msg_id: '' must be a string"),
])
def test_bad_input_names_the_field(path, kwargs, message):
    args = {"to": "10086", "text": "x", "via": "modem", "now": T0} | kwargs
    with Outbox(path) as box:
        msg_id = args.pop("msg_id", None)
        with pytest.raises(CommandError, match=message.replace("(", r"\(").replace("+", r"\+")) as e:
            box.add(**args, msg_id=msg_id)
        assert e.value.code == "bad_argument"
        assert box.counts()["queued"] == 0


def test_bad_calls(path):
    with Outbox(path) as box:
        with pytest.raises(CommandError, match="msg_id: 'nope' is not in the sms outbox"):
            box.get("nope")
        box.add("10086", "x", "modem", T0, msg_id="m")
        with pytest.raises(CommandError, match="cannot mark sent a message that is queued"):
            box.sent("m", "1", T0)
        with pytest.raises(CommandError, match="cannot fail a try of a message that is queued"):
            box.failed_try("m", "x", T0)
        with pytest.raises(CommandError, match="state: 'gone' is not one of"):
            box.list("gone")
        assert box.get("m").state == "queued"


@pytest.mark.parametrize("kwargs, message", [
    ({"rates": {"pigeon": 1}}, "rates: transport 'pigeon'"),
    ({"rates": {"modem": 0}}, r"rates.modem=0: must be a number > 0"),
    ({"max_tries": 0}, "max_tries=0"),
    ({"backoff_s": 0}, "backoff_s=0"),
])
def test_bad_config(path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Outbox(path, **kwargs)


def test_list_and_counts(path):
    with Outbox(path) as box:
        for i in range(5):
            box.add("10086", "x", "modem", T0 + i, msg_id=f"m{i}")
        send(box, "m1", "r", T0 + 10)
        assert [m.id for m in box.list(limit=2)] == ["m4", "m3"]
        assert [m.id for m in box.list(limit=2, offset=2)] == ["m2", "m1"]
        assert [m.id for m in box.list("sent")] == ["m1"]
        assert box.counts() == {"queued": 4, "sending": 0, "sent": 1, "delivered": 0, "failed": 0, "unknown": 0}
        assert box.get("m1").transport_ref == "r"


def test_reused_ref_matches_latest_message_of_its_transport(path):
    with Outbox(path) as box:
        for mid, via in (("old", "modem"), ("new", "modem"), ("gw", "cmpp")):
            box.add("10086", mid, via, T0, msg_id=mid)
            send(box, mid, "7", T0)  # a modem MR wraps at 256: "7" comes round again
        assert box.delivered("7", "0", T0 + 1, via="modem").id == "new"
        assert box.get("old").state == "sent"
        assert box.delivered("7", "DELIVRD", T0 + 1, via="cmpp").id == "gw"


def test_io_error_after_hand_over_is_not_a_refusal(path):
    with Outbox(path) as box:
        box.add("10086", "x", "modem", T0, msg_id="m")
        box.claim("m", T0)
        box.handed_over("m", T0)
        box.transport_down("modem", T0 + 1)
        with pytest.raises(CommandError, match="cannot fail a try of a message that is unknown"):
            box.failed_try("m", "write failed", T0 + 1)
        assert box.due(T0 + 10_000, "modem", 10) == []


def test_rate_bucket_ignores_clock_stepping_back(path):
    with Outbox(path, rates={"modem": 60}, burst={"modem": 1}) as box:
        for i in range(3):
            box.add("10086", "x", "modem", T0 - 100, msg_id=f"m{i}")
        assert len(box.due(T0, "modem", 10)) == 1
        assert box.due(T0 - 50, "modem", 10) == []  # stepped back: no tokens made
        assert box.due(T0 + 0.5, "modem", 10) == []
        assert [m.id for m in box.due(T0 + 1, "modem", 10)] == ["m0"]  # m0 was handed out but never claimed


def test_newer_schema_and_not_a_database_refused(path, tmp_path):
    Outbox(path).close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 2")
    con.close()
    with pytest.raises(ApplianceError, match="schema version 2; this firmware knows up to 1"):
        Outbox(path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ApplianceError, match="cannot be opened as an SQLite database"):
        Outbox(junk)


def test_release_takes_no_try_and_is_due_at_once(path):
    with Outbox(path, backoff_s=30.0) as box:
        box.add("13800138000", "hi", "modem", T0, msg_id="m")
        assert box.claim("m", T0)
        box.handed_over("m", T0)
        m = box.release("m", "not sent: GSM modem unplugged", T0 + 5)
        assert (m.state, m.tries, m.handed_over_at, m.next_try_at, m.reason) == (
            "queued", 0, None, T0 + 5, "not sent: GSM modem unplugged")
        assert box.claim("m", T0 + 6)
        box.handed_over("m", T0 + 6)
        box.transport_down("modem", T0 + 7)  # the Down came first: unknown ...
        assert box.get("m").state == "unknown"
        assert box.release("m", "not sent: modem unplugged", T0 + 8).state == "queued"  # ... the transport knows
        with pytest.raises(CommandError, match="cannot release a message that is queued"):
            box.release("m", "again", T0 + 9)


def test_uncertain_makes_unknown_only_from_sending(path):
    with Outbox(path) as box:
        box.add("13800138000", "hi", "http", T0, msg_id="m")
        assert box.claim("m", T0)
        box.handed_over("m", T0)
        m = box.uncertain("m", "no answer after the request went: timed out", T0 + 10)
        assert (m.state, m.reason, m.tries) == ("unknown", "no answer after the request went: timed out", 0)
        with pytest.raises(CommandError, match="cannot mark unknown a message that is unknown"):
            box.uncertain("m", "again", T0 + 11)
        assert box.sent("m", "late-ref", T0 + 12).state == "sent"  # a late answer still resolves it


def test_withdraw_fails_only_queued_campaign_messages_to_the_number(path):
    with Outbox(path) as box:
        box.add("13900139000", "sale 1", "smgp", T0, msg_id="c1", campaign_id="7")
        box.add("13900139000", "sale 2", "smgp", T0, msg_id="c2", campaign_id="7")
        box.add("13900139000", "your order", "smgp", T0, msg_id="api")  # not a campaign's
        box.add("13800138000", "sale 1", "smgp", T0, msg_id="other", campaign_id="7")
        send(box, "c1", "r1", T0)  # already gone
        assert box.pending("7") == 2
        assert box.withdraw("13900139000", "opted out by reply", T0 + 1) == ["c2"]
        assert (box.get("c2").state, box.get("c2").reason) == ("failed", "opted out by reply")
        assert [box.get(i).state for i in ("c1", "api", "other")] == ["sent", "queued", "queued"]
        assert box.pending("7") == 1 and box.pending("8") == 0


def test_ready_says_what_due_would_without_writing(path):
    with Outbox(path, rates={"modem": 6.0}, burst={"modem": 1.0}) as box:
        assert not box.ready("modem", T0)
        box.add("13800138000", "a", "modem", T0, msg_id="a")
        box.add("13800138001", "b", "modem", T0, msg_id="b")
        assert box.ready("modem", T0)
        assert [m.id for m in box.due(T0, "modem", 10)] == ["a"]  # one token
        assert box.claim("a", T0)
        changes = box._con.total_changes
        assert not box.ready("modem", T0 + 9.9)  # a token every 10 s
        assert box._con.total_changes == changes  # looked, wrote nothing
        assert box.ready("modem", T0 + 10.0)
        assert [m.id for m in box.due(T0 + 10.0, "modem", 10)] == ["b"]


def test_a_report_goes_to_the_message_still_waiting_for_one(path):
    with Outbox(path) as box:
        box.add("13800138000", "old", "modem", T0, msg_id="old")
        send(box, "old", "41", T0)
        box.add("13800138001", "new", "modem", T0 + 60, msg_id="new")  # the TP-MR wrapped round to 41 again
        send(box, "new", "41", T0 + 60)
        box.delivered("41", "0", T0 + 61, via="modem")  # the newer first
        assert (box.get("new").state, box.get("old").state) == ("delivered", "sent")
        box.delivered("41", "0", T0 + 62, via="modem")  # the late one: the older, still waiting
        assert box.get("old").state == "delivered"
        m = box.delivered("41", "70", T0 + 63, via="modem", ok=False)  # a repeat changes nothing
        assert (m.id, m.state) == ("new", "delivered")
        box.add("13800138002", "x", "http", T0, msg_id="x")
        send(box, "x", "A1", T0)
        assert box.delivered("A1", "SUCCESS", T0 + 64, ok=True).state == "delivered"  # the transport's reading
