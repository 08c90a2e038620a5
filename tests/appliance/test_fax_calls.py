"""Fax end to end on the simulated card in virtual time: a real fax machine (``drivers.sim.faxparty``, a
``FaxSession`` of its own on the line's A-law audio) calls the box and sends two pages, which the box detects by
CNG, receives, stores as a TIFF-F and PNGs and journals; ``fax.send`` sends a document to a number a fax machine
answers, retries a busy number and refuses a document it cannot convert; a voice call on another channel goes on
as usual meanwhile (``appliance.faxcalls``, ``appliance.faxmedia``, ``appliance.faxapi``, ``appliance.faxstore``).

Most far machines offer only V.27 ter (4800 bit/s), so the box's sessions pick it (one offers V.29 too and is
received at 9600 bit/s); the pages are seeded text and drawings, cut to 300 rows so each fax takes about a minute
of line time.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import pytest
from PIL import Image

from appliance.client import ApiError
from appliance.config import validate
from appliance.datadir import DataDir
from drivers.sim import AgentScript, CallerScript, OutboundScript
from drivers.sim.faxparty import FaxMachine, FaxSimCard
from dsp.fax.tiff import STANDARD_LPI, FaxPage, read_tiff_f
from tests.appliance.servers import control_api
from tests.appliance.simcore import cores
from tests.dsp.faxpages import drawing_page, text_page, write_document

EPOCH0 = 1_764_300_000.0  # 2025-11-28 03:20 UTC (11:20 in Shanghai)
BOX = "4008001234"
FAX_CALLER, FAX_IDENT = "02155500202", "+86 21 5550202"
VOICE = "13800138000"
FAX_NO, BUSY = "02155500303", "02155500404"
FLOW = {"start": "menu", "nodes": {
    "menu": {"kind": "menu", "prompt": "welcome", "choices": {"1": "sales"}, "on_fail": "bye"},
    "sales": {"kind": "queue", "queue": "default"},
    "bye": {"kind": "hangup", "prompt": "goodbye"},
}}


def pages() -> list[FaxPage]:
    return [FaxPage(text_page(3, rows=300), y_resolution=STANDARD_LPI),
            FaxPage(drawing_page(4)[:300], y_resolution=STANDARD_LPI)]


def scenario(run, *, fax_callers=(), callers=(), network=None, fax_numbers=None, fax_cfg=None):
    """A core on a FaxSimCard with 4 trunk channels and one seat; ``run(core, card, api, events)`` acts on it
    (the control API served); the core is closed afterwards."""
    root = tempfile.mkdtemp(prefix="fax-")  # short: the control socket's path is limited to 107 bytes
    try:
        with cores() as new_core:
            data = DataDir.open(f"{root}/data", create=True)
            cfg = validate({"card": {"trunk_channels": 4, "seats": 1}, "ivr": {"flow": FLOW}, "fax": fax_cfg or {}})
            card = FaxSimCard(4, 1, agent=AgentScript(ring_delay_s=2.0, talk_s=20.0), media=True, seed=1,
                              network=network, fax_numbers=fax_numbers)
            for number, at, machine in fax_callers:
                card.add_fax_caller(number, at, machine)
            for c in callers:
                card.add_caller(c)
            core = new_core(data, cfg, card, epoch=EPOCH0, media=True)
            events: list[dict] = []
            core.bus.listen(lambda e: events.append(e) if e["event"].split(".")[0] in ("fax", "call") else None)
            with control_api(core) as api:
                return run(core, card, api, events, root)
    finally:
        shutil.rmtree(root)


def named(events, *names):
    return [(e["event"], e["data"]) for e in events if e["event"] in names]


# --- inbound ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inbound():
    """A fax machine calls at 1 s and sends two pages; a voice caller arrives at 3 s and talks to the agent."""
    machine = FaxMachine(ident=FAX_IDENT, pages=pages(), modems=("v27ter",))

    def run(core, card, api, events, root):
        core.runtime.run_until(90.0)
        core.settle()
        faxes = api.call("fax.list")["faxes"]
        out = {"events": events, "faxes": faxes, "machine": machine, "calls": core.journal.calls(),
               "files": {}, "voice": card.callers[1]}
        for rel in [faxes[0]["tiff"], *faxes[0]["pngs"]] if faxes and faxes[0]["tiff"] else []:
            path = os.path.join(core.data.root, rel)
            out["files"][rel] = read_tiff_f(path) if rel.endswith(".tif") else Image.open(path).copy()
        out["listing"] = sorted(os.listdir(os.path.join(core.data.root, "fax", "in", "2025-11-28")))
        return out

    return scenario(run, fax_callers=[(FAX_CALLER, 1.0, machine)],
                    callers=[CallerScript(VOICE, 3.0, digits="1", talk_s=None)])


def test_the_box_hears_cng_and_receives_both_pages_exactly(inbound):
    started = named(inbound["events"], "fax.started")
    assert [d["by"] for _, d in started] == ["cng"] and started[0][1]["number"] == FAX_CALLER
    m = inbound["machine"].result
    assert m.ok and m.pages == 2 and m.remote_ident == BOX and m.bit_rate == 4800
    tiff = next(v for k, v in inbound["files"].items() if k.endswith(".tif"))
    sent = pages()
    assert len(tiff) == 2
    for got, want in zip(tiff, sent):
        assert got.pixels.shape == want.pixels.shape == (300, 1728)
        assert np.array_equal(got.pixels, want.pixels)
        assert got.y_resolution == STANDARD_LPI


def test_each_received_page_has_a_png_of_its_size_with_square_pixels(inbound):
    pngs = {k: v for k, v in inbound["files"].items() if k.endswith(".png")}
    call_id = inbound["faxes"][0]["key"]
    assert sorted(pngs) == [f"fax/in/2025-11-28/{call_id}-001.png", f"fax/in/2025-11-28/{call_id}-002.png"]
    for img, want in zip([pngs[k] for k in sorted(pngs)], pages()):
        assert img.mode == "1" and img.size == (1728, 600)  # standard rows shown twice
        black = ~np.asarray(img, dtype=bool)
        assert np.array_equal(black[::2], want.pixels)
    assert inbound["listing"] == [f"{call_id}-001.png", f"{call_id}-002.png", f"{call_id}.tif"]  # no temp files


def test_the_fax_is_journalled_and_listed(inbound):
    (fax,) = inbound["faxes"]
    call_id = fax["key"]
    assert fax == {"id": 1, "key": call_id, "direction": "in", "number": FAX_CALLER, "remote_ident": FAX_IDENT,
                   "pages": 2, "bit_rate": 4800, "resolution": "standard", "compression": "MR", "result": "ok",
                   "cause": None, "started_ts": fax["started_ts"], "seconds": fax["seconds"], "bad_rows": 0,
                   "document": None,
                   "tiff": f"fax/in/2025-11-28/{call_id}.tif",
                   "pngs": [f"fax/in/2025-11-28/{call_id}-001.png", f"fax/in/2025-11-28/{call_id}-002.png"],
                   "attempts": [], "stored": True, "store_error": None}
    # answered at 1 s; the detector knows CNG (1100 Hz, 0.5 s on, 3 s off) by its cadence
    assert fax["started_ts"] == pytest.approx(EPOCH0 + 4.2, abs=1e-6)
    done = named(inbound["events"], "fax.done")[0][1]
    assert fax["seconds"] == done["seconds"] and 55.0 <= fax["seconds"] <= 70.0
    call = next(c for c in inbound["calls"] if c["call_id"] == call_id)
    assert call["disposition"] == "fax" and call["ended_by"] == "system" and call["caller"] == FAX_CALLER
    done = named(inbound["events"], "fax.progress", "fax.done", "fax.failed")
    assert [(n, d.get("page"), d.get("of")) for n, d in done] == [("fax.progress", 1, None),
                                                                   ("fax.progress", 2, None),
                                                                   ("fax.done", None, None)]
    assert done[-1][1]["pages"] == 2 and done[-1][1]["call_id"] == call_id


def test_a_voice_call_on_another_channel_is_answered_and_talks_through_the_fax(inbound):
    ended = {d["call_id"]: d for _, d in named(inbound["events"], "call.ended")}
    voice = next(c for c in inbound["calls"] if c["caller"] == VOICE)
    assert voice["disposition"] == "answered" and voice["seat"] == 1
    assert ended[voice["call_id"]]["talk_s"] == 20.0  # the agent's talk time, from the agent's pick-up
    assert inbound["voice"].outcome == "completed"
    answered = [d for _, d in named(inbound["events"], "call.answered")]
    assert [d["call_id"] for d in answered] == [voice["call_id"]]


def test_a_machine_with_v29_sends_at_9600_and_the_pages_are_exact():
    machine = FaxMachine(ident=FAX_IDENT, pages=pages())  # V.27 ter and V.29, as the box

    def run(core, card, api, events, root):
        core.runtime.run_until(60.0)
        core.settle()
        (fax,) = api.call("fax.list")["faxes"]
        return fax, read_tiff_f(os.path.join(core.data.root, fax["tiff"]))

    fax, kept = scenario(run, fax_callers=[(FAX_CALLER, 1.0, machine)])
    assert (fax["result"], fax["pages"], fax["bit_rate"], fax["compression"]) == ("ok", 2, 9600, "MR")
    assert machine.result.ok and machine.result.bit_rate == 9600
    assert all(np.array_equal(k.pixels, p.pixels) for k, p in zip(kept, pages())) and len(kept) == 2


def test_a_fax_cut_off_after_its_first_page_keeps_that_page_and_the_cause():
    machine = FaxMachine(ident=FAX_IDENT, pages=pages(), modems=("v27ter",))

    def run(core, card, api, events, root):
        while not any(e["event"] == "fax.progress" for e in events):
            core.runtime.run_until(core.runtime.now + 1.0)
        core.runtime.run_until(core.runtime.now + 5.0)  # page 2 has begun
        card.far_end_clears(0)
        core.runtime.run_until(core.runtime.now + 10.0)
        core.settle()
        (fax,) = api.call("fax.list", direction="in")["faxes"]
        kept = read_tiff_f(os.path.join(core.data.root, fax["tiff"]))
        return fax, kept, named(events, "fax.failed", "call.ended")

    fax, kept, ends = scenario(run, fax_callers=[(FAX_CALLER, 1.0, machine)])
    assert fax["result"] == "failed" and fax["pages"] == 1 and fax["stored"] is True
    assert fax["cause"] == "the far end cleared the call (cause 16): no command from the sender within T2 (6 s)"
    assert len(kept) == 1 and np.array_equal(kept[0].pixels, pages()[0].pixels)
    assert [n for n, _ in ends] == ["fax.failed", "call.ended"]
    assert ends[1][1]["disposition"] == "fax" and ends[1][1]["ended_by"] == "caller"


def test_a_call_to_a_fax_number_is_received_without_the_ivr():
    def run(core, card, api, events, root):
        core.runtime.run_until(12.0)
        return named(events, "fax.started", "fax.progress")

    started = scenario(run, fax_callers=[(FAX_CALLER, 1.0, FaxMachine(FAX_IDENT, pages(), ("v27ter",)))],
                       fax_cfg={"numbers": [BOX]})
    assert started == [("fax.started", {"call_id": started[0][1]["call_id"], "direction": "in",
                                        "number": FAX_CALLER, "port": 0, "by": "number"})]
    # answered at 1.0 and at once a fax: the first step after the answer
    assert started[0][1]["call_id"].endswith("-000001")


def test_with_detection_off_a_fax_machine_in_the_ivr_stays_there():
    def run(core, card, api, events, root):
        core.runtime.run_until(8.0)  # CNG is heard by 4.2 s when detection is on
        return named(events, "fax.started"), core.logic.calls[0].state

    started, state = scenario(run, fax_callers=[(FAX_CALLER, 1.0, FaxMachine(FAX_IDENT, pages(), ("v27ter",)))],
                              fax_cfg={"detect": False})
    assert started == [] and state == "ivr"


# --- outbound -----------------------------------------------------------------------------------------


def test_fax_send_sends_both_pages_to_a_fax_machine_with_progress_events():
    machine = FaxMachine(ident=FAX_IDENT, modems=("v27ter",))

    def run(core, card, api, events, root):
        doc = os.path.join(root, "offer.tif")
        write_document(doc, pages())
        job = api.call("fax.send", number=FAX_NO, path=doc)["job"]
        assert job["state"] == "queued" and job["pages"] == 2 and job["document"] == "offer.tif"
        core.runtime.run_until(1.0)
        assert api.call("fax.status", job_id=job["job_id"])["job"]["state"] == "dialling"
        core.runtime.run_until(10.0)
        mid = api.call("fax.status", job_id=job["job_id"])["job"]
        trunk = api.call("status")["trunks"][0]
        assert (trunk["state"], trunk["caller"], trunk["fax"]) == ("fax", FAX_NO, {
            "direction": "out", "job_id": job["job_id"], "sending": True, "page": 1, "of": 2})
        core.runtime.run_until(90.0)
        core.settle()
        return (job, mid, api.call("fax.status", job_id=job["job_id"])["job"], api.call("fax.list")["faxes"],
                core.journal.calls(), events, os.path.isfile(os.path.join(core.data.root, job["tiff"])))

    job, mid, final, faxes, calls, events, kept = scenario(
        run, network={FAX_NO: OutboundScript("answered", ring_s=4.0, talk_s=None)}, fax_numbers={FAX_NO: machine})
    assert (mid["state"], mid["page"], mid["of"]) == ("sending", 1, 2)
    assert machine.result.ok and machine.result.pages == 2 and machine.result.remote_ident == BOX
    for got, want in zip(machine.result.received, pages()):
        assert np.array_equal(got.pixels, want.pixels)
    flow = [(n, d.get("page"), d.get("of")) for n, d in named(events, "fax.queued", "fax.dialling", "fax.sending",
                                                              "fax.progress", "fax.done", "fax.failed")]
    assert flow == [("fax.queued", None, None), ("fax.dialling", None, None), ("fax.sending", None, 2),
                    ("fax.progress", 1, 2), ("fax.progress", 2, 2), ("fax.done", None, None)]
    assert final["state"] == "done" and final["cause"] is None and len(final["attempts"]) == 1
    attempt = final["attempts"][0]
    assert (attempt["result"], attempt["error"], attempt["fax"]["ok"], attempt["fax"]["pages"]) == \
        ("fax", None, True, 2)  # the machine's CED classified the answered attempt
    (fax,) = faxes
    assert (fax["direction"], fax["number"], fax["result"], fax["pages"], fax["remote_ident"], fax["document"]) == \
        ("out", FAX_NO, "ok", 2, FAX_IDENT, "offer.tif")
    assert fax["tiff"] == job["tiff"] and kept
    (call,) = [c for c in calls if c["call_id"] == attempt["call_id"]]
    assert (call["direction"], call["called"], call["disposition"], call["result"]) == ("out", FAX_NO, "fax", "fax")


def test_a_busy_number_is_retried_then_the_job_fails_with_the_cause():
    def run(core, card, api, events, root):
        doc = os.path.join(root, "note.tif")
        write_document(doc, pages()[:1])
        job = api.call("fax.send", number=BUSY, path=doc, tries=3, interval_s=30)["job"]
        core.runtime.run_until(40.0)
        between = api.call("fax.jobs")["jobs"]
        core.runtime.run_until(100.0)
        core.settle()
        return job, between, api.call("fax.status", job_id=job["job_id"])["job"], api.call("fax.list")["faxes"], \
            events, api.call("fax.jobs")["jobs"]

    job, between, final, faxes, events, left = scenario(
        run, network={BUSY: OutboundScript("busy", setup_s=0.5, tone_s=3.0)})
    assert [(j["job_id"], j["state"], j["attempt"], j["next_at"]) for j in between] == \
        [(job["job_id"], "queued", 2, pytest.approx(EPOCH0 + 67.02, abs=0.03))]  # busy at 37 s, 30 s to wait
    assert final["state"] == "failed" and final["cause"] == "busy (cause 17)"
    assert [(a["attempt"], a["result"], a["cause"], a["error"]) for a in final["attempts"]] == \
        [(n, "busy", 17, "busy (cause 17)") for n in (1, 2, 3)]
    retries = [d["retry_in_s"] for n, d in named(events, "fax.retry")]
    dials = [e["time"] - EPOCH0 for e in events if e["event"] == "fax.dialling"]
    assert retries == [30, 30] and dials == pytest.approx([0.02, 33.52, 67.02], abs=0.03)
    (fax,) = faxes
    assert (fax["result"], fax["cause"], fax["pages"], len(fax["attempts"])) == ("failed", "busy (cause 17)", 0, 3)
    assert left == []
    (failed,) = named(events, "fax.failed")
    assert failed[1] == {"job_id": job["job_id"], "number": BUSY, "attempts": 3, "cause": "busy (cause 17)"}


def test_fax_send_refuses_what_it_cannot_send_and_names_it():
    def run(core, card, api, events, root):
        junk = os.path.join(root, "quarterly report.pdf")
        with open(junk, "wb") as f:
            f.write(np.random.default_rng(5).integers(0, 256, 4000, dtype=np.uint8).tobytes())
        doc = os.path.join(root, "ok.tif")
        write_document(doc, pages()[:1])
        out = []
        for args in ({"number": FAX_NO, "path": junk}, {"number": FAX_NO, "path": os.path.join(root, "gone.txt")},
                     {"number": FAX_NO, "path": "ok.tif"}, {"number": "12", "path": doc},
                     {"number": FAX_NO, "path": doc, "tries": 0}):
            with pytest.raises(ApiError) as err:
                api.call("fax.send", **args)
            out.append((err.value.code, err.value.message))
        for cmd in ("fax.status", "fax.cancel"):
            with pytest.raises(ApiError) as err:
                api.call(cmd, job_id="fax-nope")
            out.append((err.value.code, err.value.message))
        return out, api.call("fax.jobs", all=True)["jobs"], events

    refusals, jobs, events = scenario(run)
    assert refusals[0][0] == "bad_argument" and "quarterly report.pdf" in refusals[0][1]
    assert refusals[1][0] == "bad_argument" and "gone.txt" in refusals[1][1]
    assert refusals[2] == ("bad_argument", "path: 'ok.tif' is not an absolute path; give the file's full path")
    assert refusals[3][0] == "bad_argument" and refusals[3][1].startswith("number: number '12' is not a phone number")
    assert refusals[4][0] == "bad_argument" and refusals[4][1].startswith("tries: 0 is out of range")
    assert refusals[5] == ("not_found", "job_id: 'fax-nope' is not a fax job (fax.jobs all=true lists them)")
    assert refusals[6] == ("not_found", "job_id: 'fax-nope' is not a fax job")
    assert jobs == [] and named(events, "fax.queued") == []
