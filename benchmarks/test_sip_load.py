"""The SIP/RTP path under load, in real time against SIPp: 36 concurrent calls (30 on the trunk, 6 on IP
phones), call setup latency, and calls per second sustained without failure.

The SIP card runs as the box runs it: on an asyncio loop in this process, ticked every 20 ms against an
absolute schedule (poll, read, write; ``benchmarks.sip_load.Ticker``), answering each trunk call in the tick
that reports ``Seized`` and sending back on every port the audio it heard. SIPp runs in processes of its own
(``benchmarks.sip_load`` has the scenarios):

- ``test_sip_36_calls_core_share``: SIPp as the carrier places 30 calls whose callers talk (the A-law of
  ``pcap/g711a.pcap`` streamed in a loop, 20 ms packets); a second SIPp registers six extensions (digest
  authentication after the 401) and, as their phones, answers the box's INVITEs (``card.ring``) and talks
  the same way. Six SIPp "phones" in one process rather than six baresip: the card sees six bindings,
  six dialogs and six RTP streams either way, while six baresip would encode and decode audio on the same
  two cores as the box and need a WAV and a config each. Once all 36 calls carry audio, the process's CPU
  time (``time.process_time``: the card, its tick and the loop, not SIPp) over 10 s of wall time is the
  share of one core. Target of the issue: 15% or less.
- ``test_sip_calls_per_second``: SIPp places short calls (answer, 1 s, BYE) at 50 calls/s (the target) for
  40 s: longer than a transaction lives (64 * T1 = 32 s; the 2xx's Accepted state and the BYE's Completed
  state), so the transaction table reaches its steady size; a 10 s burst looks fine while the table still
  grows. Failed calls are SIPp's FailedCall(C) in its -trace_stat file and its exit code. The card gets
  2 * rate + 10 trunk channels: the figure is the SIP stack's, not the channel count's (at 1 s a call,
  50 calls/s keep about 52 channels busy). The carrier sends no audio in these calls; the card sends its
  RTP as in any call. ``SIP_LOAD_RATES=50,100`` tries each rate in turn until one fails
  (``SIP_LOAD_SECONDS`` sets the length), for a ladder by hand; the suite runs the target only.
- Setup latency, in both tests: the card's transport is wrapped in the harness (``SetupTimes``: its ``wake``
  callback stamps each datagram as the loop queues it, ``take`` and ``send`` are wrapped), giving per
  Call-ID the INVITE's arrival, the tick taking it, and our 100 and 200 (the card sends no 180 for a trunk
  call it answers at once). "queued" latency = arrival to 200 handed to the socket (includes the wait for
  the next tick, up to 20 ms); "taken" = the tick's own processing; SIPp's own response time (-trace_rtt,
  INVITE sent to 200 received, ms resolution) is the carrier's view. For the first 200 calls of the 50
  calls/s run and for the calls after the table filled (32 s on).

What is asserted, and why. Functional facts that do not depend on the machine's speed are asserted: the
phones register, all 36 calls are set up and carry RTP on every port, and SIPp's 30 trunk calls succeed.
The CPU share is recorded, not asserted: 13-14% on this machine when idle, 16-17% while another pytest
kept one of its two cores busy; the CPU time of the same work grows on a loaded host (shared caches and
memory bandwidth, SIPp's processes), so an assertion on 15% would fail for reasons other than the code.
The 50 calls/s target is asserted (no failed call over the sustained run, ``TargetMissed`` otherwise): the
criterion is not a timing but whether the card keeps up at all, and it needs about half a core for it,
the other half being the margin. It did not keep up until calls were found by Call-ID, the ACK for a 2xx
by (Call-ID, CSeq, To tag) and transaction timers on a heap: scanning every call and every transaction
(thousands, kept 32 s at this rate) made a 10 s burst pass and 40 s fail. Latency has no target: recorded.

Figures go to ``benchmark.extra_info`` (``--benchmark-json``) and are printed (run with ``-s``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import time
from pathlib import Path

from benchmarks.sip_load import (CARRIER_SHORT, CARRIER_TALK, HOST, PHONE_ANSWER, PHONES_REGISTER, SIPP_PCAP_DIR,
                                 SetupTimes, Ticker, alaw_from_pcap, free_media_base, free_port, percentiles,
                                 phones_csv, read_rtt, read_stat, wait_process)
from drivers.base import PortFault
from drivers.sip.card import SipCard
from tests.tools import require_file, require_tool

TRUNK_CALLS = 30
SEATS = {f"80{k}": f"load-pw-80{k}" for k in range(1, 7)}
WINDOW_S = 10.0
CPU_TARGET_PCT = 15.0
CPS_TARGET = 50
HOLD_MS = 1000
TRANSACTION_LIFE_S = 32.0  # 64 * T1: how long a 2xx'd INVITE and a BYE's transaction stay in the table
RATES = [int(r) for r in os.environ.get("SIP_LOAD_RATES", str(CPS_TARGET)).split(",") if r.strip()]
RATE_SECONDS = float(os.environ.get("SIP_LOAD_SECONDS", "40"))


class TargetMissed(AssertionError):
    """The card missed a target of the issue (as opposed to the harness or a call failing to work at all)."""


def card_for(trunk_channels: int, seats: dict[str, str]) -> SipCard:
    # the trunk is 127.0.0.1 (where SIPp calls from) at a port nobody serves: only its OPTIONS pings go
    # there; qualify is pushed out past the test, as the phones' SIPp takes nothing out of call but INVITE
    return SipCard(trunk_channels=trunk_channels, seats=seats, host=HOST, port=free_port(), qualify_every=3600.0,
                   trunk={"host": HOST, "port": free_port(), "username": "4008001234", "password": "x",
                          "register": False})


def sipp_command(sipp: str, card: SipCard, scenario: Path, *, media_calls: int, extra: list[str]) -> list[str]:
    return [sipp, f"{HOST}:{card.port}", "-sf", str(scenario), "-i", HOST, "-p", str(free_port()), "-mi", HOST,
            "-mp", str(free_media_base(4 * (media_calls + 8))), "-nostdin", *extra]


def start(command: list[str], cwd: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(cwd / f"{name}.stderr", "w"))


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(5)


def errors_of(work: Path, name: str, limit: int = 3000) -> str:
    path = work / f"{name}_err.log"
    return path.read_text(errors="replace")[-limit:] if path.exists() else "(no error file)"


def latency_figures(setups: list[tuple[float, float, float]], prefix: str) -> dict[str, float]:
    queued = [s - q for q, _, s in setups]
    taken = [s - t for _, t, s in setups]
    q50, q99 = percentiles(queued, 50, 99)
    t50, t99 = percentiles(taken, 50, 99)
    return {f"{prefix}calls": len(setups), f"{prefix}queued_to_200_p50_ms": q50, f"{prefix}queued_to_200_p99_ms": q99,
            f"{prefix}taken_to_200_p50_ms": t50, f"{prefix}taken_to_200_p99_ms": t99,
            f"{prefix}queued_to_200_max_ms": round(1000 * max(queued, default=float("nan")), 2)}


def sipp_rtd_figures(rtts: list[tuple[float, float]], prefix: str) -> dict[str, float]:
    p50, p99 = percentiles([ms / 1000 for _, ms in rtts], 50, 99)
    return {f"{prefix}sipp_invite_to_200_p50_ms": p50, f"{prefix}sipp_invite_to_200_p99_ms": p99}


def with_gc(run):
    """pytest-benchmark turns the collector off (--benchmark-disable-gc); the box runs with it on."""
    def wrapped():
        was = gc.isenabled()
        gc.enable()
        try:
            return run()
        finally:
            if not was:
                gc.disable()
    return wrapped


def show(title: str, figures: dict) -> None:
    print(f"\n{title}")
    for key, value in figures.items():
        print(f"  {key}: {value}")


# --- 36 concurrent calls ------------------------------------------------------------------------------------


async def thirty_six_calls(sipp: str, work: Path) -> dict:
    audio = work / "audio.alaw"
    alaw_from_pcap(Path(SIPP_PCAP_DIR) / "g711a.pcap", audio)
    (work / "register.xml").write_text(PHONES_REGISTER)
    (work / "answer.xml").write_text(PHONE_ANSWER.replace("{audio}", str(audio)))
    (work / "carrier.xml").write_text(CARRIER_TALK.replace("{audio}", str(audio)))
    (work / "phones.csv").write_text(phones_csv(SEATS))
    card = card_for(TRUNK_CALLS, SEATS)
    seats = [TRUNK_CALLS + k for k in range(len(SEATS))]
    ports = list(range(TRUNK_CALLS)) + seats
    phones = carrier = None
    await card.open()
    times = SetupTimes(card.network)
    ticker = Ticker(card)
    ticker.start()
    try:
        phones = start(sipp_command(sipp, card, work / "register.xml", media_calls=2 * len(SEATS), extra=[
            "-oocsf", str(work / "answer.xml"), "-inf", str(work / "phones.csv"), "-m", str(len(SEATS)),
            "-l", str(len(SEATS)), "-r", str(len(SEATS)), "-trace_err", "-error_file", str(work / "phones_err.log")]),
            work, "phones")
        registered = await ticker.until(lambda: all(PortFault(p, True) in ticker.events for p in seats), 15.0)
        assert registered, f"the phones did not register: {ticker.events}\n{errors_of(work, 'phones')}"
        for p in seats:
            card.ring(p, "13912345678")
        carrier = start(sipp_command(sipp, card, work / "carrier.xml", media_calls=TRUNK_CALLS, extra=[
            "-m", str(TRUNK_CALLS), "-l", str(TRUNK_CALLS), "-r", str(TRUNK_CALLS), "-timeout", "60",
            "-trace_err", "-error_file", str(work / "carrier_err.log"), "-trace_stat", "-stf",
            str(work / "carrier_stat.csv"), "-trace_rtt", "-rtt_freq", "1"]), work, "carrier")

        def all_talking() -> bool:
            media = [card.pool.get(p) for p in ports]
            return all(m is not None and m.stats().packets_in > 0 for m in media)

        up = await ticker.until(lambda: ticker.answered == TRUNK_CALLS and ticker.offhook >= set(seats)
                                and all_talking(), 15.0)
        assert up, (f"not all 36 calls came up with audio: {ticker.answered} trunk calls answered, phones off hook "
                    f"{sorted(ticker.offhook)}\n{errors_of(work, 'carrier')}\n{errors_of(work, 'phones')}")
        await asyncio.sleep(1.0)  # past the jitter buffers' start

        packets0 = {p: card.pool.get(p).stats().packets_in for p in ports}
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(WINDOW_S)
        cpu1, wall1 = time.process_time(), time.monotonic()
        packets = {p: card.pool.get(p).stats().packets_in - packets0[p] for p in ports}

        for p in ports:
            card.hangup(p, 16)
        rc = await wait_process(carrier, 15.0)
        stat = read_stat(work / "carrier_stat.csv")
        assert rc == 0 and stat["FailedCall(C)"] == "0" and stat["SuccessfulCall(C)"] == str(TRUNK_CALLS), \
            f"SIPp's trunk calls: exit {rc}, {stat.get('SuccessfulCall(C)')} successful, " \
            f"{stat.get('FailedCall(C)')} failed\n{errors_of(work, 'carrier')}"
        expected = WINDOW_S / 0.02
        assert min(packets.values()) > 0.5 * expected, f"RTP packets in per port over {WINDOW_S:g} s: {packets}"
        share = 100 * (cpu1 - cpu0) / (wall1 - wall0)
        return {"calls": len(ports), "window_s": round(wall1 - wall0, 2), "cpu_share_pct": round(share, 2),
                "cpu_target_pct": CPU_TARGET_PCT, "cpu_target_met": share <= CPU_TARGET_PCT,
                **ticker.figures(wall0, wall1), "tick_late_max_ms": round(1000 * ticker.late_max, 1),
                "tick_slips": ticker.slips, "rtp_in_per_port_min": min(packets.values()),
                "rtp_in_per_port_max": max(packets.values()),
                **latency_figures(times.setups(), "setup_"), **sipp_rtd_figures(read_rtt(work), "setup_")}
    finally:
        stop(carrier)
        stop(phones)
        await ticker.stop()
        card.close()
        await card.network.wait_closed()


def test_sip_36_calls_core_share(benchmark, tmp_path):
    sipp = require_tool("sipp")
    require_file(f"{SIPP_PCAP_DIR}/g711a.pcap", "sip-tester")
    figures = benchmark.pedantic(with_gc(lambda: asyncio.run(thirty_six_calls(sipp, tmp_path))),
                                 rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    show("SIP/RTP, 36 concurrent calls (30 trunk + 6 IP phones), share of one core:", figures)


# --- calls per second, setup latency ------------------------------------------------------------------------


async def calls_at(sipp: str, work: Path, rate: int, seconds: float) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    (work / "short.xml").write_text(CARRIER_SHORT.replace("{hold_ms}", str(HOLD_MS)))
    card = card_for(2 * rate + 10, {})
    carrier = None
    await card.open()
    times = SetupTimes(card.network)
    ticker = Ticker(card)
    ticker.start()
    total = int(rate * seconds)
    try:
        carrier = start(sipp_command(sipp, card, work / "short.xml", media_calls=1, extra=[
            "-r", str(rate), "-m", str(total), "-l", str(4 * rate), "-timeout", str(int(seconds + 60)),
            "-trace_err", "-error_file", str(work / "cps_err.log"), "-trace_stat", "-stf", str(work / "stat.csv"),
            "-fd", "1", "-trace_rtt", "-rtt_freq", "1"]), work, "cps")
        began = time.monotonic()
        samples = [(began, time.process_time())]  # (wall, cpu) every second: the CPU share by period
        while carrier.poll() is None and time.monotonic() < began + seconds + 60:
            await asyncio.sleep(1.0)
            samples.append((time.monotonic(), time.process_time()))
        rc = await wait_process(carrier, 5.0)
        stat = read_stat(work / "stat.csv")
    finally:
        stop(carrier)
        await ticker.stop()
        card.close()
        await card.network.wait_closed()
    ok, failed = int(stat.get("SuccessfulCall(C)", 0)), int(stat.get("FailedCall(C)", 0))
    assert ok + failed > 0.9 * total, f"SIPp placed only {ok + failed} of {total} calls (exit {rc})\n" \
                                      f"{errors_of(work, 'cps')}"
    steady = began + min(TRANSACTION_LIFE_S, seconds / 2)  # from here the table holds its steady size
    sending_ends = began + seconds
    window = [(w, c) for w, c in samples if steady <= w <= sending_ends + 0.5]
    setups = times.setups()
    rtts = read_rtt(work)
    figures = {"rate_cps": rate, "seconds": seconds, "calls": total, "successful": ok, "failed": failed,
               "sipp_exit": rc, "channels": len(card.ports)}
    if len(window) >= 2:
        (w0, c0), (w1, c1) = window[0], window[-1]
        figures["steady_cpu_share_pct"] = round(100 * (c1 - c0) / (w1 - w0), 1)
        figures.update({f"steady_{k}": v for k, v in ticker.figures(w0, w1).items()})
    (w0, c0), (w1, c1) = samples[0], samples[-1]
    figures["run_cpu_share_pct"] = round(100 * (c1 - c0) / (w1 - w0), 1)
    figures["tick_late_max_ms"] = round(1000 * ticker.late_max, 1)
    figures["tick_slips"] = ticker.slips
    figures.update(latency_figures(setups[:200], "first200_"))
    figures.update(sipp_rtd_figures(rtts[:200], "first200_"))
    steady_ms = (steady - began) * 1000
    figures.update(latency_figures([s for s in setups if s[0] >= steady], "steady_"))
    figures.update(sipp_rtd_figures([r for r in rtts if r[0] >= steady_ms], "steady_"))
    return figures


def test_sip_calls_per_second(benchmark, tmp_path):
    sipp = require_tool("sipp")

    def ladder():
        runs = []
        for rate in RATES:
            runs.append(asyncio.run(calls_at(sipp, tmp_path / f"r{rate}", rate, RATE_SECONDS)))
            if runs[-1]["failed"] or runs[-1]["sipp_exit"] != 0:
                break
        return runs

    runs = benchmark.pedantic(with_gc(ladder), rounds=1, iterations=1)
    passed = [r["rate_cps"] for r in runs if not r["failed"] and r["sipp_exit"] == 0]
    best = max(passed, default=0)
    benchmark.extra_info["sustained_cps_without_failure"] = best
    benchmark.extra_info["rates_tried"] = [r["rate_cps"] for r in runs]
    for r in runs:
        benchmark.extra_info.update({f"r{r['rate_cps']}_{k}": v for k, v in r.items()})
        show(f"SIP calls per second: {r['rate_cps']} calls/s for {r['seconds']:g} s, {HOLD_MS} ms calls:", r)
    print(f"\nhighest rate without a failed call: {best or 'none'} (tried {[r['rate_cps'] for r in runs]}); "
          f"target {CPS_TARGET}")
    if CPS_TARGET in RATES and best < CPS_TARGET:
        target = runs[-1]  # the first rate that failed
        raise TargetMissed(f"{target['rate_cps']} calls/s: {target['failed']} of {target['calls']} calls failed "
                           f"(SIPp exit {target['sipp_exit']}); steady CPU {target.get('steady_cpu_share_pct')}% "
                           f"of a core, tick max {target.get('steady_tick_max_ms')} ms")
