"""Feature codes from an IP phone, end to end: the phone dials ``*11001*1234#`` (the ``#`` bare in the
Request-URI, as baresip sends it), the box answers and the phone hears the confirmation prompt over RTP; once it
hangs up (BYE) the seat is available with agent 1001 and a trunk call rings it; ``*42#`` makes it busy for a meal,
``*2#`` logs it out, and a wrong PIN is refused and leaves it logged out.

The core runs in virtual time with the SIP card on an in-memory network (SIP as text, written here as a phone
and a carrier send it); the RTP ports are real sockets on 127.0.0.1, so the phone's audio is the packets the box
sent. The last test does the same in real time with baresip as the phone.
"""

from __future__ import annotations

import asyncio
import glob
import socket
import subprocess
import time

import numpy as np
import pytest

from appliance.clock import RealClock, VirtualClock
from appliance.config import validate
from appliance.core import Core, render_prompts
from appliance.datadir import DataDir
from appliance.prompts import PromptLibrary
from appliance.runtime import TICK_S
from drivers.base import Digit, OffHook
from drivers.sip.card import SipCard
from drivers.sip.digest import Challenge
from drivers.sip.legs import called_number, en_bloc
from drivers.sip.message import Request, Response, parse
from drivers.sip.rtp import RtpPacket
from drivers.sip.ua import SipCalls
from dsp.g711 import alaw_decode, alaw_encode
from dsp.tones import noise, to_int16
from dsp.wavio import read_wav
from tests.tools import require_tool

BOX = ("127.0.0.1", 5060)  # SIP only on the in-memory network; RTP on real ports of 127.0.0.1
PHONE = ("127.0.0.1", 5062)  # the IP phone of extension 801 (seat 1)
CARRIER = ("127.0.0.2", 5060)
EXT, PASSWORD = "801", "pw801pw801"
AGENTS = [{"id": "1001", "name": "Wang Fang", "pin": "1234"}]
DONE = to_int16(noise(4000, -10.0, seed=1))  # the two prompts, 0.5 s each, told apart sample for sample
FAILED = to_int16(noise(4000, -10.0, seed=2))
FLOW = {"start": "q", "nodes": {"q": {"kind": "queue", "queue": "default"}}}  # trunk calls: straight to the queue


def sdp(port: int, host: str = "127.0.0.1") -> bytes:
    return (f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            f"a=fmtp:101 0-15\r\na=sendrecv\r\n").encode()


def message(start: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """A SIP message as text, exactly as given (no parser in between: the Request-URI may hold a bare '#')."""
    lines = [start, *(f"{k}: {v}" for k, v in headers)]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Net:
    """Stands in for SipTransport. Peers answer OPTIONS (the registrar's qualify, the trunk's health) at once,
    as live ones do; everything else the card sends waits in ``sent`` for ``take_for``."""

    def __init__(self) -> None:
        self.inbox: list = []
        self.sent: list = []

    def take(self):
        out, self.inbox = self.inbox, []
        return out

    def send(self, out) -> None:
        msg = parse(out.data)
        if isinstance(msg, Request) and msg.method == "OPTIONS":
            self.inbox.append((Response.for_request(msg, 200, to_tag="ok").serialize(), out.addr, out.transport))
        else:
            self.sent.append((msg, out.addr))

    def take_for(self, addr) -> list:
        mine = [m for m, a in self.sent if a == addr]
        self.sent = [(m, a) for m, a in self.sent if a != addr]
        return mine

    def close(self) -> None:
        pass


def rtp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def heard(sock: socket.socket) -> bytes:
    """The A-law the box sent to ``sock`` so far, its PCMA packets' payloads in order of arrival."""
    out = []
    while True:
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            return b"".join(out)
        packet = RtpPacket.parse(data)
        if packet.payload_type == 8:
            out.append(packet.payload)


def prompt_bytes(samples: np.ndarray) -> bytes:
    return alaw_encode(samples).tobytes()


class Box:
    """The core on a SIP card with one IP-phone seat (801) and a SIP trunk, in virtual time."""

    def __init__(self, tmp_path) -> None:
        data = DataDir.open(tmp_path / "data", create=True)
        self.cfg = validate({"card": {"driver": "sip", "trunk_channels": 1, "seats": 1},
                             "seats": [{"sip_password": PASSWORD}], "agents": AGENTS,
                             "sip": {"address": BOX[0], "port": BOX[1], "trunk_host": CARRIER[0],
                                     "trunk_username": "4008001234", "trunk_register": False},
                             "ivr": {"flow": FLOW}, "recording": {"enabled": False}})
        prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), self.cfg)
        prompts.update({"code.done": DONE, "code.failed": FAILED})
        card = SipCard.from_config(self.cfg)
        self.net = card.network = Net()
        self.core = Core(data, self.cfg, VirtualClock(1_780_000_000.0), card=card, prompts=prompts)
        self.seat = self.core.logic.acd.by_seat[1]
        self.ticks = 0

    def run(self, seconds: float) -> None:
        """Run ``seconds`` (whole ticks); ``run_until`` gets a tick's own time, so no tick is skipped."""
        self.ticks += round(seconds / TICK_S)
        self.core.runtime.run_until(self.ticks * TICK_S)

    def receive(self, data: bytes, source) -> None:
        self.net.inbox.append((data, source, "UDP"))

    def agent_states(self) -> list[tuple]:
        self.core.settle()
        return [(e["data"]["agent_id"], e["data"]["state"], e["data"]["reason"])
                for e in self.core.journal.events_of("agent.state")]

    def codes(self) -> list[tuple]:
        self.core.settle()
        return [(e["data"]["code"], e["data"]["ok"]) for e in self.core.journal.events_of("agent.code")]


