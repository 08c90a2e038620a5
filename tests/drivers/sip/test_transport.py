"""SipTransport on real sockets: UDP and TCP round trips, TCP framing, broken streams, failures and limits."""

from __future__ import annotations

import asyncio
import socket

import pytest

from appliance.errors import DriverError
from drivers.sip.message import Request, Response, parse
from drivers.sip.transaction import Outgoing, TransactionLayer, RequestReceived, ResponseReceived
from drivers.sip.transport import SipTransport


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HOSTS = ["127.0.0.1", pytest.param("::1", marks=pytest.mark.skipif(not ipv6_available(), reason="no IPv6 on ::1"))]
SDP = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.21\r\ns=-\r\nc=IN IP4 10.0.0.21\r\nt=0 0\r\n"
       b"m=audio 11800 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n")


def invite(n: int = 1, transport: str = "UDP") -> Request:
    return Request("INVITE", "sip:400@10.0.0.1", [
        ("Via", f"SIP/2.0/{transport} 10.0.0.21:5060;branch=z9hG4bK-{n};rport"),
        ("Max-Forwards", "70"), ("From", '"Agent 801" <sip:801@10.0.0.1>;tag=2087467896'),
        ("To", "<sip:400@10.0.0.1>"), ("Call-ID", f"call-{n}@10.0.0.21"), ("CSeq", f"{n} INVITE"),
        ("Contact", "<sip:801@10.0.0.21:5060>"), ("Content-Type", "application/sdp")], SDP)


