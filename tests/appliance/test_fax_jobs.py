"""Fax send jobs in call control (``appliance.faxcalls``, ``appliance.faxjobs``) without audio: what a job is
refused for, a job that waits for a free trunk channel without using a try, cancelling, and the job's view."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.config import validate
from appliance.datadir import DataDir
from appliance.faxcalls import NO_TRUNK_WAIT_S
from appliance.faxstore import FaxStore
from appliance.outbound import DialRefused
from appliance.runtime import MIN_EVENT_STEP_S
from drivers.sim import AgentScript, CallerScript, OutboundScript, SimCard
from dsp.fax.tiff import STANDARD_LPI, FaxPage
from tests.appliance.simcore import cores
from tests.dsp.faxpages import text_page

EPOCH0 = 1_764_300_000.0
BUSY, RINGS = "02155500404", "02155500505"
PAGES = [FaxPage(text_page(2, rows=50), y_resolution=STANDARD_LPI)]


@pytest.fixture
def core(tmp_path):
    with cores() as make:
        data = DataDir.open(tmp_path / "data", create=True)
        cfg = validate({"card": {"trunk_channels": 1, "seats": 1}})
        card = SimCard(1, 1, agent=AgentScript(ring_delay_s=1.0, talk_s=30.0), media=False, seed=1,
                       network={BUSY: OutboundScript("busy", setup_s=0.5, tone_s=2.0),
                                RINGS: OutboundScript("no_answer", setup_s=0.5, ring_s=30.0)})
        yield make(data, cfg, card, epoch=EPOCH0, media=False)


def submit(core, number=BUSY, pages=PAGES, **kw):
    job, actions = core.logic.fax_submit(number, pages, "doc.pdf", core.runtime.now, **kw)
    core.runtime.apply(actions, core.runtime.now)
    return job


@pytest.mark.parametrize("args,arg,message", [
    ({"number": "12"}, "number", "number '12' is not a phone number"),
    ({"pages": []}, "path", "doc.pdf: the document has no pages"),
    ({"tries": 0}, "tries", "tries 0 must be 1..10"),
    ({"tries": 11}, "tries", "tries 11 must be 1..10"),
    ({"interval_s": -1.0}, "interval_s", "interval_s -1.0 must be 0..86400 s"),
])
def test_a_job_is_refused_naming_what_is_wrong(core, args, arg, message):
    with pytest.raises(DialRefused) as err:
        submit(core, **args)
    assert err.value.arg == arg and str(err.value).startswith(message)
    assert core.logic.fax_jobs == {}


def test_a_job_waits_for_a_free_channel_without_using_a_try(core):
    core.card.add_caller(CallerScript("13800138000", 0.5, digits="1", talk_s=None))  # the only channel, 30 s
    core.runtime.run_until(2.0)
    job = submit(core, tries=1)
    core.runtime.run_until(2.0 + 3 * NO_TRUNK_WAIT_S + 0.1)
    # event mode looks 1 ms after the submission (MIN_EVENT_STEP_S), then every NO_TRUNK_WAIT_S: 4 looks so far
    assert (job.state, job.attempts) == ("queued", [])
    assert job.next_at == pytest.approx(2.0 + MIN_EVENT_STEP_S + 4 * NO_TRUNK_WAIT_S)
    core.runtime.run_until(60.0)  # the voice call ends at about 33 s; the job dials at its next look
    assert job.state == "failed" and [(a["result"], a["cause"]) for a in job.attempts] == [("busy", 17)]
    assert job.cause == "busy (cause 17)"
    core.settle()
    call = core.journal.get_call(job.attempts[0]["call_id"])
    assert (call["direction"], call["called"], call["disposition"], call["result"], call["cause"]) == \
        ("out", BUSY, "failed", "busy", 17)


def test_a_queued_job_cancelled_fails_as_cancelled_and_is_listed(core):
    job = submit(core, tries=3, interval_s=100.0)
    core.runtime.run_until(5.0)  # busy at once: waiting for its second try
    assert job.state == "queued" and len(job.attempts) == 1
    core.runtime.apply(core.logic.fax_cancel(job.job_id, 5.0), 5.0)
    assert (job.state, job.cause, len(job.attempts)) == ("failed", "cancelled", 1)
    core.runtime.run_until(200.0)
    assert len(job.attempts) == 1  # never dialled again
    core.settle()
    (row,) = core.journal.run(lambda con: con.execute("SELECT key, result, cause FROM faxes").fetchall()).result(5)
    assert tuple(row) == (job.job_id, "failed", "cancelled")


def test_a_job_cancelled_while_dialling_hangs_up_and_records_the_attempt(core):
    job = submit(core, number=RINGS, tries=3)
    core.runtime.run_until(5.0)
    assert job.state == "dialling" and core.card.trunk_out[0].state == "alerting"
    core.runtime.apply(core.logic.fax_cancel(job.job_id, 5.0), 5.0)
    assert (job.state, job.cause) == ("failed", "cancelled") and core.card.trunk_out == {}  # hung up
    assert [(a["result"], a["error"]) for a in job.attempts] == [("no_answer", "cancelled")]
    assert core.logic._trunk_free(0)
    core.runtime.run_until(200.0)
    assert len(job.attempts) == 1


def test_the_jobs_view_counts_attempts_and_gives_wall_clock_times(core):
    job = submit(core, tries=2, interval_s=30.0)
    view = job.view(core.clock.epoch)
    assert view == {"job_id": job.job_id, "number": BUSY, "document": "doc.pdf", "pages": 1, "state": "queued",
                    "page": 0, "of": 1, "tries": 2, "interval_s": 30.0, "attempt": 0, "created": EPOCH0,
                    "next_at": EPOCH0, "attempts": [], "cause": None, "tiff": None}
    core.runtime.run_until(0.1)
    assert job.view(core.clock.epoch)["attempt"] == 1 and job.state == "dialling"
    core.runtime.run_until(10.0)
    v = job.view(core.clock.epoch)
    assert (v["state"], v["attempt"], v["next_at"]) == ("queued", 1, pytest.approx(EPOCH0 + 32.5, abs=0.05))


def test_an_unfinished_job_survives_a_restart_and_one_whose_document_is_gone_fails(tmp_path):
    def start(make, epoch):
        data = DataDir.open(tmp_path / "data", create=True)
        cfg = validate({"card": {"trunk_channels": 1, "seats": 1}})
        card = SimCard(1, 1, media=False, seed=1, network={BUSY: OutboundScript("busy", setup_s=0.5, tone_s=2.0)})
        return make(data, cfg, card, epoch=epoch, media=False)

    with cores() as make:
        first = start(make, EPOCH0)
        kept = submit(first, tries=3, interval_s=100.0)
        kept.tiff = first.faxes.write_document(kept.job_id, PAGES, EPOCH0)
        gone = submit(first, tries=2, interval_s=100.0)
        gone.tiff = "fax/out/2025-11-28/missing.tif"  # as if the file was lost
        first.runtime.run_until(10.0)  # one busy attempt each (one channel: one after the other), each kept again
        assert [len(j.attempts) for j in (kept, gone)] == [1, 1]
        first.close()
        second = start(make, EPOCH0 + 50.0)  # 50 s later: the next tries are due 100 s after the first
        jobs = second.logic.fax_jobs
        assert jobs[kept.job_id].state == "queued" and len(jobs[kept.job_id].attempts) == 1
        assert jobs[kept.job_id].next_at == pytest.approx(kept.next_at - 50.0)
        assert np.array_equal(jobs[kept.job_id].pages[0].pixels, PAGES[0].pixels)
        assert jobs[gone.job_id].state == "failed"
        assert jobs[gone.job_id].cause.startswith("the document kept for the job cannot be read: ")
        second.runtime.run_until(200.0)
        assert jobs[kept.job_id].state == "failed" and len(jobs[kept.job_id].attempts) == 3
        second.settle()
        left = second.journal.run(lambda con: con.execute("SELECT count(*) FROM fax_jobs").fetchone()[0]).result(5)
        assert left == 0  # finished jobs are forgotten there (their records are in faxes)
        rows = second.journal.run(lambda con: FaxStore.entries(con, "out")).result(5)
        assert sorted((r["key"], len(r["attempts"])) for r in rows) == sorted([(kept.job_id, 3), (gone.job_id, 1)])