class Phone:
    """Extension 801's IP phone, writing its SIP by hand: registers, dials, answers, hangs up."""

    def __init__(self, box: Box) -> None:
        self.box = box
        self.rtp = rtp_socket()
        self.cseq = 0
        self.n = 0
        self.dialog: dict | None = None

    def _branch(self) -> str:
        self.n += 1
        return f"z9hG4bKphone{self.n}"

    def _send(self, data: bytes) -> list:
        self.box.receive(data, PHONE)
        self.box.run(0.1)
        return self.box.net.take_for(PHONE)

    def register(self) -> None:
        uri = f"sip:{BOX[0]}:{BOX[1]}"
        auth: list = []
        for _ in range(2):
            self.cseq += 1
            head = [("Via", f"SIP/2.0/UDP {PHONE[0]}:{PHONE[1]};rport;branch={self._branch()}"),
                    ("Max-Forwards", "70"), ("From", f"<sip:{EXT}@{BOX[0]}>;tag=reg"), ("To", f"<sip:{EXT}@{BOX[0]}>"),
                    ("Call-ID", "reg-801"), ("CSeq", f"{self.cseq} REGISTER"),
                    ("Contact", f"<sip:{EXT}@{PHONE[0]}:{PHONE[1]}>"), ("Expires", "3600"), *auth]
            [resp] = self._send(message(f"REGISTER {uri} SIP/2.0", head))
            if resp.status == 401:
                ch = Challenge.parse(resp.headers.get("WWW-Authenticate"))
                auth = [("Authorization", ch.answer(EXT, PASSWORD, "REGISTER", uri).header())]
        assert resp.status == 200

    def dial(self, user: str, *, offer: bool = True) -> Response:
        """INVITE ``user`` (with an SDP offer or without), ACK the 407 and INVITE again with credentials; the 200
        (``ack`` acknowledges it)."""
        uri = f"sip:{user}@{BOX[0]}:{BOX[1]}"
        call_id = f"dial-{self.n}-{user}"
        auth: list = []
        for _ in range(2):
            self.cseq += 1
            via = f"SIP/2.0/UDP {PHONE[0]}:{PHONE[1]};rport;branch={self._branch()}"
            head = [("Via", via), ("Max-Forwards", "70"), ("From", f"<sip:{EXT}@{BOX[0]}>;tag=ph{self.cseq}"),
                    ("To", f"<{uri}>"), ("Call-ID", call_id), ("CSeq", f"{self.cseq} INVITE"),
                    ("Contact", f"<sip:{EXT}@{PHONE[0]}:{PHONE[1]}>"), *auth]
            replies = [r for r in self._send(message(f"INVITE {uri} SIP/2.0", head, sdp(self.port) if offer else b""))
                       if r.status != 100]
            final = replies[0]
            if final.status == 407:
                self._send(message(f"ACK {uri} SIP/2.0", [("Via", via), ("Max-Forwards", "70"),
                                                          ("From", head[2][1]), ("To", final.headers.get("To")),
                                                          ("Call-ID", call_id), ("CSeq", f"{self.cseq} ACK")]))
                ch = Challenge.parse(final.headers.get("Proxy-Authenticate"))
                auth = [("Proxy-Authorization", ch.answer(EXT, PASSWORD, "INVITE", uri).header())]
        assert final.status == 200, final
        self.dialog = {"call_id": call_id, "local": head[2][1], "remote": final.headers.get("To"),
                       "target": str(final.contacts[0].uri), "seq": self.cseq}
        return final

    @property
    def port(self) -> int:
        return self.rtp.getsockname()[1]

    def ack(self, body: bytes = b"") -> list:
        d = self.dialog
        return self._send(message(f"ACK {d['target']} SIP/2.0", [
            ("Via", f"SIP/2.0/UDP {PHONE[0]}:{PHONE[1]};rport;branch={self._branch()}"), ("Max-Forwards", "70"),
            ("From", d["local"]), ("To", d["remote"]), ("Call-ID", d["call_id"]), ("CSeq", f"{d['seq']} ACK")],
            body))

    def answer(self, invite: Request) -> None:
        """Answer the box's INVITE (a call for the agent)."""
        resp = Response.for_request(invite, 200, to_tag="agent")
        resp.headers.add("Contact", f"<sip:{EXT}@{PHONE[0]}:{PHONE[1]}>")
        resp.headers.add("Content-Type", "application/sdp")
        resp.body = sdp(self.port)
        self.dialog = {"call_id": invite.call_id, "local": str(resp.to), "remote": invite.headers.get("From"),
                       "target": str(invite.contacts[0].uri), "seq": 100}
        replies = self._send(resp.serialize())
        assert [r.method for r in replies] == ["ACK"]

    def hang_up(self) -> None:
        d = self.dialog
        d["seq"] += 1
        replies = self._send(message(f"BYE {d['target']} SIP/2.0", [
            ("Via", f"SIP/2.0/UDP {PHONE[0]}:{PHONE[1]};rport;branch={self._branch()}"), ("Max-Forwards", "70"),
            ("From", d["local"]), ("To", d["remote"]), ("Call-ID", d["call_id"]), ("CSeq", f"{d['seq']} BYE")]))
        assert [r.status for r in replies] == [200]
        self.dialog = None

    def code(self, digits: str, hear: np.ndarray) -> None:
        """Dial ``digits``, hear ``hear`` (and nothing else but silence) and hang up."""
        heard(self.rtp)
        answer = self.dial(digits)
        assert f"c=IN IP4 {BOX[0]}" in answer.body.decode()
        self.ack()
        self.box.run(0.7)
        audio = heard(self.rtp)
        assert prompt_bytes(hear) in audio  # the whole prompt, sample for sample
        assert set(audio.replace(prompt_bytes(hear), b"")) == {0xD5}  # around it: A-law silence
        self.hang_up()
        self.box.run(0.1)


