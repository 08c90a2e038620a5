"""SDP parsing and serialization (RFC 4566) and offer/answer (RFC 3264) with real offers."""

from __future__ import annotations

import pytest

from appliance.errors import ConfigError, ProtocolError
from drivers.sip.sdp import (Connection, Media, Negotiated, Origin, RtpMap, SessionDescription, answer, negotiated,
                             offer)


def sdp(*lines: str, eol: str = "\r\n") -> bytes:
    return (eol.join(lines) + eol).encode()


BARESIP_OFFER = sdp(
    "v=0", "o=- 1975181172 1106161735 IN IP4 10.0.0.31", "s=-", "c=IN IP4 10.0.0.31", "t=0 0",
    "a=tool:baresip 1.0.0", "m=audio 10002 RTP/AVP 8 0 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=sendrecv", "a=label:1", "a=rtcp-rsize",
    "a=ssrc:2736692082 cname:sip:2001@10.0.0.1", "a=ptime:20")

CARRIER_OFFER = sdp(
    "v=0", "o=HuaweiSoftX3000 1073741826 1073741826 IN IP4 203.0.113.10", "s=Sip Call", "c=IN IP4 203.0.113.20",
    "t=0 0", "m=audio 30528 RTP/AVP 8 101", "b=AS:64", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15", "a=ptime:20", "a=sendrecv")

YEALINK_OFFER = sdp(
    "v=0", "o=- 20008 20008 IN IP4 10.0.0.21", "s=SDP data", "c=IN IP4 10.0.0.21", "t=0 0",
    "m=audio 11800 RTP/AVP 8 0 18 9 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000",
    "a=fmtp:18 annexb=no", "a=rtpmap:9 G722/8000", "a=fmtp:101 0-15", "a=rtpmap:101 telephone-event/8000",
    "a=ptime:20", "a=sendrecv")


def our_answer(offer_sdp: SessionDescription, **kwargs) -> SessionDescription:
    return answer(offer_sdp, "10.0.0.1", 20000, session_id=42, version=42, **kwargs)


def test_baresip_offer_typed_access_and_exact_round_trip():
    parsed = SessionDescription.parse(BARESIP_OFFER)
    assert parsed.origin == Origin("-", 1975181172, 1106161735, "IN", "IP4", "10.0.0.31")
    assert (parsed.session_name, parsed.times, parsed.direction) == ("-", ["0 0"], None)
    assert parsed.connection == Connection("IN", "IP4", "10.0.0.31")
    assert parsed.attributes == [("tool", "baresip 1.0.0")]
    (media,) = parsed.media
    assert (media.media, media.port, media.proto, media.formats) == ("audio", 10002, "RTP/AVP", ["8", "0", "101"])
    assert media.rtpmap == {8: RtpMap(8, "PCMA", 8000), 0: RtpMap(0, "PCMU", 8000),
                            101: RtpMap(101, "telephone-event", 8000)}
    assert (media.fmtp, media.ptime, media.direction) == ({101: "0-15"}, 20, "sendrecv")
    assert media.attribute("ssrc") == "2736692082 cname:sip:2001@10.0.0.1"
    assert media.has_attribute("rtcp-rsize") and media.attribute("rtcp-rsize") is None
    assert media.connection is None and parsed.connection_for(media) == parsed.connection
    assert parsed.audio is media and not parsed.on_hold
    assert parsed.serialize() == BARESIP_OFFER


def test_answer_to_baresip_takes_its_first_codec_and_its_event_type():
    offered = SessionDescription.parse(BARESIP_OFFER)
    answered = our_answer(offered)
    assert answered.serialize() == sdp(
        "v=0", "o=- 42 42 IN IP4 10.0.0.1", "s=-", "c=IN IP4 10.0.0.1", "t=0 0", "m=audio 20000 RTP/AVP 8 101",
        "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=ptime:20",
        "a=sendrecv")
    assert negotiated(offered, answered, we_offered=False) == Negotiated(
        codec="PCMA", payload_type=8, clock_rate=8000, telephone_event=101, remote_address="10.0.0.31",
        remote_port=10002, direction="sendrecv", ptime=20, remote_hold=False)
    pcmu = our_answer(offered, supported=("PCMU",), ptime=None, telephone_event=False)
    assert str(pcmu.media[0].m_line()) == "audio 20000 RTP/AVP 0"
    assert pcmu.media[0].lines == [("a", "rtpmap:0 PCMU/8000"), ("a", "sendrecv")]
    assert negotiated(offered, pcmu, we_offered=False).telephone_event is None


def test_chinese_carrier_offer_pcma_only_with_telephone_event_101():
    offered = SessionDescription.parse(CARRIER_OFFER)
    assert offered.serialize() == CARRIER_OFFER
    assert offered.origin.username == "HuaweiSoftX3000" and offered.session_name == "Sip Call"
    assert offered.media[0].lines[0] == ("b", "AS:64")
    answered = our_answer(offered, supported=("PCMU", "PCMA"))
    assert answered.serialize() == sdp(
        "v=0", "o=- 42 42 IN IP4 10.0.0.1", "s=-", "c=IN IP4 10.0.0.1", "t=0 0", "m=audio 20000 RTP/AVP 8 101",
        "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=ptime:20",
        "a=sendrecv")
    assert negotiated(offered, answered, we_offered=False) == Negotiated(
        codec="PCMA", payload_type=8, clock_rate=8000, telephone_event=101, remote_address="203.0.113.20",
        remote_port=30528, direction="sendrecv", ptime=20, remote_hold=False)
    assert SessionDescription.parse(answered.serialize()).serialize() == answered.serialize()


def test_answer_to_yealink_follows_the_offer_order_and_skips_what_we_cannot_code():
    offered = SessionDescription.parse(YEALINK_OFFER)
    assert offered.serialize() == YEALINK_OFFER
    assert offered.media[0].fmtp == {18: "annexb=no", 101: "0-15"}
    assert [m.encoding for m in offered.media[0].rtpmap.values()] == [
        "PCMA", "PCMU", "G729", "G722", "telephone-event"]
    answered = our_answer(offered, supported=("PCMU",))
    assert answered.media[0].m_line() == "audio 20000 RTP/AVP 0 101"
    result = negotiated(offered, answered, we_offered=False)
    assert (result.codec, result.payload_type, result.telephone_event) == ("PCMU", 0, 101)
    assert (result.remote_address, result.remote_port) == ("10.0.0.21", 11800)


def test_static_payload_types_need_no_rtpmap():
    offered = SessionDescription.parse(sdp(
        "v=0", "o=old 1 1 IN IP4 192.0.2.7", "s=call", "c=IN IP4 192.0.2.7", "t=0 0", "m=audio 4000 RTP/AVP 18 0 8"))
    assert offered.media[0].rtpmap == {}
    assert offered.media[0].codec(0) == RtpMap(0, "PCMU", 8000) and offered.media[0].codec(96) is None
    answered = our_answer(offered, telephone_event=True)
    assert answered.media[0].m_line() == "audio 20000 RTP/AVP 0"
    assert answered.media[0].lines == [("a", "rtpmap:0 PCMU/8000"), ("a", "ptime:20"), ("a", "sendrecv")]
    result = negotiated(offered, answered, we_offered=False)
    assert (result.codec, result.telephone_event, result.ptime) == ("PCMU", None, 20)


def test_no_common_codec_rejects_the_stream_with_port_0():
    offered = SessionDescription.parse(sdp(
        "v=0", "o=- 3 3 IN IP4 10.0.0.22", "s=-", "c=IN IP4 10.0.0.22", "t=0 0", "m=audio 11802 RTP/AVP 18 101",
        "a=rtpmap:18 G729/8000", "a=rtpmap:101 telephone-event/8000", "a=sendrecv"))
    answered = our_answer(offered)
    assert answered.serialize() == sdp(
        "v=0", "o=- 42 42 IN IP4 10.0.0.1", "s=-", "c=IN IP4 10.0.0.1", "t=0 0", "m=audio 0 RTP/AVP 18 101")
    assert answered.audio is None and not answered.on_hold
    with pytest.raises(ProtocolError, match=r"^SDP answer accepted no audio stream: every audio m-line has "
                                            r"port 0$"):
        negotiated(offered, answered, we_offered=False)


def test_answer_keeps_m_line_count_and_order_and_accepts_one_audio_stream():
    offered = SessionDescription.parse(sdp(
        "v=0", "o=- 9 9 IN IP4 10.0.0.40", "s=-", "c=IN IP4 10.0.0.40", "t=0 0",
        "m=video 9010 RTP/AVP 96", "a=rtpmap:96 VP8/90000",
        "m=audio 17000 RTP/SAVP 8", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:vXMep/SIW4iMD21StWgrmy024dJZfOAM7q",
        "m=audio 17002 RTP/AVP 0 8", "m=audio 17004 RTP/AVP 8", "m=audio 0 RTP/AVP 8"))
    answered = our_answer(offered)
    assert [m.m_line() for m in answered.media] == [
        "video 0 RTP/AVP 96", "audio 0 RTP/SAVP 8", "audio 20000 RTP/AVP 0", "audio 0 RTP/AVP 8", "audio 0 RTP/AVP 8"]
    result = negotiated(offered, answered, we_offered=False)
    assert (result.codec, result.remote_port) == ("PCMU", 17002)
    answered.media.pop()
    with pytest.raises(ProtocolError, match=r"^SDP answer has 4 m-lines, the offer 5; RFC 3264 §6 wants the same "
                                            r"number$"):
        negotiated(offered, answered, we_offered=False)


def hold_offer(*extra: str, address: str = "10.0.0.21") -> SessionDescription:
    return SessionDescription.parse(sdp(
        "v=0", "o=- 20008 20009 IN IP4 10.0.0.21", "s=SDP data", f"c=IN IP4 {address}", "t=0 0",
        "m=audio 11800 RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15", "a=ptime:20", *extra))


@pytest.mark.parametrize("extra, address, our_direction", [
    (("a=sendonly",), "10.0.0.21", "recvonly"),
    (("a=inactive",), "10.0.0.21", "inactive"),
    (("a=sendrecv",), "0.0.0.0", "recvonly"),
    ((), "0.0.0.0", "recvonly"),
])
def test_hold_re_offers_are_recognised_and_mirrored(extra, address, our_direction):
    offered = hold_offer(*extra, address=address)
    assert offered.on_hold
    answered = our_answer(offered)
    assert answered.media[0].direction == our_direction
    assert answered.media[0].lines[-1] == ("a", our_direction)
    result = negotiated(offered, answered, we_offered=False)
    assert (result.direction, result.remote_hold, result.remote_address) == (our_direction, True, address)


def test_resume_and_recvonly_offers_are_not_hold():
    resumed = hold_offer("a=sendrecv")
    assert not resumed.on_hold
    assert our_answer(resumed).media[0].direction == "sendrecv"
    recvonly = hold_offer("a=recvonly")
    assert not recvonly.on_hold
    assert our_answer(recvonly).media[0].direction == "sendonly"
    assert our_answer(recvonly, direction="recvonly").media[0].direction == "inactive"
    session_level = SessionDescription.parse(sdp(
        "v=0", "o=- 1 2 IN IP4 10.0.0.21", "s=-", "c=IN IP4 10.0.0.21", "t=0 0", "a=sendonly",
        "m=audio 11800 RTP/AVP 8"))
    assert session_level.on_hold and session_level.direction_of(session_level.media[0]) == "sendonly"


def test_our_offer_exact_bytes_and_our_hold_and_resume():
    ours = offer("10.0.0.1", 20000, session_id=3800, version=1)
    assert ours.serialize() == sdp(
        "v=0", "o=- 3800 1 IN IP4 10.0.0.1", "s=-", "c=IN IP4 10.0.0.1", "t=0 0", "m=audio 20000 RTP/AVP 8 0 101",
        "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15",
        "a=ptime:20", "a=sendrecv")
    phone_answer = SessionDescription.parse(sdp(
        "v=0", "o=- 20010 20010 IN IP4 10.0.0.21", "s=SDP data", "c=IN IP4 10.0.0.21", "t=0 0",
        "m=audio 11804 RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15", "a=ptime:30", "a=sendrecv"))
    assert negotiated(ours, phone_answer, we_offered=True) == Negotiated(
        codec="PCMU", payload_type=0, clock_rate=8000, telephone_event=101, remote_address="10.0.0.21",
        remote_port=11804, direction="sendrecv", ptime=30, remote_hold=False)
    hold = offer("10.0.0.1", 20000, direction="sendonly", session_id=3800, version=2)
    assert hold.on_hold and hold.value("o") == "- 3800 2 IN IP4 10.0.0.1"
    phone_hold_answer = answer(hold, "10.0.0.21", 11804, session_id=20010, version=20011)
    assert phone_hold_answer.media[0].direction == "recvonly"
    held = negotiated(hold, phone_hold_answer, we_offered=True)
    assert (held.direction, held.remote_hold, held.codec) == ("sendonly", False, "PCMA")
    resume = offer("10.0.0.1", 20000, session_id=3800, version=3)
    assert not resume.on_hold


def test_offer_options_and_their_errors():
    v6 = offer("2001:db8::1", 30000, codecs=("pcmu",), telephone_event=None, ptime=None, session_id=1, version=1)
    assert v6.serialize() == sdp("v=0", "o=- 1 1 IN IP6 2001:db8::1", "s=-", "c=IN IP6 2001:db8::1", "t=0 0",
                                 "m=audio 30000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=sendrecv")
    with pytest.raises(ConfigError, match=r"^codecs: codec 'opus' is not supported; use PCMA, PCMU$"):
        offer("10.0.0.1", 20000, codecs=("PCMA", "opus"), session_id=1, version=1)
    with pytest.raises(ConfigError, match=r"^codecs: offer at least one of PCMA, PCMU$"):
        offer("10.0.0.1", 20000, codecs=(), session_id=1, version=1)
    with pytest.raises(ConfigError, match=r"^telephone_event: payload type 13 is not a dynamic type 96-127$"):
        offer("10.0.0.1", 20000, telephone_event=13, session_id=1, version=1)
    with pytest.raises(ConfigError, match=r"^direction: 'hold' is not one of sendrecv, sendonly, recvonly, "
                                          r"inactive$"):
        offer("10.0.0.1", 20000, direction="hold", session_id=1, version=1)
    with pytest.raises(ConfigError, match=r"^supported: codec 'G729' is not supported; use PCMA, PCMU$"):
        our_answer(SessionDescription.parse(CARRIER_OFFER), supported=("G729",))


RFC4566_EXAMPLE = sdp(
    "v=0", "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5", "s=SDP Seminar",
    "i=A Seminar on the session description protocol", "u=http://www.example.com/seminars/sdp.pdf",
    "e=j.doe@example.com (Jane Doe)", "p=+1 617 555-6011", "c=IN IP4 224.2.17.12/127", "b=CT:1000",
    "t=2873397496 2873404696", "r=7d 1h 0 25h", "z=2882844526 -1h 2898848070 0", "k=clear:secret", "a=recvonly",
    "m=audio 49170 RTP/AVP 0", "i=voice", "c=IN IP4 224.2.17.12/127", "b=AS:64", "k=prompt", "a=ptime:30",
    "m=video 51372/2 RTP/AVP 99", "a=rtpmap:99 h263-1998/90000", "x=an unknown line is kept", "a=orient:portrait")


def test_every_line_type_and_unknown_lines_are_kept():
    parsed = SessionDescription.parse(RFC4566_EXAMPLE)
    assert parsed.serialize() == RFC4566_EXAMPLE
    assert [kind for kind, _ in parsed.lines] == list("vosiuepcbtrzka")
    assert (parsed.value("u"), parsed.value("z")) == ("http://www.example.com/seminars/sdp.pdf",
                                                      "2882844526 -1h 2898848070 0")
    audio, video = parsed.media
    assert (audio.connection.address, audio.ptime, parsed.direction_of(audio)) == ("224.2.17.12/127", 30,
                                                                                  "recvonly")
    assert (video.port, video.port_count, video.m_line()) == (51372, 2, "video 51372/2 RTP/AVP 99")
    assert video.rtpmap[99] == RtpMap(99, "h263-1998", 90000) and ("x", "an unknown line is kept") in video.lines
    assert parsed.connection_for(video) == Connection("IN", "IP4", "224.2.17.12/127")
    assert not parsed.on_hold


def test_lf_only_bodies_are_read_and_written_with_lf():
    text = sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0", "m=audio 5004 RTP/AVP 8",
               eol="\n")
    parsed = SessionDescription.parse(text)
    assert parsed.eol == "\n" and parsed.serialize() == text
    assert SessionDescription.parse(text.decode()).media[0].formats == ["8"]


