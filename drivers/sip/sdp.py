"""SDP for our calls: the model (RFC 4566) and the offer/answer model (RFC 3264) for G.711 audio.

``offer`` builds our offer (or a hold re-offer with ``direction="sendonly"``),
``answer`` answers a peer's offer as RFC 3264 §6 says, ``negotiated`` reads
what an offer and its answer agreed on. We send and receive PCMA or PCMU at
8 kHz and RFC 4733 telephone-events, one audio stream a call; every other
stream is rejected with port 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import ConfigError, ProtocolError

from .grammar import is_number
from .sdp_model import (DIRECTIONS, HOLD_ADDRESSES, STATIC_PAYLOADS, Connection, Media, Origin, RtpMap,
                        SessionDescription)

__all__ = ["DIRECTIONS", "STATIC_PAYLOADS", "CODECS", "Connection", "Media", "Negotiated", "Origin", "RtpMap",
           "SessionDescription", "answer", "negotiated", "offer"]

CODECS = {"PCMA": 8, "PCMU": 0}  # what the media path can code, with their static payload types
TELEPHONE_EVENT = "telephone-event"
DEFAULT_PTIME = 20


@dataclass(frozen=True)
class Negotiated:
    """What an offer and its answer agreed on, seen from our side.

    ``remote_address``/``remote_port``: where to send RTP. ``direction``: ours
    (``sendonly`` means we send and do not expect to receive). ``ptime``: the
    packet time the remote side asked for, in ms (``DEFAULT_PTIME`` when it did
    not say). ``remote_hold``: the remote side put the call on hold.
    """

    codec: str
    payload_type: int
    clock_rate: int
    telephone_event: int | None
    remote_address: str
    remote_port: int
    direction: str
    ptime: int
    remote_hold: bool


def offer(address: str, port: int, codecs: tuple[str, ...] = ("PCMA", "PCMU"), telephone_event: int | None = 101,
          ptime: int | None = 20, direction: str = "sendrecv", *, session_id: int, version: int,
          username: str = "-") -> SessionDescription:
    """Our offer: one audio stream at ``address``:``port`` with ``codecs`` in order of preference.

    ``telephone_event`` is the payload type offered for RFC 4733 events (None:
    none). A re-offer keeps ``session_id`` and increments ``version``
    (RFC 3264 §8); ``direction="sendonly"`` puts the call on hold,
    ``"sendrecv"`` resumes it.
    """
    _check_direction(direction)
    payload_types = [_codec_pt(name, "codecs") for name in codecs]
    if not payload_types:
        raise ConfigError("codecs: offer at least one of " + ", ".join(CODECS))
    if telephone_event is not None and not (96 <= telephone_event <= 127):
        raise ConfigError(f"telephone_event: payload type {telephone_event} is not a dynamic type 96-127")
    sdp = _session(address, session_id, version, username, ["0 0"])
    formats = [str(pt) for pt in payload_types] + ([] if telephone_event is None else [str(telephone_event)])
    media = Media("audio", port, "RTP/AVP", formats)
    for pt in payload_types:
        media.add_attribute("rtpmap", STATIC_PAYLOADS[pt])
    if telephone_event is not None:
        media.add_attribute("rtpmap", RtpMap(telephone_event, TELEPHONE_EVENT, 8000))
        media.add_attribute("fmtp", f"{telephone_event} 0-15")
    if ptime:
        media.add_attribute("ptime", ptime)
    media.add_attribute(direction)
    sdp.media.append(media)
    return sdp


def answer(offer: SessionDescription, address: str, port: int, supported: tuple[str, ...] = ("PCMA", "PCMU"),
           telephone_event: bool = True, ptime: int | None = 20, direction: str = "sendrecv", *,
           session_id: int, version: int, username: str = "-") -> SessionDescription:
    """Our answer to ``offer`` (RFC 3264 §6): one m-line for each of the offer's, in its order.

    The first audio RTP/AVP stream with a codec in ``supported`` is accepted with
    the first of the offer's formats we support (static 0 and 8 need no rtpmap)
    and the offer's telephone-event payload type; its direction mirrors the
    offer's (sendonly -> recvonly, recvonly -> sendonly, inactive -> inactive,
    c=0.0.0.0 -> we do not send) within ``direction``. Every other stream gets
    port 0. With nothing accepted every port is 0: send 488 instead
    (``negotiated`` raises).
    """
    _check_direction(direction)
    for name in supported:
        _codec_pt(name, "supported")
    wanted = {name.upper() for name in supported}
    sdp = _session(address, session_id, version, username, offer.times or ["0 0"])
    accepted = False
    for offered in offer.media:
        chosen = None if accepted else _choose(offered, wanted)
        if chosen is None:
            sdp.media.append(Media(offered.media, 0, offered.proto, offered.formats))
            continue
        accepted = True
        media = Media("audio", port, offered.proto, [str(chosen.payload_type)])
        media.add_attribute("rtpmap", chosen)
        event = _telephone_event(offered) if telephone_event else None
        if event is not None:
            media.formats.append(str(event.payload_type))
            media.add_attribute("rtpmap", event)
            fmtp = offered.fmtp.get(event.payload_type)
            if fmtp:
                media.add_attribute("fmtp", f"{event.payload_type} {fmtp}")
        if ptime:
            media.add_attribute("ptime", ptime)
        their_send, their_recv = _flags(offer, offered)
        our_send, our_recv = _FLAGS[direction]
        media.add_attribute(_NAMES[(our_send and their_recv, our_recv and their_send)])
        sdp.media.append(media)
    return sdp


def negotiated(offer: SessionDescription, answer: SessionDescription, *, we_offered: bool) -> Negotiated:
    """The codec, payload types, remote address and our direction that ``offer`` and ``answer`` agreed on.

    ``we_offered`` tells whose is which: the remote side is the answer's author
    when we offered, the offer's otherwise. Raises ProtocolError when the answer
    does not match the offer or accepted no audio stream.
    """
    if len(offer.media) != len(answer.media):
        raise ProtocolError(f"SDP answer has {len(answer.media)} m-lines, the offer {len(offer.media)}; "
                            f"RFC 3264 §6 wants the same number")
    index = next((i for i, m in enumerate(answer.media) if m.media == "audio" and m.port != 0), None)
    if index is None:
        raise ProtocolError("SDP answer accepted no audio stream: every audio m-line has port 0")
    offered, answered = offer.media[index], answer.media[index]
    codec = event = None
    for fmt in answered.formats:
        if not is_number(fmt) or fmt not in offered.formats:
            continue
        found = answered.codec(int(fmt)) or offered.codec(int(fmt))
        if found is None:
            continue
        if found.encoding.lower() == TELEPHONE_EVENT:
            event = event or found
        elif codec is None and found.encoding.upper() in CODECS and found.clock_rate == 8000:
            codec = found
    if codec is None:
        raise ProtocolError(f"SDP answer's audio m-line {answered.m_line()!r} holds no codec of the offer "
                            f"we can use ({', '.join(CODECS)})")
    local, remote = (offer, answer) if we_offered else (answer, offer)
    local_media, remote_media = (offered, answered) if we_offered else (answered, offered)
    connection = remote.connection_for(remote_media)
    if connection is None:
        raise ProtocolError(f"SDP {'answer' if we_offered else 'offer'} has no c= line for its audio stream")
    our_send, our_recv = _FLAGS[local.direction_of(local_media)]
    their_send, their_recv = _flags(remote, remote_media)
    return Negotiated(codec=codec.encoding.upper(), payload_type=codec.payload_type, clock_rate=codec.clock_rate,
                      telephone_event=None if event is None else event.payload_type,
                      remote_address=connection.address, remote_port=remote_media.port,
                      direction=_NAMES[(our_send and their_recv, our_recv and their_send)],
                      ptime=remote_media.ptime or local_media.ptime or DEFAULT_PTIME,
                      remote_hold=_remote_hold(remote, remote_media))


_FLAGS = {"sendrecv": (True, True), "sendonly": (True, False), "recvonly": (False, True), "inactive": (False, False)}
_NAMES = {flags: name for name, flags in _FLAGS.items()}


def _flags(sdp: SessionDescription, media: Media) -> tuple[bool, bool]:
    """(sends, receives) of the side that wrote ``sdp``; c=0.0.0.0 means it receives nothing."""
    sends, receives = _FLAGS[sdp.direction_of(media)]
    connection = sdp.connection_for(media)
    if connection is not None and connection.address in HOLD_ADDRESSES:
        receives = False
    return sends, receives


def _remote_hold(sdp: SessionDescription, media: Media) -> bool:
    connection = sdp.connection_for(media)
    return (sdp.direction_of(media) in ("sendonly", "inactive")
            or (connection is not None and connection.address in HOLD_ADDRESSES))


def _choose(offered: Media, wanted: set[str]) -> RtpMap | None:
    """The first of the offer's formats we support, for an audio RTP/AVP stream with a port."""
    if offered.media != "audio" or offered.port == 0 or offered.proto.upper() != "RTP/AVP":
        return None
    for fmt in offered.formats:
        codec = offered.codec(int(fmt)) if is_number(fmt) else None
        if (codec is not None and codec.encoding.upper() in wanted and codec.clock_rate == 8000
                and codec.channels in (None, 1)):
            return codec
    return None


def _telephone_event(offered: Media) -> RtpMap | None:
    for fmt in offered.formats:
        codec = offered.codec(int(fmt)) if is_number(fmt) else None
        if codec is not None and codec.encoding.lower() == TELEPHONE_EVENT and codec.clock_rate == 8000:
            return codec
    return None


def _session(address: str, session_id: int, version: int, username: str, times: list[str]) -> SessionDescription:
    connection = Connection.for_address(address)
    origin = Origin(username, session_id, version, "IN", connection.addrtype, address)
    return SessionDescription([("v", "0"), ("o", str(origin)), ("s", "-"), ("c", str(connection)),
                               *(("t", t) for t in times)])


def _codec_pt(name: str, option: str) -> int:
    pt = CODECS.get(name.upper())
    if pt is None:
        raise ConfigError(f"{option}: codec {name!r} is not supported; use {', '.join(CODECS)}")
    return pt


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction: {direction!r} is not one of {', '.join(DIRECTIONS)}")