class Carrier:
    """The carrier's side of the SIP trunk: calls the 400 number."""

    def __init__(self, box: Box) -> None:
        self.box = box
        self.rtp = rtp_socket()

    def call(self, caller: str) -> None:
        head = [("Via", f"SIP/2.0/UDP {CARRIER[0]}:{CARRIER[1]};branch=z9hG4bKcarrier1"), ("Max-Forwards", "70"),
                ("From", f"<sip:{caller}@{CARRIER[0]}>;tag=c1"), ("To", f"<sip:4008001234@{BOX[0]}>"),
                ("Call-ID", "carrier-1"), ("CSeq", "1 INVITE"), ("Contact", f"<sip:{caller}@{CARRIER[0]}:5060>")]
        self.box.receive(message(f"INVITE sip:4008001234@{BOX[0]}:{BOX[1]} SIP/2.0", head,
                                 sdp(self.rtp.getsockname()[1])), CARRIER)
        self.box.run(0.1)
        [ok] = [r for r in self.box.net.take_for(CARRIER) if r.status == 200][:1]
        self.to = ok.headers.get("To")
        self.box.receive(message(f"ACK sip:box@{BOX[0]}:{BOX[1]} SIP/2.0", [
            ("Via", f"SIP/2.0/UDP {CARRIER[0]}:{CARRIER[1]};branch=z9hG4bKcarrier2"), ("Max-Forwards", "70"),
            ("From", head[2][1]), ("To", self.to), ("Call-ID", "carrier-1"), ("CSeq", "1 ACK")]), CARRIER)

    def hang_up(self) -> None:
        self.box.receive(message(f"BYE sip:box@{BOX[0]}:{BOX[1]} SIP/2.0", [
            ("Via", f"SIP/2.0/UDP {CARRIER[0]}:{CARRIER[1]};branch=z9hG4bKcarrier3"), ("Max-Forwards", "70"),
            ("From", f"<sip:13912345678@{CARRIER[0]}>;tag=c1"), ("To", self.to), ("Call-ID", "carrier-1"),
            ("CSeq", "2 BYE")]), CARRIER)
        self.box.run(0.1)
        assert [r.status for r in self.box.net.take_for(CARRIER)] == [200]


