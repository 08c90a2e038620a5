"""Tools for the SIP load benchmarks (``benchmarks/test_sip_load.py``): SIPp scenarios for the carrier and the
IP phones, a 20 ms ticker for the SIP card, timestamps of call setup taken at the card's transport, and
readers for SIPp's statistics files.

SIPp (Debian ``sip-tester``) plays both sides that are not the box:

- the carrier: a long call with PCMA audio (``CARRIER_TALK``: the A-law of ``g711a.pcap`` streamed in a
  loop, 20 ms packets, until the box hangs up), or a short one (``CARRIER_SHORT``: answer, 1 s, BYE);
- the six IP phones: one SIPp process registers the six extensions (``PHONES_REGISTER``, digest
  authentication after the 401, an injection file from ``phones_csv``) and answers the box's INVITEs
  with its out-of-call scenario (``PHONE_ANSWER``: 180, 200, the same A-law stream until the box's BYE).
  The card's registrar binds an extension to the address its REGISTER came from, so the INVITEs come back
  to the SIPp that registered; SIPp hands an INVITE with an unknown Call-ID to the ``-oocsf`` scenario.
"""

from __future__ import annotations

import asyncio
import csv
import math
import re
import socket
import struct
import time
from collections import deque
from pathlib import Path

import numpy as np

from drivers.base import OffHook, Seized

HOST = "127.0.0.1"
TICK_S = 0.02
SIPP_PCAP_DIR = "/usr/share/sip-tester"

_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_CSEQ_INVITE = re.compile(rb"^cseq[ \t]*:[ \t]*\d+[ \t]+INVITE\b", re.IGNORECASE | re.MULTILINE)

_SDP = """v=0
o=sipp 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio {port} RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
"""

_INVITE = """INVITE sip:4008001234@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:139[call_number]@[local_ip]:[local_port]>;tag=[pid]car[call_number]
To: <sip:4008001234@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:139[call_number]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

"""

_ACK = """ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:139[call_number]@[local_ip]:[local_port]>;tag=[pid]car[call_number]
To: <sip:4008001234@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

"""

_OK_TO_BYE = """SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

"""


_REGISTER = """REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@[remote_ip]>;tag=[pid]reg[call_number]
To: <sip:[field0]@[remote_ip]>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:[field0]@[local_ip]:[local_port]>
Expires: 3600
Max-Forwards: 70
{auth}Content-Length: 0

"""


def _cdata(text: str) -> str:
    return "<![CDATA[\n" + text + "]]>"


def _scenario(name: str, *steps: str) -> str:
    return ('<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="' + name + '">\n'
            + "".join("  " + step + "\n" for step in steps) + "</scenario>\n")


def _send(text: str, retrans: bool = False) -> str:
    return ('<send retrans="500">' if retrans else "<send>") + _cdata(text) + "</send>"


_BYE = """BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:139[call_number]@[local_ip]:[local_port]>;tag=[pid]car[call_number]
To: <sip:4008001234@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

"""

_PHONE_RESPONSE = """SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]ph[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port]>
"""

_STREAM = '<nop><action><exec rtp_stream="{audio},-1,8"/></action></nop>'  # -1: loop until the call ends

# The carrier's call with audio until the box hangs up; ``.replace("{audio}", raw A-law file)``.
CARRIER_TALK = _scenario(
    "carrier: a call to the 400 number with PCMA audio until the box hangs up",
    _send(_INVITE + _SDP.format(port="[auto_media_port]"), retrans=True),
    '<recv response="100" optional="true"/>', '<recv response="180" optional="true"/>',
    '<recv response="200" rtd="true" rrs="true"/>', _send(_ACK), _STREAM,
    '<recv request="BYE"/>', _send(_OK_TO_BYE))

# Short calls: answer, ``{hold_ms}`` ms, BYE (the carrier's); ``.replace("{hold_ms}", "1000")``.
CARRIER_SHORT = _scenario(
    "carrier: short calls: answer, {hold_ms} ms, BYE",
    _send(_INVITE + _SDP.format(port="[media_port]"), retrans=True),
    '<recv response="100" optional="true"/>', '<recv response="180" optional="true"/>',
    '<recv response="200" rtd="true" rrs="true"/>', _send(_ACK), '<pause milliseconds="{hold_ms}"/>',
    _send(_BYE, retrans=True), '<recv response="200"/>')

# One SIPp "call" per phone, fields from an injection file (``phones_csv``): the extension and its SIPp
# keyword "[authentication username=... password=...]" (SIPp expands keywords in injected values, not
# fields within a keyword).
PHONES_REGISTER = _scenario(
    "IP phones: register with digest authentication, then stay",
    _send(_REGISTER.format(cseq=1, auth=""), retrans=True), '<recv response="401" auth="true"/>',
    _send(_REGISTER.format(cseq=2, auth="[field1]\n"), retrans=True),
    '<recv response="200"/>', '<pause milliseconds="600000"/>')

