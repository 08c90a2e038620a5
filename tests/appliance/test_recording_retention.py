"""Retention: recordings and voicemail deleted by age (each kind its own limit) and by disk quota, oldest first; the
call records keep their calls with ``recording`` cleared, the index says when and why, the journal has the event.
Recordings made by real calls on the simulated card, days apart in virtual time."""

from __future__ import annotations

import asyncio

import pytest

from appliance import recordings as recmod
from appliance.recstore import MIB, plan_retention
from appliance.wavfile import HEADER_SIZE
from drivers.sim import AgentScript, CallerScript
from tests.appliance.test_recording_policy import EPOCH0, build_core

DAY = 86400.0


def row(n, kind, start, nbytes):
    return {"number": n, "kind": kind, "start_ts": start, "bytes": nbytes}


def test_plan_by_age_each_kind_its_own_limit():
    now = 100 * DAY
    rows = [row(1, "call", now - 9 * DAY, 10), row(2, "voicemail", now - 9 * DAY, 10),
            row(3, "call", now - 5 * DAY - 1, 10), row(4, "voicemail", now - 3 * DAY - 1, 10),
            row(5, "call", now - 5 * DAY + 1, 10), row(6, "voicemail", now - 1, 10)]
    plan = plan_retention(rows, now, keep_days=5, voicemail_keep_days=3, max_bytes=0)
    assert [(r["number"], why) for r, why in plan] == [(1, "age"), (2, "age"), (3, "age"), (4, "age")]
    plan = plan_retention(rows, now, keep_days=5, voicemail_keep_days=0, max_bytes=0)  # voicemail kept for ever
    assert [(r["number"], why) for r, why in plan] == [(1, "age"), (3, "age")]
    assert plan_retention(rows, now, 0, 0, 0) == []


def test_plan_by_quota_oldest_first_counting_what_is_being_recorded():
    rows = [row(1, "call", 10.0, 400), row(2, "voicemail", 20.0, 300), row(3, "call", 30.0, 200),
            row(4, "call", 40.0, 100)]
    assert plan_retention(rows, 50.0, 0, 0, max_bytes=1000) == []  # exactly at the quota
    assert [(r["number"], why) for r, why in plan_retention(rows, 50.0, 0, 0, max_bytes=999)] == [(1, "quota")]
    assert [r["number"] for r, _ in plan_retention(rows, 50.0, 0, 0, max_bytes=999, extra_bytes=400)] == [1, 2]
    # age first, then the quota over what is left
    plan = plan_retention(rows, 50.0 + 2 * DAY, 1, 0, max_bytes=300)
    assert [(r["number"], why) for r, why in plan] == [(1, "age"), (3, "age"), (4, "age")]
    plan = plan_retention(rows, 50.0 + 2 * DAY, 1, 0, max_bytes=299)
    assert [(r["number"], why) for r, why in plan] == [(1, "age"), (3, "age"), (4, "age"), (2, "quota")]


def calls_on_a_day(root, epoch, talks, voicemail_s=None, **recording):
    """A core started at ``epoch``: one caller per ``talks`` (answered, talking that long, all at once), and with
    ``voicemail_s`` one more who leaves a message that long; returns their call records by caller."""
    agent = AgentScript(ring_delay_s=1.0, talk_s=1000.0)
    core, card, _ = build_core(root, agent=agent, epoch=epoch, recording={"min_free_mb": 0, **recording})
    for i, talk in enumerate(talks):
        card.add_caller(CallerScript(f"1380000{int(epoch // DAY) % 1000:03d}{i}", arrive_at=0.5 + i * 0.5, digits="1",
                                     digit_delay_s=1.0, talk_s=talk))
    if voicemail_s is not None:
        card.add_caller(CallerScript(f"1370000{int(epoch // DAY) % 1000:03d}0", arrive_at=0.5, digits="3",
                                     digit_delay_s=1.0, patience_s=voicemail_s + 1.0))  # greeting 1 s, beep 0.4 s
    core.runtime.run_until(max([*talks, (voicemail_s or 0) + 5]) + 6.0)
    core.settle()
    calls = {c["caller"]: c for c in core.journal.calls(since_ts=epoch)}
    core.close()
    return calls