@pytest.fixture
def box(tmp_path):
    b = Box(tmp_path)
    yield b
    b.core.close()


@pytest.fixture
def phone(box):
    box.run(0.1)
    p = Phone(box)
    p.register()
    box.run(0.1)
    yield p
    p.rtp.close()


def test_an_ip_phone_logs_in_takes_a_call_goes_busy_and_logs_out(box, phone):
    seat = box.seat
    assert (seat.state, seat.agent_id) == ("logged_out", None)  # agents configured: nobody at the seat yet
    phone.code("*11001*1234#", DONE)
    assert (seat.state, seat.agent_id, seat.name) == ("available", "1001", "Wang Fang")
    assert box.codes() == [("*11001*1234#", True)]

    carrier = Carrier(box)
    carrier.call("13912345678")
    box.run(0.5)
    invite, *again = box.net.take_for(PHONE)  # the call is offered to the phone of agent 1001 ...
    assert [m.serialize() for m in again] == [invite.serialize()] * len(again)  # (sent again until answered)
    assert invite.method == "INVITE" and invite.from_.uri.user == "13912345678"
    assert seat.state == "ringing"
    phone.answer(invite)
    assert seat.state == "talking"
    box.run(1.0)
    carrier.hang_up()
    assert box.net.take_for(PHONE) == []  # as on an analog phone, the agent hangs up
    phone.hang_up()
    assert seat.state == "available"
    box.core.settle()
    [call] = box.core.journal.calls()
    assert (call["seat"], call["disposition"], call["ended_by"]) == (1, "answered", "caller")

    phone.code("*42#", DONE)
    assert (seat.state, seat.reason, seat.agent_id) == ("busy", "meal", "1001")
    phone.code("*2#", DONE)
    assert (seat.state, seat.agent_id) == ("logged_out", None)
    states = box.agent_states()
    before = states[:states.index(("1001", "available", None))]
    assert {state for _, state, _ in before} <= {"out_of_service", "logged_out"}  # registering logs nobody in
    assert states[len(before):] == [
        ("1001", "available", None),  # *11001*1234#, on hook
        ("1001", "ringing", None), ("1001", "talking", None),
        ("1001", "busy", "off_hook"), ("1001", "available", None),  # the caller hung up first, then the agent
        ("1001", "busy", "off_hook"), ("1001", "busy", "meal"),  # lifted to dial *42#, on hook
        ("1001", "logged_out", None)]  # *2#
    assert box.codes() == [("*11001*1234#", True), ("*42#", True), ("*2#", True)]


def test_a_wrong_pin_is_refused_and_the_seat_stays_logged_out(box, phone):
    phone.code("*11001*9999#", FAILED)
    seat = box.seat
    assert (seat.state, seat.agent_id) == ("logged_out", None)
    box.core.settle()
    [event] = box.core.journal.events_of("agent.code")
    assert event["data"] == {"seat": 1, "code": "*11001*9999#", "ok": False, "error": "agent 1001: wrong PIN"}
    assert {state for _, state, _ in box.agent_states()} <= {"out_of_service", "logged_out"}

    Carrier(box).call("13912345678")
    box.run(1.0)
    assert [m for m in box.net.take_for(PHONE) if m.method == "INVITE"] == []  # nobody there: not offered


# --- the user agent alone: how a phone may send the code -----------------------------------------------------

def ua_invite(user: str, body: bytes = b"") -> bytes:
    return message(f"INVITE sip:{user}@{BOX[0]} SIP/2.0", [
        ("Via", f"SIP/2.0/UDP {PHONE[0]}:{PHONE[1]};branch=z9hG4bKua1"), ("Max-Forwards", "70"),
        ("From", f"<sip:{EXT}@{BOX[0]}>;tag=ua"), ("To", f"<sip:{user}@{BOX[0]}>"), ("Call-ID", "ua-1"),
        ("CSeq", "1 INVITE"), ("Contact", f"<sip:{EXT}@{PHONE[0]}:{PHONE[1]}>")], body)


