"""The SIP card on an in-memory network, in explicit time: seats follow their phone's registration, a
password-guessing source is blocked and shown as an alarm, bad frames and ports are refused."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DriverError
from drivers.base import BLOCK, PortFault, PortKind
from drivers.sip.card import SipCard
from drivers.sip.digest import Challenge
from drivers.sip.message import Request, parse

BOX = ("192.0.2.10", 5060)


class Net:
    """Stands in for SipTransport: what arrives is put in ``inbox``; what the card sends lands in ``sent``."""

    def __init__(self) -> None:
        self.inbox: list = []
        self.sent: list = []

    def take(self):
        out, self.inbox = self.inbox, []
        return out

    def send(self, out) -> None:
        self.sent.append(out)

    def close(self) -> None:
        pass

    def replies(self):
        out, self.sent = [parse(o.data) for o in self.sent], []
        return out


def register(source, cseq, auth=None, call_id="reg-1"):
    headers = [("Via", f"SIP/2.0/UDP {source[0]}:{source[1]};rport;branch=z9hG4bKr{cseq}{source[1]}"),
               ("Max-Forwards", "70"), ("From", "<sip:801@192.0.2.10>;tag=p1"), ("To", "<sip:801@192.0.2.10>"),
               ("Call-ID", call_id), ("CSeq", f"{cseq} REGISTER"),
               ("Contact", f"<sip:801@{source[0]}:{source[1]}>"), ("Expires", "300")]
    if auth:
        headers.append(("Authorization", auth))
    return Request("REGISTER", "sip:192.0.2.10", headers).serialize()


def challenge_for(card, net, source, cseq, now, call_id="reg-1") -> Challenge:
    net.inbox.append((register(source, cseq, call_id=call_id), source, "UDP"))
    card.poll(now)
    [resp] = net.replies()
    assert resp.status == 401
    return Challenge.parse(resp.headers.get("WWW-Authenticate"))


@pytest.fixture
def card():
    c = SipCard(trunk_channels=1, seats={"801": "pw801pw801"}, host=BOX[0], port=BOX[1], network=Net())
    yield c
    c.close()


def test_ports_and_a_seat_that_follows_its_phone(card):
    assert [(p.kind, p.name) for p in card.ports] == [(PortKind.TRUNK, "SIP 1"), (PortKind.FXS, "IP 801")]
    assert card.poll(0.0) == [PortFault(1, False, "IP phone not registered")]
    net, phone = card.network, ("192.0.2.20", 5062)
    ch = challenge_for(card, net, phone, 1, 0.5)
    auth = ch.answer("801", "pw801pw801", "REGISTER", "sip:192.0.2.10").header()
    net.inbox.append((register(phone, 2, auth), phone, "UDP"))
    assert card.poll(1.0) == [PortFault(1, True, "")]
    [ok] = net.replies()
    assert ok.status == 200 and ok.contacts[0].params.get("expires") == "300"
    assert card.poll(301.0) == [PortFault(1, False, "IP phone not registered")]  # it never refreshed


def test_a_guessing_source_is_blocked_and_shown_as_an_alarm(card):
    net, thief = card.network, ("203.0.113.9", 5060)
    card.poll(0.0)
    for n in range(5):
        ch = challenge_for(card, net, thief, 2 * n + 1, 1.0 + n, call_id=f"guess-{n}")
        bad = ch.answer("801", f"guess{n}", "REGISTER", "sip:192.0.2.10").header()
        net.inbox.append((register(thief, 2 * n + 2, bad, call_id=f"guess-{n}"), thief, "UDP"))
        card.poll(1.5 + n)
        replies = net.replies()
        assert [r.status for r in replies] == ([401] if n < 4 else [])  # the fifth failure: silence
    assert card.box_alarms() == {"sip.blocked 203.0.113.9": "600 s left"}
    net.inbox.append((register(thief, 20, call_id="guess-9"), thief, "UDP"))
    card.poll(10.0)
    assert net.replies() == []  # still nothing for it
    card.poll(700.0)
    assert card.box_alarms() == {}


def test_frames_and_ports_are_checked(card):
    with pytest.raises(DriverError, match="frames must be a uint8 array of shape"):
        card.read(np.zeros((1, BLOCK), np.uint8))
    out = np.zeros((2, BLOCK), np.uint8)
    card.read(out)
    assert (out == 0xD5).all()  # no call: silence
    with pytest.raises(DriverError, match=r"port 2 does not exist"):
        card.ring(2, None)
    with pytest.raises(DriverError, match="its phone is not registered"):
        card.ring(1, "13912345678")