def run(coro, timeout: float = 5.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def started(host: str = "127.0.0.1", **options) -> tuple[SipTransport, asyncio.Event]:
    woken = asyncio.Event()
    t = SipTransport(host, 0, wake=woken.set, **options)
    await t.start()
    return t, woken


async def closed(*transports: SipTransport) -> None:
    for t in transports:
        t.close()
    for t in transports:
        await t.wait_closed()


async def gather(t: SipTransport, count: int, timeout: float = 2.0) -> list:
    """Wait until ``count`` items arrived (or the time is up) and take them."""
    got: list = []
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(got) < count and loop.time() < end:
        got += t.take()
        await asyncio.sleep(0.002)
    return got + t.take()


async def wait_until(predicate, timeout: float = 2.0) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() >= end:
            return False
        await asyncio.sleep(0.002)
    return True


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("kind", ["UDP", "TCP"])
def test_round_trip_between_two_transports_through_transaction_layers(host, kind):
    async def main():
        a, woken = await started(host)
        b, _ = await started(host)
        try:
            assert a.local[0] == host and a.local[1] > 0 and a.local != b.local
            request = invite(1, kind)
            a.send(Outgoing(request.serialize(), b.local, kind))
            [(data, source, transport)] = await gather(b, 1)
            assert (parse(data).serialize(), transport) == (request.serialize(), kind)
            assert source[0] == host and (kind == "TCP" or source == a.local)
            # the server side answers through a TransactionLayer, to where the request came from
            layer = TransactionLayer()
            layer.receive(data, source, 0.0, transport)
            event = layer.next_event()
            assert isinstance(event, RequestReceived)
            layer.respond(event.key, Response.for_request(event.request, 200, to_tag="b1"), 0.0)
            out = layer.messages_to_send()
            assert [o.addr for o in out] == [source, source]  # 100 Trying, 200 OK
            for o in out:
                b.send(o)
            woken.clear()
            got = await gather(a, 2)
            assert woken.is_set()
            assert [(parse(d).status, s, t) for d, s, t in got] == [(100, b.local, kind), (200, b.local, kind)]
            client = TransactionLayer()
            key = client.send_request(request, b.local, 0.0, kind)
            for d, s, t in got:
                client.receive(d, s, 0.0, t)
            assert isinstance(client.next_event(), ResponseReceived) and client.next_event().key == key
            assert a.stats()["connections"] == b.stats()["connections"] == (1 if kind == "TCP" else 0)
            assert a.errors() == [] and b.errors() == []
        finally:
            await closed(a, b)
    run(main())


def test_send_from_another_thread_and_to_a_host_name():
    async def main():
        a, _ = await started()
        b, woken = await started()
        try:
            await asyncio.to_thread(a.send, Outgoing(invite(1).serialize(), b.local, "UDP"))
            assert await wait_until(woken.is_set)
            a.send(Outgoing(invite(2).serialize(), ("localhost", b.local[1]), "UDP"))  # resolved in the background
            got = await gather(b, 2)
            assert [(parse(d).call_id, s) for d, s, _ in got] == [("call-1@10.0.0.21", a.local),
                                                                  ("call-2@10.0.0.21", a.local)]
        finally:
            await closed(a, b)
    run(main())


def test_tcp_framing_split_segments_and_two_messages_in_one():
    async def main():
        t, _ = await started()
        try:
            reader, writer = await asyncio.open_connection(*t.local)
            first, second, third = (invite(n, "TCP").serialize() for n in (1, 2, 3))
            cuts = [0, 10, 200, len(first) - 5, len(first)]  # one message in four segments
            for i in range(4):
                writer.write(first[cuts[i]:cuts[i + 1]])
                await writer.drain()
                await asyncio.sleep(0.01)
                if i < 3:
                    assert t.take() == []
            [(data, source, kind)] = await gather(t, 1)
            assert (data, kind) == (first, "TCP") and source == writer.get_extra_info("sockname")[:2]
            writer.write(b"\r\n\r\n" + second + third[:50])  # keep-alive, a message and the start of another
            await writer.drain()
            writer.write(third[50:])
            await writer.drain()
            assert [d for d, _, _ in await gather(t, 2)] == [second, third]
            writer.close()
            await writer.wait_closed()
        finally:
            await closed(t)
    run(main())


def test_broken_stream_closes_only_that_connection():
    async def main():
        t, _ = await started()
        try:
            good_r, good_w = await asyncio.open_connection(*t.local)
            bad_r, bad_w = await asyncio.open_connection(*t.local)
            assert await wait_until(lambda: t.stats()["connections"] == 2)
            bad_w.write(invite(1, "TCP").serialize() + b"NOT SIP AT ALL\r\nFoo bar\r\n\r\n")
            assert await asyncio.wait_for(bad_r.read(), 2) == b""  # closed by the transport
            assert [parse(d).call_id for d, _, _ in t.take()] == ["call-1@10.0.0.21"]  # the one before it
            assert t.stats()["broken"] == 1 and t.stats()["connections"] == 1
            good_w.write(invite(2, "TCP").serialize())
            [(data, source, _)] = await gather(t, 1)
            assert parse(data).call_id == "call-2@10.0.0.21"
            t.send(Outgoing(Response.for_request(parse(data), 180).serialize(), source, "TCP"))
            head = await asyncio.wait_for(good_r.readuntil(b"\r\n\r\n"), 2)
            assert head.startswith(b"SIP/2.0 180 Ringing\r\n")
            for w in (good_w, bad_w):
                w.close()
        finally:
            await closed(t)
    run(main())


def test_unreachable_tcp_address_is_reported_in_errors():
    async def main():
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()
        t, woken = await started()
        try:
            t.send(Outgoing(invite().serialize(), dead, "TCP"))
            t.send(Outgoing(invite(2).serialize(), dead, "TCP"))  # queued behind the same connect
            assert t.errors() == []  # nothing known yet: send did not wait
            assert await wait_until(woken.is_set)
            [(addr, reason)] = t.errors()
            assert addr == dead and "TCP connect to 127.0.0.1:" in reason and "failed" in reason
            assert t.stats()["connections"] == 0
            t.send(Outgoing(b"x", dead, "SCTP"))
            t.send(Outgoing(b"x", ("::1", 5060), "UDP"))
            assert [r for _, r in t.errors()] == ["transport 'SCTP' is not supported (UDP, TCP)",
                                                  "cannot reach an IPv6 address from 127.0.0.1:" + str(t.local[1])]
        finally:
            await closed(t)
    run(main())


def test_limits_connections_datagrams_and_idle_timeout():
    async def main():
        t, _ = await started(max_connections=2, max_datagram=1000, idle_timeout=0.5)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.sendto(b"x" * 1001, t.local)
                u.sendto(b"\r\n\r\n", t.local)
                u.sendto(invite().serialize(), t.local)
            [(data, _, kind)] = await gather(t, 1)
            assert (data, kind) == (invite().serialize(), "UDP")
            assert (t.stats()["oversize"], t.stats()["keepalives"]) == (1, 1)
            conns = [await asyncio.open_connection(*t.local) for _ in range(3)]
            assert await asyncio.wait_for(conns[2][0].read(), 2) == b""  # the third is refused
            assert t.stats()["refused"] == 1 and t.stats()["connections"] == 2
            t.send(Outgoing(b"x", ("127.0.0.1", 9), "TCP"))  # a new outgoing one is refused too
            [(_, reason)] = t.errors()
            assert reason == "no new TCP connection: already 2 open (limit 2)"
            conns[0][1].write(b"\r\n")  # keeps the first one alive a little longer
            assert await asyncio.wait_for(conns[1][0].read(), 2) == b""  # idle: closed
            assert await asyncio.wait_for(conns[0][0].read(), 2) == b""
            assert t.stats()["idle_closed"] == 2 and t.stats()["connections"] == 0
            for _, w in conns:
                w.close()
        finally:
            await closed(t)
    run(main())


def test_bind_errors_and_send_before_start():
    async def main():
        a, _ = await started()
        try:
            with pytest.raises(DriverError, match=r"cannot bind UDP 127\.0\.0\.1:\d+: Address already in use"):
                await SipTransport("127.0.0.1", a.local[1]).start()
            with pytest.raises(DriverError, match=r"cannot bind UDP 192\.0\.2\.1:5060: "):
                await SipTransport("192.0.2.1", 5060).start()
        finally:
            await closed(a)
    run(main())
    with pytest.raises(DriverError, match="not started"):
        SipTransport().send(Outgoing(b"x", ("127.0.0.1", 5060)))
    with pytest.raises(DriverError, match="not started"):
        SipTransport().local