class Trusting:
    """A registrar that knows every request comes from extension 801."""

    def check_request(self, request, source, now):
        return EXT


def ua() -> SipCalls:
    return SipCalls(local=BOX, media_host=BOX[0], rtp_ports={1: 40000}, trunk_ports=[0], seats={1: EXT},
                    registrar=Trusting())


@pytest.mark.parametrize("user", [
    "*11001*1234#",  # baresip: the '#' as dialled
    "*11001*1234%23",  # escaped, as RFC 3261 wants
    "*11001*1234",  # a phone whose '#' key means "dial now" leaves it out
    "%2A11001%2A1234%23",  # every mark escaped
])
def test_every_way_a_phone_sends_the_code_is_the_same_digits(user):
    calls = ua()
    calls.receive(ua_invite(user, sdp(30000)), PHONE, 0.0)
    assert [parse(o.data).status for o in calls.messages_to_send()] == [100, 200]
    events = []
    while (ev := calls.next_event()) is not None:
        events.append(ev)
    assert events == [OffHook(1)] + [Digit(1, d) for d in "*11001*1234#"]


def test_what_is_not_a_number_is_refused():
    calls = ua()
    calls.receive(ua_invite("agent", sdp(30000)), PHONE, 0.0)
    assert [parse(o.data).status for o in calls.messages_to_send()] == [100, 404]
    assert calls.next_event() is None


@pytest.mark.parametrize("number, digits", [("*2", "*2#"), ("*2#", "*2#"), ("110", "110"), ("8#", "8#")])
def test_en_bloc_ends_a_feature_code_only(number, digits):
    assert en_bloc(number) == digits


def test_the_called_number_has_its_escapes_resolved():
    req = parse(ua_invite("*4%32%23"))
    assert (req.uri.user, called_number(req)) == ("*4%32%23", "*42#")


def test_a_phone_that_offers_no_sdp_hears_the_box_once_its_ack_answers(box, phone):
    """RFC 3261 §13.2.1: an INVITE without an offer gets ours in the 200 and the answer in the ACK."""
    answer = phone.dial("*11001*1234#", offer=False)
    assert b"m=audio" in answer.body
    assert box.core.card.calls.legs[box.seat.port].media is None  # nothing to send to yet
    phone.ack(sdp(phone.port))
    box.run(0.7)
    # the prompt began with the 200; what played before the ACK came (5 ticks later here) reached nobody
    assert heard(phone.rtp) == prompt_bytes(DONE)[5 * 160:] + b"\xd5" * 20 * 160  # then 0.4 s of silence
    phone.hang_up()
    box.run(0.1)
    assert (box.seat.state, box.seat.agent_id) == ("available", "1001")


def test_an_unusable_answer_in_the_ack_ends_the_call(box, phone):
    phone.dial("*2#", offer=False)
    g729 = sdp(phone.port).replace(b"RTP/AVP 8 101", b"RTP/AVP 18").replace(b"a=rtpmap:8 PCMA", b"a=rtpmap:18 G729")
    [bye] = phone.ack(g729)
    assert bye.method == "BYE" and bye.headers.get("Reason") == "Q.850;cause=47"
    assert box.seat.port not in box.core.card.calls.legs
    assert box.seat.resume is None  # the seat is on hook again (OnHook)


# --- a real IP phone ---------------------------------------------------------------------------------------------

