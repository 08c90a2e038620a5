"""The SIP card against real SIP software on this machine, in real time: SIPp as the carrier, baresip as an IP phone.

Each test runs the card on an asyncio loop, ticking every 20 ms as the runtime
does (poll, read, write), with its SIP port and RTP ports on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time

import numpy as np
import pytest

from drivers.base import Digit, Flash, OffHook, OnHook, PortFault, Released, Seized
from drivers.sip.card import SipCard
from dsp.g711 import alaw_decode
from dsp.levels import tone_level_dbm0
from dsp.tones import tone
from dsp.wavio import write_wav
from tests.tools import require_tool

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Runner:
    """The card ticked every 20 ms on the running loop; what it reported and what each port heard."""

    def __init__(self, card: SipCard) -> None:
        self.card = card
        self.events: list = []
        self.heard: dict[int, list[np.ndarray]] = {}
        n = len(card.ports)
        self.rx = np.zeros((n, 160), np.uint8)
        self.tx = np.full((n, 160), 0xD5, np.uint8)
        self.t0 = time.monotonic()
        self.on_event = None

    async def run(self, seconds: float, until=None) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            now = time.monotonic() - self.t0
            for ev in self.card.poll(now):
                self.events.append(ev)
                if self.on_event:
                    self.on_event(ev)
            self.card.read(self.rx)
            for p in self.card._active:
                self.heard.setdefault(p, []).append(self.rx[p].copy())
            self.card.write(self.tx)
            if until is not None and until(self.events):
                return True
            await asyncio.sleep(0.02)
        return until is None

    def audio(self, port: int) -> np.ndarray:
        return alaw_decode(np.concatenate(self.heard.get(port, [np.zeros(0, np.uint8)])))


def test_sipp_calls_in_through_the_trunk_and_hangs_up(tmp_path):
    sipp = require_tool("sipp")
    port = free_port()
    card = SipCard(trunk_channels=2, seats={}, host=HOST, port=port,
                   trunk={"host": HOST, "port": free_port(), "username": "4008001234", "password": "x",
                          "register": False})

    async def scenario():
        await card.open()
        r = Runner(card)
        r.on_event = lambda ev: card.answer(ev.port) if isinstance(ev, Seized) else None
        proc = await asyncio.create_subprocess_exec(
            sipp, "-sn", "uac", f"{HOST}:{port}", "-s", "4008001234", "-i", HOST, "-p", str(free_port()),
            "-m", "3", "-l", "1", "-r", "2", "-d", "1000", "-nostdin", "-timeout", "20",
            "-trace_err", "-error_file", str(tmp_path / "err.log"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
        while proc.returncode is None:
            await r.run(0.2)
            try:
                await asyncio.wait_for(proc.wait(), 0.01)
            except asyncio.TimeoutError:
                pass
        await r.run(0.3)
        card.close()
        await card.network.wait_closed()
        return proc.returncode, r.events

    try:
        rc, events = asyncio.run(scenario())
    finally:
        card.close()
    errors = (tmp_path / "err.log").read_text() if (tmp_path / "err.log").exists() else ""
    assert rc == 0, f"SIPp reported failed calls:\n{errors}"
    seized = [e for e in events if isinstance(e, Seized)]
    assert len(seized) == 3 and all(e.called == "4008001234" and e.calling == "sipp" or e.calling is None
                                    for e in seized), seized
    assert [e for e in events if isinstance(e, Released)] == [Released(s.port, 16) for s in seized]


def baresip_config(where, box_port: int, phone_port: int, ctrl_port: int, ext="801", password="pw801") -> str:
    os.makedirs(where, exist_ok=True)
    # the phone's microphone: 1 kHz at -10 dBm0 for 60 s (baresip hangs up when its file ends)
    write_wav(os.path.join(where, "mic.wav"), tone(1000.0, -10.0, 60.0))
    with open(os.path.join(where, "config"), "w") as f:
        f.write(f"""sip_listen {HOST}:{phone_port}
