"""MediaPort on real loopback sockets, in a simulated 20 ms tick loop: audio, PCMU, digits, latching, hold, loss, RTCP."""

from __future__ import annotations

import random
import select
import socket
import time

import numpy as np
import pytest

from appliance.errors import DriverError
from drivers.sip.media import MediaPort, PortPool, bind_pair
from drivers.sip.rtp import ALAW_TO_ULAW, ULAW_TO_ALAW, RtpPacket, RtpSender
from drivers.sip.sdp import Negotiated
from dsp.g711 import alaw_encode

TICK = 0.02
SILENCE = np.full(160, 0xD5, np.uint8)
RANGE = (40000, 60000)


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def tone(seed: int, frames: int = 100) -> list[np.ndarray]:
    """A 2 s tone of seeded frequency and phase, with a little noise, as A-law frames."""
    rng = np.random.default_rng(seed)
    n = np.arange(frames * 160)
    x = 8000 * np.sin(2 * np.pi * rng.uniform(300, 3000) * n / 8000 + rng.uniform(0, 6)) + rng.normal(0, 300, n.size)
    return list(alaw_encode(np.clip(x, -32768, 32767).astype(np.int16)).reshape(frames, 160))


def neg(port: int, direction: str = "sendrecv", codec: str = "PCMA", host: str = "127.0.0.1",
        te: int | None = 101) -> Negotiated:
    return Negotiated(codec, {"PCMA": 8, "PCMU": 0}[codec], 8000, te, host, port, direction, 20,
                      direction in ("recvonly", "inactive"))


class Net:
    """The simulated tick loop: each tick every port writes, the test waits for delivery, every port reads."""

    def __init__(self, *ports: MediaPort, wall: float = 1.7e9):
        self.ports = ports
        self.now = 100.0
        self.wall = wall
        self.sent: dict[int, list[RtpPacket]] = {id(p): [] for p in ports}
        self.drop = None  # (port, packet) -> bool
        for port in ports:
            port.drop_hook = self._hook(port)

    def _hook(self, port):
        def hook(packet):
            if self.drop is not None and self.drop(port, packet):
                return True
            self.sent[id(port)].append(packet)
            self._expect.add(id(port))
            return False
        return hook

    def tick(self, frames: dict, extra=()) -> dict:
        """``frames``: port -> frame to write (absent: silence); ``extra``: sockets to wait on. Returns port -> read."""
        self._expect: set[int] = set()
        for port in self.ports:
            port.write(frames.get(port, SILENCE), self.now, self.wall + self.now)
        peers = {id(a): b for a, b in zip(self.ports, self.ports[::-1])}  # two ports talk to each other
        fds = [peers[i].filenos()[0] for i in self._expect if i in peers] + [s.fileno() for s in extra]
        settle(fds)
        out = {port: port.read(self.now, self.wall + self.now) for port in self.ports}
        self.now += TICK
        return out


def settle(fds: list[int], timeout: float = 0.2) -> None:
    """Wait until every descriptor is readable: the kernel delivered this tick's packets."""
    pending, end = set(fds), time.monotonic() + timeout
    while pending and time.monotonic() < end:
        ready, _, _ = select.select(list(pending), [], [], end - time.monotonic())
        pending -= set(ready)


def delay_of(out: list[np.ndarray], first: np.ndarray) -> int:
    return next(i for i, f in enumerate(out) if np.array_equal(f, first))


@pytest.fixture
def pair():
    with PortPool(2, "127.0.0.1", RANGE, rng=random.Random(7)) as pool:
        a, b = pool.acquire(0), pool.acquire(1)
        a.start(neg(b.local_port), 100.0)
        b.start(neg(a.local_port), 100.0)
        yield a, b


def exchange(net: Net, a: MediaPort, b: MediaPort, ta: list, tb: list, extra_ticks: int = 6):
    got_a, got_b = [], []
    for k in range(len(ta) + extra_ticks):
        out = net.tick({a: ta[k] if k < len(ta) else SILENCE, b: tb[k] if k < len(tb) else SILENCE})
        got_a.append(out[a])
        got_b.append(out[b])
    return got_a, got_b