def test_age_and_quota_on_real_recordings(tmp_path):
    root = tmp_path / "data"
    old = calls_on_a_day(root, EPOCH0 - 10 * DAY, [10.0], voicemail_s=5.0)  # 2025-11-18
    recent = calls_on_a_day(root, EPOCH0 - 3 * DAY, [50.0, 50.0, 50.0])  # 2025-11-25, three at once
    assert all(c["recording"] for c in [*old.values(), *recent.values()])
    assert (root / "recordings/2025/11/18").is_dir() and (root / "voicemail/2025/11/18").is_dir()
    old_call, old_vm = sorted(old.values(), key=lambda c: c["disposition"])  # answered, voicemail
    assert old_vm["disposition"] == "voicemail"
    first, second, third = sorted(recent.values(), key=lambda c: c["agent_answer_ts"])
    # sizes: three 50 s mono recordings are 1.2 MB, over a 1 MiB quota by less than one of them
    assert 3 * (HEADER_SIZE + 50 * 8000) > MIB > 2 * (HEADER_SIZE + 50 * 8000)

    # the box starts again today with calls kept 5 days, voicemail for ever, and 1 MiB in all
    agent = AgentScript(ring_delay_s=1.0, talk_s=5.0)
    core, _, events = build_core(root, agent=agent, recording={"keep_days": 5, "voicemail_keep_days": 0,
                                                               "max_mb": 1, "min_free_mb": 0})
    try:
        core.settle()
        rows = {r["number"]: r for r in core.recindex.rows()}
        deleted = {r["path"]: (r["note"], r["deleted_ts"]) for r in rows.values() if r["state"] == "deleted"}
        assert deleted == {old_call["recording"]: ("age", EPOCH0), old_vm["recording"]: ("quota", EPOCH0),
                           first["recording"]: ("quota", EPOCH0)}
        kept = {r["path"] for r in rows.values() if r["state"] == "done"}
        assert kept == {second["recording"], third["recording"]}
        for path in deleted:
            assert not (root / path).exists()
        for path in kept:
            assert (root / path).is_file()
        # the old day's folders went with their last files
        assert not (root / "recordings/2025/11/18").exists() and list((root / "voicemail").rglob("*")) == []
        assert sorted(p.name for p in (root / "recordings/2025").iterdir()) == ["11"]
        assert sorted(p.name for p in (root / "recordings/2025/11").iterdir()) == ["25"]
        # the calls are all still there; those whose file went have no recording any more
        calls = {c["call_id"]: c for c in core.journal.calls()}
        assert len(calls) == 5
        for c in (old_call, old_vm, first):
            assert calls[c["call_id"]]["recording"] is None
            assert calls[c["call_id"]]["disposition"] == c["disposition"]
            [event] = [e for e in core.journal.events(c["call_id"]) if e["type"] == "recording.deleted"]
            number = next(n for n, r in rows.items() if r["path"] == c["recording"])
            assert (event["ts"], event["data"]) == (EPOCH0, {"path": c["recording"], "number": number,
                                                             "reason": deleted[c["recording"]][0]})
        for c in (second, third):
            assert calls[c["call_id"]]["recording"] == c["recording"]
        # within the quota now, recordings in progress counted: the next round deletes nothing
        assert core.recording_housekeeping().deleted == []
    finally:
        core.close()


def test_the_periodic_round_runs_off_the_tick(tmp_path, monkeypatch):
    """In real time the rounds run on the loop's task (work on a thread); retention removes what turned too old."""
    root = tmp_path / "data"
    calls = calls_on_a_day(root, EPOCH0 - 2 * DAY, [3.0])
    [call] = calls.values()
    core, _, _ = build_core(root, agent=AgentScript(), recording={"keep_days": 3, "min_free_mb": 0})
    monkeypatch.setattr(recmod, "SPACE_CHECK_S", 0.01)
    monkeypatch.setattr(recmod, "RETENTION_S", 0.0)
    try:
        assert (root / call["recording"]).is_file()  # two days old: kept at start
        core.recstore.settings = {**core.recstore.settings, "keep_days": 1}  # as config.reload would

        async def run():
            core.start_housekeeping()
            for _ in range(500):
                await asyncio.sleep(0.01)
                if not (root / call["recording"]).exists():
                    break
            core.close_recordings()

        asyncio.run(run())
        core.settle()
        assert not (root / call["recording"]).exists()
        assert core.journal.get_call(call["call_id"])["recording"] is None
        [r] = core.recindex.of_call(call["call_id"])
        assert (r["state"], r["note"]) == ("deleted", "age")
    finally:
        core.close()


@pytest.mark.parametrize("mode", ["mono", "stereo"])
def test_files_the_index_lacks_are_registered_at_start(tmp_path, mode):
    """Recordings made before the index existed (or whose row a crash lost) get numbers at the next start, in the
    order of their folders; a row whose file has gone is marked deleted."""
    root = tmp_path / "data"
    old = calls_on_a_day(root, EPOCH0 - DAY, [4.0, 4.0], mode=mode)
    first, second = sorted(old.values(), key=lambda c: c["agent_answer_ts"])
    core, _, _ = build_core(root, agent=AgentScript(), recording={"min_free_mb": 0})
    assert [(r["number"], r["call_id"]) for r in core.recindex.rows()] == \
        [(1, first["call_id"]), (2, second["call_id"])]
    core.journal.run(lambda con: con.execute("DELETE FROM recordings WHERE number = 1")).result()  # a lost row
    core.close()
    (root / second["recording"]).unlink()  # a file gone by hand
    core, _, _ = build_core(root, agent=AgentScript(), recording={"min_free_mb": 0})
    try:
        c = core.recordings_checked
        assert (c.files, c.registered, c.orphaned, c.missing, c.next_number) == \
            (1, [first["recording"]], [], [second["recording"]], 4)
        core.settle()
        r, gone = sorted(core.recindex.rows(), key=lambda r: r["number"])[::-1]
        assert (gone["number"], gone["state"], gone["note"]) == (2, "deleted", "missing")
        assert core.journal.get_call(second["call_id"])["recording"] is None
        assert core.journal.get_call(first["call_id"])["recording"] == first["recording"]
        assert (r["number"], r["call_id"], r["state"], r["kind"]) == (3, first["call_id"], "done", "call")
        # its start estimated from the file, kept within the day its folder names (local time)
        assert EPOCH0 - DAY - 11 * 3600 - 20 * 60 <= r["start_ts"] < EPOCH0 - DAY + 12 * 3600 + 40 * 60
        assert r["seconds"] == pytest.approx(first["talk_s"], abs=0.021)
    finally:
        core.close()