def test_baresip_logs_in_with_a_feature_code_and_hears_it_accepted(tmp_path):
    """baresip sends the code's '#' bare in the Request-URI; what it decodes is the prompt, sample for sample."""
    from tests.drivers.sip.test_sip_card_interop import HOST, baresip_config, free_port, netstring

    baresip = require_tool("baresip")
    box_port, phone_port, ctrl = free_port(), free_port(), free_port()
    data = DataDir.open(tmp_path / "data", create=True)
    cfg = validate({"card": {"driver": "sip", "seats": 1}, "seats": [{"sip_password": PASSWORD}],
                    "agents": AGENTS, "sip": {"address": HOST, "port": box_port}, "recording": {"enabled": False}})
    done = to_int16(noise(8000, -10.0, seed=3))  # 1 s
    prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
    prompts.update({"code.done": done, "code.failed": FAILED})
    core = Core(data, cfg, RealClock(), prompts=prompts)
    where = baresip_config(str(tmp_path / "baresip"), box_port, phone_port, ctrl, password=PASSWORD)
    with open(f"{where}/config", "a") as f:  # sndfile: what the phone decodes goes to dump-*-dec.wav as well
        f.write(f"module sndfile.so\nsnd_path {where}\n")
    seat = core.logic.acd.by_seat[1]
    phone = None

    async def until(what, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while not what() and time.monotonic() < end:
            await asyncio.sleep(0.05)
        return what()

    async def run():
        nonlocal phone
        stop = asyncio.Event()
        await core.start()
        ticking = asyncio.create_task(core.runtime.run_realtime(stop, core.paced))
        phone = subprocess.Popen([baresip, "-f", where], stdin=subprocess.DEVNULL,
                                 stdout=open(tmp_path / "baresip.log", "w"), stderr=subprocess.STDOUT)
        try:
            assert await until(lambda: core.card.registrar.bindings(EXT, core.runtime.now), 10), "never registered"
            reader, writer = await asyncio.open_connection(HOST, ctrl)
            writer.write(netstring({"command": "dial", "params": f"sip:*11001*1234#@{HOST}:{box_port}"}))
            await writer.drain()
            assert await until(lambda: seat.port in core.card.calls.legs, 5), "the box never answered"
            await asyncio.sleep(1.6)  # the prompt (1 s), then silence
            writer.write(netstring({"command": "hangup"}))
            await writer.drain()
            assert await until(lambda: seat.port not in core.card.calls.legs, 5), "no BYE came"
            await asyncio.sleep(0.1)
            writer.close()
        finally:
            stop.set()
            await ticking
            core.settle()
            codes = [(e["data"]["code"], e["data"]["ok"]) for e in core.journal.events_of("agent.code")]
            await core.stop()
        return codes

    try:
        codes = asyncio.run(run())
    finally:
        if phone is not None:
            phone.kill()
            phone.wait(5)
    log = (tmp_path / "baresip.log").read_text()
    assert codes == [("*11001*1234#", True)], log
    assert (seat.state, seat.agent_id) == ("available", "1001"), log
    [dump] = glob.glob(f"{where}/dump-*-dec.wav")
    decoded = read_wav(dump).samples[0].astype(np.int16).tobytes()
    # all but the first 0.1 s for sure (RTP that beats the 200 to the phone may be dropped by it)
    assert alaw_decode(alaw_encode(done))[800:].tobytes() in decoded
    assert alaw_decode(alaw_encode(FAILED))[:800].tobytes() not in decoded


def test_the_phones_hold_key_plays_music_to_the_caller_until_resumed(box, phone):
    from appliance.promptset import hold_music
    phone.code("*11001*1234#", DONE)
    carrier = Carrier(box)
    carrier.call("13912345678")
    box.run(0.5)
    invite, *_ = box.net.take_for(PHONE)
    phone.answer(invite)
    box.run(0.5)

    def reinvite(direction: str) -> None:
        d = phone.dialog
        d["seq"] += 1
        body = sdp(phone.port).replace(b"a=sendrecv", f"a={direction}".encode())
        replies = phone._send(message(f"INVITE {d['target']} SIP/2.0", [
            ("Via", f"SIP/2.0/UDP {PHONE[0]}:{PHONE[1]};rport;branch={phone._branch()}"), ("Max-Forwards", "70"),
            ("From", d["local"]), ("To", d["remote"]), ("Call-ID", d["call_id"]), ("CSeq", f"{d['seq']} INVITE"),
            ("Contact", f"<sip:{EXT}@{PHONE[0]}:{PHONE[1]}>")], body))
        assert [r.status for r in replies][-1] == 200  # (after a 100 Trying)
        phone.ack()

    heard(carrier.rtp)
    reinvite("sendonly")  # the agent presses hold
    box.run(2.0)
    music = alaw_encode(hold_music()[:8000]).tobytes()
    assert music[:4000] in heard(carrier.rtp)  # the caller hears the music from its start
    assert box.core.logic.calls[next(iter(box.core.logic.calls))].audio == "held"
    reinvite("sendrecv")  # and resumes
    box.run(0.5)
    heard(carrier.rtp)
    box.run(0.5)
    assert music[:800] not in heard(carrier.rtp)
    box.core.settle()
    cid = next(iter(box.core.logic.by_id))
    types = [e["type"] for e in box.core.journal.events(cid)]
    assert types.count("call.hold") == 1 and types.count("call.resume") == 1