def test_two_ports_exchange_a_tone_bit_exact_after_the_jitter_delay(pair):
    a, b = pair
    assert a.local_port % 2 == 0 and b.local_port % 2 == 0 and a.local_port != b.local_port
    ta, tb = tone(1), tone(2)
    got_a, got_b = exchange(Net(a, b), a, b, ta, tb)
    for got, sent in ((got_b, ta), (got_a, tb)):
        d = delay_of(got, sent[0])
        assert 1 <= d <= a.jitter_depth + 1
        assert all(np.array_equal(f, SILENCE) for f in got[:d])
        assert np.array_equal(np.concatenate(got[d:d + 100]), np.concatenate(sent))
        assert all(f.dtype == np.uint8 and f.shape == (160,) for f in got)
    sa, sb = a.stats(), b.stats()
    assert sa.packets_out == sb.packets_in == 106 and sb.lost == 0 and sb.concealed == 0 and sb.foreign == 0
    assert sb.latched == ("127.0.0.1", a.local_port) and sb.jitter_ms < 20


def test_pcmu_one_way(pair):
    a, b = pair
    a.update(neg(b.local_port, codec="PCMU"), 100.0)  # a sends PCMU, b still PCMA
    net = Net(a, b)
    ta, tb = tone(3), tone(4)
    got_a, got_b = exchange(net, a, b, ta, tb)
    assert {p.payload_type for p in net.sent[id(a)]} == {0} and {p.payload_type for p in net.sent[id(b)]} == {8}
    assert net.sent[id(a)][0].payload == ALAW_TO_ULAW[ta[0]].tobytes()
    d = delay_of(got_b, ULAW_TO_ALAW[ALAW_TO_ULAW[ta[0]]])
    assert np.array_equal(np.concatenate(got_b[d:d + 100]), ULAW_TO_ALAW[ALAW_TO_ULAW[np.concatenate(ta)]])
    d = delay_of(got_a, tb[0])
    assert np.array_equal(np.concatenate(got_a[d:d + 100]), np.concatenate(tb))


def test_rfc4733_digits_arrive_once_each_and_not_as_audio(pair):
    a, b = pair
    for digit in "123#":
        a.send_digit(digit, 100)
    net = Net(a, b)
    ta = tone(5, 40)
    digits, frames = [], []
    for k in range(40):
        out = net.tick({a: ta[k]})
        digits += b.digits()
        frames.append(out[b])
    assert digits == list("123#") and b.stats().digits_in == 4
    events = [p for p in net.sent[id(a)] if p.payload_type == 101]
    assert len(events) == 4 * (4 + 3)  # 100 ms = 5 ticks: 4 updates and 3 end packets each
    audio_from = len(events)  # audio (ta[28]...) resumes once the last end packet went
    assert all(np.array_equal(f, SILENCE) for f in frames[:audio_from])  # the events were not played
    d = delay_of(frames, ta[audio_from])
    assert np.array_equal(np.concatenate(frames[d:40]), np.concatenate(ta[audio_from:audio_from + 40 - d]))
    with pytest.raises(DriverError, match="telephone-event digit must be one of"):
        a.send_digit("X")
    a.update(neg(b.local_port, te=None), net.now)
    with pytest.raises(DriverError, match="no telephone-event negotiated"):
        a.send_digit("1")


def foreign_packets(seed: int):
    sender = RtpSender(0xBAD, 8)
    noise = np.random.default_rng(seed).integers(0, 256, 160, dtype=np.uint8)
    while True:
        yield sender.frame(noise).serialize()


def test_foreign_source_is_ignored(pair):
    a, b = pair
    net = Net(a, b)
    ta = tone(6)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rogue:
        rogue.bind(("127.0.0.1", 0))
        junk = foreign_packets(1)
        got = []
        for k in range(106):
            if k >= 10:  # after b latched to a: rogue packets to b's RTP port
                rogue.sendto(next(junk), ("127.0.0.1", b.local_port))
            got.append(net.tick({a: ta[k] if k < 100 else SILENCE})[b])
    d = delay_of(got, ta[0])
    assert np.array_equal(np.concatenate(got[d:d + 100]), np.concatenate(ta))
    assert b.stats().foreign >= 90 and b.stats().latched == ("127.0.0.1", a.local_port)