@pytest.mark.parametrize("body, message", [
    (b"", "SDP: empty body, expected 'v=0' first"),
    (sdp("o=- 1 1 IN IP4 192.0.2.1", "v=0"), "SDP line 1: expected 'v=0' first, found 'o=- 1 1 IN IP4 192.0.2.1'"),
    (sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "m =video 3227 RTP/AVP 31"),
     "SDP line 4: expected '<letter>=<value>', found 'm =video 3227 RTP/AVP 31'"),
    (sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "m=audio 70000 RTP/AVP 8"),
     "SDP line 4: expected '<media> <port 0-65535>[/<count>] <proto> <format> ...', found 'audio 70000 RTP/AVP 8'"),
    (sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "m=audio 5004 RTP/AVP"),
     "SDP line 4: expected '<media> <port 0-65535>[/<count>] <proto> <format> ...', found 'audio 5004 RTP/AVP'"),
    (sdp("v=0", "o=- one 1 IN IP4 192.0.2.1", "s=-"),
     "SDP line 2: expected '<username> <sess-id> <sess-version> IN IP4 <address>' with numeric id and version, "
     "found '- one 1 IN IP4 192.0.2.1'"),
    (sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4"),
     "SDP line 4: expected '<nettype> <addrtype> <address>' ('IN IP4 192.0.2.1'), found 'IN IP4'"),
    (sdp("v=0", "s=-", "t=0 0"), "SDP: no o= line (origin); it is mandatory (RFC 4566 §5)"),
    (sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "t=0 0"), "SDP: no s= line (session name); it is mandatory (RFC 4566 §5)"),
    (sdp("V=0"), "SDP line 1: expected '<letter>=<value>', found 'V=0'"),
])
def test_malformed_bodies_raise_naming_the_line(body, message):
    with pytest.raises(ProtocolError) as info:
        SessionDescription.parse(body)
    assert str(info.value) == message


def test_bad_attributes_raise_when_read():
    media = Media("audio", 5004, "RTP/AVP", ["8"], lines=[("a", "rtpmap:8 PCMA"), ("a", "ptime:twenty")])
    with pytest.raises(ProtocolError, match=r"^SDP a=rtpmap: expected '<payload type 0-127> <encoding>/<clock rate>"
                                            r"\[/<channels>\]', found '8 PCMA'$"):
        media.rtpmap
    with pytest.raises(ProtocolError, match=r"^SDP a=ptime: expected a number of milliseconds, found 'twenty'$"):
        media.ptime