audio_source aufile,{where}/mic.wav
audio_player aufile,{where}/heard.wav
audio_alert aufile,/dev/null
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen {HOST}:{ctrl_port}
""")
    with open(os.path.join(where, "accounts"), "w") as f:
        f.write(f"<sip:{ext}@{HOST}:{box_port}>;auth_pass={password};answermode=auto;audio_codecs=pcma;"
                f"regint=60\n")
    return where


def netstring(cmd: dict) -> bytes:
    import json
    body = json.dumps(cmd).encode()
    return str(len(body)).encode() + b":" + body + b","


@pytest.fixture
def phone_box(tmp_path):
    baresip = require_tool("baresip")
    box_port, phone_port, ctrl = free_port(), free_port(), free_port()
    card = SipCard(trunk_channels=1, seats={"801": "pw801"}, host=HOST, port=box_port, qualify_every=5.0)
    where = baresip_config(str(tmp_path / "baresip"), box_port, phone_port, ctrl)
    proc = subprocess.Popen([baresip, "-f", where], stdin=subprocess.DEVNULL, stdout=open(tmp_path / "baresip.log", "w"),
                            stderr=subprocess.STDOUT)
    yield card, proc, ctrl, tmp_path
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
    card.close()


def test_baresip_registers_is_rung_answers_and_hangs_up(phone_box):
    card, proc, ctrl, tmp_path = phone_box
    seat = 1

    async def scenario():
        await card.open()
        r = Runner(card)
        registered = await r.run(10.0, until=lambda ev: PortFault(seat, True) in ev)
        log = (tmp_path / "baresip.log").read_text()
        assert registered, f"baresip did not register: {r.events}\n{log}"
        card.ring(seat, "13912345678")
        assert await r.run(5.0, until=lambda ev: OffHook(seat) in ev), (tmp_path / "baresip.log").read_text()
        await r.run(1.5)
        reader, writer = await asyncio.open_connection(HOST, ctrl)
        writer.write(netstring({"command": "hangup"}))
        await writer.drain()
        ok = await r.run(5.0, until=lambda ev: OnHook(seat) in ev)
        writer.close()
        return ok, r

    ok, r = asyncio.run(scenario())
    assert ok, f"{r.events}\n{(tmp_path / 'baresip.log').read_text()}"
    heard = r.audio(seat)[None, 4000:12000].astype(np.float64)  # the phone's 1 kHz sine, after 0.5 s
    assert tone_level_dbm0(heard, 1000.0)[0] > -30


def test_an_agent_dialling_from_baresip_is_off_hook_and_digits(phone_box):
    card, proc, ctrl, tmp_path = phone_box
    seat = 1

    async def scenario():
        await card.open()
        r = Runner(card)
        assert await r.run(10.0, until=lambda ev: PortFault(seat, True) in ev)
        reader, writer = await asyncio.open_connection(HOST, ctrl)
        writer.write(netstring({"command": "dial", "params": f"sip:110@{HOST}:{card.port}"}))
        await writer.drain()
        ok = await r.run(5.0, until=lambda ev: Digit(seat, "0") in ev)
        writer.close()
        return ok, r.events

    ok, events = asyncio.run(scenario())
    assert ok, events
    mine = [e for e in events if getattr(e, "port", None) == seat and not isinstance(e, PortFault)]
    assert mine[:4] == [OffHook(seat), Digit(seat, "1"), Digit(seat, "1"), Digit(seat, "0")]



def test_baresip_sends_digits_holds_resumes_and_transfers(phone_box):
    card, proc, ctrl, tmp_path = phone_box
    seat = 1

    async def command(writer, cmd: str, params: str | None = None) -> None:
        body = {"command": cmd} if params is None else {"command": cmd, "params": params}
        writer.write(netstring(body))
        await writer.drain()

    async def scenario():
        await card.open()
        r = Runner(card)
        assert await r.run(10.0, until=lambda ev: PortFault(seat, True) in ev)
        card.ring(seat, "13912345678")
        assert await r.run(5.0, until=lambda ev: OffHook(seat) in ev)
        await r.run(1.0)
        reader, writer = await asyncio.open_connection(HOST, ctrl)
        await command(writer, "sndcode", "5")  # RFC 4733 from the phone's keypad
        assert await r.run(3.0, until=lambda ev: Digit(seat, "5") in ev), r.events
        await command(writer, "hold")
        assert await r.run(3.0, until=lambda _: card.calls.legs[seat].media.direction == "recvonly")
        mark = len(r.heard[seat])
        await r.run(1.5)
        held = alaw_decode(np.concatenate(r.heard[seat][mark + 25:]))  # after 0.5 s on hold: nothing plays
        await command(writer, "resume")
        assert await r.run(3.0, until=lambda _: card.calls.legs[seat].media.direction == "sendrecv")
        mark = len(r.heard[seat])
        await r.run(1.5)
        resumed = alaw_decode(np.concatenate(r.heard[seat][mark + 25:]))
        await command(writer, "transfer", f"sip:110@{HOST}:{card.port}")  # a blind transfer: REFER
        ok = await r.run(5.0, until=lambda ev: Digit(seat, "0") in ev)
        await command(writer, "hangup")
        await r.run(3.0, until=lambda ev: OnHook(seat) in ev)
        writer.close()
        return ok, r.events, held, resumed

    ok, events, held, resumed = asyncio.run(scenario())
    log = (tmp_path / "baresip.log").read_text()
    assert ok, f"{events}\n{log}"
    assert np.abs(held.astype(np.int32)).max() <= 8  # A-law silence (0xD5 decodes to 8): nothing plays
    assert tone_level_dbm0(resumed[None].astype(np.float64), 1000.0)[0] > -30
    mine = [e for e in events if getattr(e, "port", None) == seat and isinstance(e, (Flash, Digit))]
    assert mine == [Digit(seat, "5"), Flash(seat), Digit(seat, "1"), Digit(seat, "1"), Digit(seat, "0")]