def test_without_latching_only_the_negotiated_address_is_heard():
    with MediaPort("127.0.0.1", RANGE, latch=False) as b, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rogue:
        rogue.bind(("127.0.0.1", 0))
        b.start(neg(rogue.getsockname()[1] + 2), 0.0)  # the SDP names another port
        junk = foreign_packets(2)
        for k in range(20):
            rogue.sendto(next(junk), ("127.0.0.1", b.local_port))
            settle([b.filenos()[0]])
            assert np.array_equal(b.read(k * TICK), SILENCE)
        assert b.stats().foreign == 20 and b.stats().packets_in == 0 and b.stats().latched is None


def test_latching_to_a_nat_changed_source_port():
    with MediaPort("127.0.0.1", RANGE) as b, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sdp_port, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nat, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        for s in (sdp_port, nat, stranger):
            s.bind(("127.0.0.1", 0))  # sdp_port: what the phone's SDP says; nat: where its packets come from
        b.start(neg(sdp_port.getsockname()[1]), 0.0)
        phone = RtpSender(0x1234, 8)
        ta, got = tone(8, 30), []
        for k in range(30):
            nat.sendto(phone.frame(ta[k]).serialize(), ("127.0.0.1", b.local_port))
            if k == 10:  # after the latch anybody else is a stranger
                stranger.sendto(next(foreign_packets(3)), ("127.0.0.1", b.local_port))
            settle([b.filenos()[0]])
            got.append(b.read(k * TICK))
            b.write(SILENCE, k * TICK)
        assert b.stats().latched == nat.getsockname() and b.stats().foreign == 1
        d = delay_of(got, ta[0])
        assert np.array_equal(np.concatenate(got[d:]), np.concatenate(ta[:30 - d]))
        settle([nat.fileno()])
        back = RtpPacket.parse(nat.recv(2048))  # symmetric RTP: b answers where the packets came from
        assert back.payload_type == 8 and back.ssrc != 0x1234
        sdp_port.setblocking(False)
        with pytest.raises(BlockingIOError):
            sdp_port.recv(2048)
        sdp_port.sendto(phone.frame(ta[0]).serialize(), ("127.0.0.1", b.local_port))  # the SDP's address wins
        settle([b.filenos()[0]])
        b.read(30 * TICK)
        assert b.stats().latched == sdp_port.getsockname()


def test_hold_stops_the_flow_and_resume_restarts_it(pair):
    a, b = pair
    net = Net(a, b)
    ta, tb = tone(9, 150), tone(10, 150)

    def run(ticks):
        got = [net.tick({a: ta[k % 150], b: tb[k % 150]}) for k in range(ticks)]
        return [g[a] for g in got], [g[b] for g in got]
    run(20)
    a.update(neg(b.local_port, "sendonly"), net.now)  # a puts b on hold: a may send music, b sends nothing
    b.update(neg(a.local_port, "recvonly"), net.now)
    sent_b = len(net.sent[id(b)])
    got_a, got_b = run(20)
    assert len(net.sent[id(b)]) == sent_b  # b's flow stopped
    assert all(np.array_equal(f, SILENCE) for f in got_a)  # and a plays nothing
    assert not np.array_equal(got_b[-1], SILENCE)  # b hears a's music on hold
    a.update(neg(b.local_port, "inactive"), net.now)
    b.update(neg(a.local_port, "inactive"), net.now)
    sent_a = len(net.sent[id(a)])
    got_a, got_b = run(10)
    assert len(net.sent[id(a)]) == sent_a and len(net.sent[id(b)]) == sent_b
    assert all(np.array_equal(f, SILENCE) for f in got_a + got_b)
    a.update(neg(b.local_port), net.now)
    b.update(neg(a.local_port), net.now)
    got_a, _ = run(10)
    resumed = net.sent[id(b)][sent_b]
    assert resumed.marker and len(net.sent[id(b)]) == sent_b + 10
    assert not np.array_equal(got_a[-1], SILENCE)