# The out-of-call scenario (-oocsf) of the phones' SIPp: the box's INVITE.
PHONE_ANSWER = _scenario(
    "IP phone: the box rings it; it answers with PCMA audio until the box hangs up",
    '<recv request="INVITE"/>',
    _send(_PHONE_RESPONSE.format(status="180 Ringing") + "Content-Length: 0\n\n"),
    _send(_PHONE_RESPONSE.format(status="200 OK") + "Content-Type: application/sdp\nContent-Length: [len]\n\n"
          + _SDP.format(port="[auto_media_port]"), retrans=True),
    '<recv request="ACK"/>', _STREAM, '<recv request="BYE"/>', _send(_OK_TO_BYE))


# --- ports, audio, SIPp's files ---------------------------------------------------------------------


def phones_csv(seats: dict[str, str]) -> str:
    """The injection file of ``PHONES_REGISTER`` for ``seats`` {extension: password}."""
    return "SEQUENTIAL\n" + "".join(f"{ext};[authentication username={ext} password={pw}]\n"
                                     for ext, pw in seats.items())


def free_port() -> int:
    """A UDP port free on HOST now (TCP too, for the card's SIP port)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((HOST, 0))
            port = u.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind((HOST, port))
            except OSError:
                continue
            return port


def free_media_base(span: int, low: int = 21000, high: int = 32000) -> int:
    """An even port from which ``span`` UDP ports are free: SIPp's -mp, whose [auto_media_port]s follow it
    (4 a call). Below the kernel's ephemeral ports (SIP ports from ``free_port``), above the card's RTP ports."""
    for base in range(low, high - span, 2 * span):
        socks = []
        try:
            for p in range(base, base + span):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((HOST, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {span} free UDP ports in a row between {low} and {high}")


def alaw_from_pcap(pcap: str | Path, out: str | Path) -> float:
    """Write the A-law payload of the RTP (payload type 8) in a classic pcap of Ethernet/IPv4/UDP to ``out``
    (raw A-law for SIPp's rtp_stream); returns its length in seconds."""
    data = Path(pcap).read_bytes()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    if struct.unpack(endian + "I", data[20:24])[0] != 1:
        raise ValueError(f"{pcap}: not a pcap of Ethernet frames")
    off, audio = 24, bytearray()
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = frame[14:]
        if len(ip) < 20 or ip[9] != 17:
            continue
        rtp = ip[(ip[0] & 0x0F) * 4 + 8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2 or rtp[1] & 0x7F != 8:
            continue
        start = 12 + 4 * (rtp[0] & 0x0F)
        if rtp[0] & 0x10:  # header extension
            start += 4 + 4 * struct.unpack(">H", rtp[start + 2:start + 4])[0]
        end = len(rtp) - (rtp[-1] if rtp[0] & 0x20 else 0)
        audio += rtp[start:end]
    Path(out).write_bytes(bytes(audio))
    return len(audio) / 8000


def read_stat(path: str | Path) -> dict[str, str]:
    """The last line of SIPp's -trace_stat file, by column name (``SuccessfulCall(C)``, ``FailedCall(C)``...)."""
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f, delimiter=";") if r]
    header, last = rows[0], rows[-1]
    return dict(zip(header, last))


def read_rtt(directory: str | Path) -> list[tuple[float, float]]:
    """SIPp's response times (-trace_rtt, ``*_rtt.csv`` in its working directory): (ms since SIPp started,
    INVITE sent to 200 received in ms), one per call."""
    times = []
    for path in Path(directory).glob("*_rtt.csv"):
        with open(path, newline="") as f:
            for row in csv.reader(f, delimiter=";"):
                try:
                    times.append((float(row[0]), float(row[1])))
                except (IndexError, ValueError):
                    continue
    return sorted(times)


def percentiles(values_s: list[float], *qs: float) -> list[float]:
    """Percentiles of ``values_s`` (seconds) in milliseconds, rounded to 0.01 ms."""
    if not values_s:
        return [math.nan for _ in qs]
    return [round(float(np.percentile(np.asarray(values_s), q)) * 1000, 2) for q in qs]


# --- timestamps at the card's transport ----------------------------------------------------------------


