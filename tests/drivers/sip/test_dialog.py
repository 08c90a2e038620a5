"""Dialogs: route sets both ways, loose and strict routing, CSeq order, target refresh."""

from __future__ import annotations

import pytest

from appliance.errors import ProtocolError
from drivers.sip.dialog import Dialog
from drivers.sip.message import Request, Response

VIA = "SIP/2.0/UDP 192.0.2.10:5060;rport"


def invite(contact="<sip:alice@192.0.2.20:5062>", rr=()):
    return Request("INVITE", "sip:801@192.0.2.10", [
        ("Via", "SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bKa"), ("Max-Forwards", "70"),
        ("From", '"Alice" <sip:alice@example.cn>;tag=a1'), ("To", "<sip:801@example.cn>"),
        ("Call-ID", "c1@192.0.2.20"), ("CSeq", "7 INVITE"), ("Contact", contact),
        *[("Record-Route", r) for r in rr]])


def test_uas_dialog_routes_in_record_route_order_and_targets_the_contact():
    inv = invite(rr=["<sip:p1.example.cn;lr>", "<sip:p2.example.cn;lr>"])
    d = Dialog.uas(inv, "b2", "<sip:box@192.0.2.10>")
    assert d.id == ("c1@192.0.2.20", "b2", "a1") and d.remote_seq == 7
    bye, hop = d.request("BYE", VIA)
    assert str(bye.uri) == "sip:alice@192.0.2.20:5062" and str(hop) == "sip:p1.example.cn;lr"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.cn;lr>", "<sip:p2.example.cn;lr>"]
    assert bye.headers.get("From") == "<sip:801@example.cn>;tag=b2"
    assert bye.headers.get("To") == '"Alice" <sip:alice@example.cn>;tag=a1'
    assert bye.cseq.seq == 1 and bye.via[0].branch.startswith("z9hG4bK")


def test_uac_dialog_reverses_the_route_set_and_acks_with_the_invite_cseq():
    inv = invite()
    ok = Response.for_request(inv, 200, to_tag="t9")
    ok.headers.add("Contact", "<sip:801@192.0.2.30:5070>")
    ok.headers.add("Record-Route", "<sip:p1.example.cn;lr>, <sip:p2.example.cn;lr>")
    d = Dialog.uac(inv, ok)
    ack, hop = d.ack(7, VIA)
    assert (ack.method, ack.cseq.seq, str(ack.uri), str(hop)) == ("ACK", 7, "sip:801@192.0.2.30:5070",
                                                                  "sip:p2.example.cn;lr")
    assert ack.headers.get_all("Route") == ["<sip:p2.example.cn;lr>", "<sip:p1.example.cn;lr>"]
    reinvite, _ = d.request("INVITE", VIA, body=b"v=0\r\n", content_type="application/sdp")
    assert reinvite.cseq.seq == 8 and reinvite.headers.get("Contact") == "<sip:alice@192.0.2.20:5062>"


def test_strict_route_puts_the_first_route_in_the_request_uri():
    d = Dialog.uas(invite(rr=["<sip:strict.example.cn>"]), "b2", "<sip:box@192.0.2.10>")
    bye, hop = d.request("BYE", VIA)
    assert str(bye.uri) == "sip:strict.example.cn" and str(hop) == "sip:strict.example.cn"
    assert bye.headers.get_all("Route") == ["<sip:alice@192.0.2.20:5062>"]


def test_remote_cseq_must_grow_and_reinvite_refreshes_the_target():
    d = Dialog.uas(invite(), "b2", "<sip:box@192.0.2.10>")
    assert not d.receive(invite())  # CSeq 7 again: out of order (500)
    re = invite(contact="<sip:alice@203.0.113.9:5062>")
    re.headers.set("CSeq", "8 INVITE")
    assert d.receive(re) and str(d.remote_target) == "sip:alice@203.0.113.9:5062"
    assert d.matches(re) is False  # its To has no tag yet: not in this dialog
    re.headers.set("To", "<sip:801@example.cn>;tag=b2")
    assert d.matches(re)


def test_dialog_needs_tags_and_a_contact():
    inv = invite()
    with pytest.raises(ProtocolError, match="has no To tag"):
        Dialog.uac(inv, Response.for_request(inv, 200))
    no_contact = Response.for_request(inv, 200, to_tag="x")
    with pytest.raises(ProtocolError, match="needs one Contact"):
        Dialog.uac(inv, no_contact)
    untagged = invite()
    untagged.headers.set("From", "<sip:alice@example.cn>")
    with pytest.raises(ProtocolError, match="From has no tag"):
        Dialog.uas(untagged, "b2", "<sip:box@192.0.2.10>")