def test_loss_is_counted_and_concealed(pair):
    a, b = pair
    net = Net(a, b)
    dropped = []

    def drop(port, packet):
        if port is a and packet.sequence_number % 10 == 7 and 5 < len(net.sent[id(a)]) < 95:
            dropped.append(packet.sequence_number)
            return True
        return False
    net.drop = drop
    exchange(net, a, b, tone(11), tone(12), extra_ticks=10)
    assert len(dropped) >= 8
    s = b.stats()
    assert s.lost == len(dropped) and s.concealed == len(dropped)
    assert a.stats().packets_out == s.packets_in + len(dropped)


def test_rtcp_reports_flow_both_ways(pair):
    a, b = pair
    a.rtcp_interval = b.rtcp_interval = 1.0
    a.start(neg(b.local_port), 100.0, ssrc=0xA)
    b.start(neg(a.local_port), 100.0, ssrc=0xB)
    net = Net(a, b)
    for k in range(200):  # 4 s
        net.tick({}, extra=[])
        if k % 10 == 0:  # RTCP is not awaited by the loop: give it a moment now and then
            settle([a.filenos()[1], b.filenos()[1]], 0.002)
    for port in (a, b):
        s = port.stats()
        assert s.rtcp_out >= 2 and s.rtcp_in >= 1
        assert s.remote_lost == 0 and s.remote_fraction_lost == 0.0 and s.remote_jitter_ms < 20
        assert s.rtt_ms is None or 0 <= s.rtt_ms < 50
    assert a._reporter.peer_sr[0xB].packet_count > 0  # b's sender reports reached a
    b.stop(net.now, wall=net.wall + net.now)  # RTCP BYE
    settle([a.filenos()[1]])
    a.read(net.now)
    assert 0xB in a._reporter.byes


def test_port_pool_allocation_release_and_exhaustion():
    sock_rtp, sock_rtcp = bind_pair("127.0.0.1", RANGE)
    held = sock_rtp.getsockname()[1]
    try:
        with pytest.raises(DriverError, match=rf"no free even/odd port pair on 127\.0\.0\.1 in {held}-{held + 1}"):
            MediaPort("127.0.0.1", (held, held + 1))
        with PortPool(6, "127.0.0.1", RANGE) as pool:
            ports = [pool.acquire(i) for i in range(6)]
            numbers = [p.local_port for p in ports]
            assert len(set(numbers)) == 6 and all(n % 2 == 0 and n != held for n in numbers)
            assert pool.acquire(3) is ports[3]
            pool.release(3)
            assert pool.get(3) is None and pool.acquire(3).local_port != numbers[3]
    finally:
        sock_rtp.close()
        sock_rtcp.close()
    with pytest.raises(DriverError, match=r"RTP: cannot bind 192\.0\.2\.1 port \d+: "):
        MediaPort("192.0.2.1", RANGE)
    with pytest.raises(DriverError, match="holds no even/odd port pair"):
        MediaPort("127.0.0.1", (40001, 40001))
    with MediaPort("127.0.0.1", RANGE) as p:
        with pytest.raises(DriverError, match=r"payload type 18 \(G729\) is not PCMA \(8\) or PCMU \(0\)"):
            p.start(Negotiated("G729", 18, 8000, None, "127.0.0.1", 4000, "sendrecv", 20, False), 0.0)
        assert np.array_equal(p.read(0.0), SILENCE)  # not started: silence, no error
        p.start(neg(4000), 0.0)
        with pytest.raises(DriverError, match="a frame holds 160 samples, got 80"):
            p.write(SILENCE[:80], 0.0)


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 on ::1")
def test_ipv6_exchange():
    with PortPool(2, "::1", RANGE) as pool:
        a, b = pool.acquire(0), pool.acquire(1)
        a.start(neg(b.local_port, host="::1"), 0.0)
        b.start(neg(a.local_port, host="::1"), 0.0)
        ta = tone(13, 20)
        got_a, got_b = exchange(Net(a, b), a, b, ta, ta)
        d = delay_of(got_b, ta[0])
        assert np.array_equal(np.concatenate(got_b[d:d + 20]), np.concatenate(ta))
        assert b.stats().latched == ("::1", a.local_port)