class SetupTimes:
    """Wraps a started ``SipTransport`` (in the harness, not in the card) to time call setup, by Call-ID.

    ``queued``: the INVITE was queued by the transport (its ``wake`` callback, on the loop, as the datagram
    arrives); ``taken``: the card's tick took it (``take``); ``sent[code]``: the card handed our 100, 180 or
    200 for it to ``send``. Only the first copy counts (retransmissions are ignored).
    """

    def __init__(self, network) -> None:
        self.net = network
        self.queued: dict[bytes, float] = {}
        self.taken: dict[bytes, float] = {}
        self.sent: dict[int, dict[bytes, float]] = {100: {}, 180: {}, 183: {}, 200: {}}
        self._arrivals: deque[float] = deque()
        self._seen = self._inbound()
        self._dropped = network.stats()["overflow"]
        self._take, self._send = network.take, network.send
        network.wake, network.take, network.send = self._wake, self._taking, self._sending

    def _inbound(self) -> int:
        s = self.net.stats()
        return s["udp_in"] + s["tcp_in"]

    def _wake(self) -> None:
        t = time.monotonic()
        seen = self._inbound()  # a wake without a new arrival reports a send error: not ours to stamp
        if seen > self._seen:
            dropped = self.net.stats()["overflow"]
            self._arrivals.extend([t] * (seen - self._seen - (dropped - self._dropped)))
            self._seen, self._dropped = seen, dropped

    def _taking(self):
        t = time.monotonic()
        items = self._take()
        for data, _source, _transport in items:
            queued = self._arrivals.popleft() if self._arrivals else t
            if data[:7] == b"INVITE " and (m := _CALL_ID.search(data)):
                cid = m.group(1)
                self.queued.setdefault(cid, queued)
                self.taken.setdefault(cid, t)
        return items

    def _sending(self, out) -> None:
        data = out.data
        if data[:8] == b"SIP/2.0 " and data[8:11] in (b"100", b"180", b"183", b"200") and _CSEQ_INVITE.search(data):
            if m := _CALL_ID.search(data):
                self.sent[int(data[8:11])].setdefault(m.group(1), time.monotonic())
        self._send(out)

    def setups(self, code: int = 200) -> list[tuple[float, float, float]]:
        """(queued, taken, sent) monotonic times of each INVITE answered with ``code``, by arrival."""
        return sorted((self.queued[cid], self.taken[cid], t) for cid, t in self.sent[code].items()
                      if cid in self.queued)


# --- the card's 20 ms tick ----------------------------------------------------------------------------------


class Ticker:
    """The card ticked every 20 ms against an absolute schedule, as the runtime does: poll, read, write.

    A trunk call is answered on ``Seized`` in the tick that reports it; every port sends back what it heard
    (an echo). Each tick's work (poll, answers, read, write) is timed with ``perf_counter``.
    """

    def __init__(self, card, *, answer: bool = True) -> None:
        self.card, self.answer = card, answer
        n = len(card.ports)
        self.rx = np.full((n, 160), 0xD5, np.uint8)
        self.events: list = []
        self.offhook: set[int] = set()
        self.answered = 0
        self.work: list[tuple[float, float]] = []  # (when, seconds of work) per tick
        self.late_max = 0.0
        self.slips = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.t0 = time.monotonic()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def tick(self, now: float) -> None:
        card = self.card
        for ev in card.poll(now):
            self.events.append(ev)
            if isinstance(ev, Seized) and self.answer:
                card.answer(ev.port)
                self.answered += 1
            elif isinstance(ev, OffHook):
                self.offhook.add(ev.port)
        card.read(self.rx)
        card.write(self.rx)

    async def _run(self) -> None:
        k = 0
        while not self._stop.is_set():
            target = self.t0 + k * TICK_S
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            start = time.perf_counter()
            self.tick(time.monotonic() - self.t0)
            self.work.append((time.monotonic(), time.perf_counter() - start))
            k += 1
            late = time.monotonic() - target
            self.late_max = max(self.late_max, late)
            if late > 10 * TICK_S:  # starved: resynchronise rather than burst, as the runtime does
                self.slips += 1
                k = int((time.monotonic() - self.t0) / TICK_S) + 1
            elif delay <= 0:
                await asyncio.sleep(0)  # let the loop take the network's datagrams

    def figures(self, since: float, until: float) -> dict[str, float]:
        """The ticks between two monotonic times: their work's share of the wall time, mean and max."""
        work = [w for t, w in self.work if since <= t <= until]
        return {"tick_share_pct": round(100 * sum(work) / (until - since), 2),
                "tick_mean_ms": round(1000 * sum(work) / max(1, len(work)), 3),
                "tick_max_ms": round(1000 * max(work, default=0.0), 2),
                "ticks_over_20ms": sum(w > TICK_S for w in work)}

    async def until(self, condition, timeout: float, every: float = 0.05) -> bool:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                return False
            await asyncio.sleep(every)
        return True


async def wait_process(proc, timeout: float) -> int | None:
    """Wait (on the loop, without blocking the tick) for a ``subprocess.Popen`` to end; None on timeout."""
    end = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > end:
            return None
        await asyncio.sleep(0.05)
    return proc.returncode
