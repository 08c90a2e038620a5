"""Q.931 codec: real PRI messages written out octet by octet, round trips, malformed input.

Octet values below were worked out by hand from Q.931 §4 (figures 4-11 ff.) and Q.850 §2;
bit 8 of an octet is the leftmost hex digit's top bit.
"""

from __future__ import annotations

import random

import pytest

from appliance.errors import ProtocolError
from drivers.isdn.q931 import (CAUSES, MT, BearerCapability, CallState, Cause, ChannelId, Display,
                               Message, PartyNumber, ProgressIndicator, RawIE, RestartIndicator,
                               decode, encode)


def octets(*parts: int | bytes) -> bytes:
    return b"".join(bytes([p]) if isinstance(p, int) else p for p in parts)


def both_ways(data: bytes, expected: Message) -> None:
    assert decode(data) == expected
    assert encode(expected) == data
    assert encode(decode(data)) == data


# SETUP from the exchange (network -> us) on an E1 PRI, EuroISDN
SETUP = octets(
    0x08,              # protocol discriminator: Q.931 user-network call control
    0x02,              # call reference length: 2 octets (PRI)
    0x00, 0x03,        # flag 0 (sent by the side that chose the CR), CRV 3
    0x05,              # message type SETUP (0000 0101)
    0xA1,              # sending complete (single octet, type 2); first IE of SETUP (Table 3-15)
    0x04,              # bearer capability
    0x03,              #   length 3
    0x80,              #   ext 1, coding standard 00 ITU-T, transfer capability 00000 speech
    0x90,              #   ext 1, transfer mode 00 circuit, rate 10000 64 kbit/s
    0xA3,              #   ext 1, layer 1 id 01, protocol 00011 G.711 A-law
    0x18,              # channel identification
    0x03,              #   length 3
    0xA9,              #   ext 1, int id implicit 0, int type 1 (primary), spare 0, exclusive 1,
                       #   not D-channel 0, selection 01 (as indicated in following octets)
    0x83,              #   3.2: ext 1, coding 00 ITU-T, number 0 (channel number), type 0011 B-channel
    0x85,              #   3.3: ext 1, channel number 5
    0x6C,              # calling party number
    0x0D,              #   length 13 = octet 3 + 3a + 11 digits
    0x21,              #   ext 0 (octet 3a follows), type 010 national, plan 0001 ISDN/E.164
    0x80,              #   3a: ext 1, presentation 00 allowed, spare 000, screening 00 user, not screened
    b"13912345678",    #   digits, IA5
    0x70,              # called party number
    0x0B,              #   length 11 = octet 3 + 10 digits
    0xA1,              #   ext 1, type 010 national, plan 0001 ISDN/E.164
    b"4008001234",     #   digits, IA5
)


def test_setup_from_the_exchange():
    msg = decode(SETUP)
    assert msg.type is MT.SETUP and msg.cref == 3 and not msg.from_destination and msg.cref_len == 2
    assert msg.bearer == BearerCapability("speech", "alaw")
    assert msg.channel == ChannelId(5, exclusive=True, d_channel=False)
    assert msg.calling == PartyNumber("13912345678", "national", "isdn", "allowed", "user-not-screened")
    assert msg.called == PartyNumber("4008001234", "national", "isdn")
    assert msg.sending_complete and msg.others == []
    assert encode(msg) == SETUP


def test_setup_calling_number_without_octet_3a():
    data = octets(0x08, 0x02, 0x00, 0x04, 0x05,    # PD, CR length 2, flag 0 CRV 4, SETUP
                  0x04, 0x03, 0x80, 0x90, 0xA3,    # bearer: speech, circuit 64k, A-law
                  0x18, 0x03, 0xA9, 0x83, 0x81,    # channel: exclusive B-channel 1
                  0x6C, 0x0C,                      # calling party number, length 12
                  0xA1,                            #   ext 1 (no octet 3a), national, ISDN
                  b"13912345678",
                  0x70, 0x05, 0x81, b"8001")      # called: ext 1, unknown type, ISDN, "8001"
    both_ways(data, Message(MT.SETUP, 4, bearer=BearerCapability(), channel=ChannelId(1),
                            calling=PartyNumber("13912345678", "national"),
                            called=PartyNumber("8001")))


def test_setup_withheld_caller():
    data = octets(0x08, 0x02, 0x00, 0x05, 0x05,
                  0xA1,                            # sending complete
                  0x04, 0x03, 0x80, 0x90, 0xA3,
                  0x18, 0x03, 0xA9, 0x83, 0x9F,    # channel 31 (0x80 | 31)
                  0x6C, 0x02,                      # calling party number, length 2: no digits
                  0x01,                            #   ext 0, type 000 unknown, plan 0001 ISDN
                  0xA3,                            #   3a: ext 1, presentation 01 restricted, screening 11 network
                  0x70, 0x03, 0xC1, b"95")        # called: ext 1, type 100 subscriber, ISDN
    msg = decode(data)
    assert msg.calling == PartyNumber("", "unknown", "isdn", "restricted", "network")
    assert msg.called == PartyNumber("95", "subscriber") and msg.channel.channel == 31
    assert encode(msg) == data
    unavailable = octets(0x08, 0x02, 0x00, 0x05, 0x05, 0x6C, 0x02, 0x00, 0xC3)  # 3a: 10 unavailable, network
    assert decode(unavailable).calling == PartyNumber("", "unknown", "unknown", "unavailable", "network")


def test_alerting_with_inband_progress():
    data = octets(0x08, 0x02,
                  0x80, 0x07,                      # flag 1 (to the side that chose CRV 7): our call
                  0x01,                            # ALERTING
                  0x18, 0x03, 0xA9, 0x83, 0x8A,    # channel: exclusive B-channel 10
                  0x1E, 0x02,                      # progress indicator, length 2
                  0x82,                            #   ext 1, coding 00, spare, location 0010 public net local user
                  0x88)                            #   ext 1, description 0001000 in-band information available
    both_ways(data, Message(MT.ALERTING, 7, from_destination=True, channel=ChannelId(10),
                            progress=ProgressIndicator(8, location=2)))


def test_connect_and_connect_acknowledge():
    connect = octets(0x08, 0x02, 0x80, 0x03, 0x07,  # CONNECT from us, the called side: flag 1
                     0x18, 0x03, 0xA9, 0x83, 0x85)
    both_ways(connect, Message(MT.CONNECT, 3, from_destination=True, channel=ChannelId(5)))
    ack = octets(0x08, 0x02, 0x00, 0x03, 0x0F)     # CONNECT ACKNOWLEDGE, no IEs
    both_ways(ack, Message(MT.CONNECT_ACKNOWLEDGE, 3))


def test_disconnect_normal_clearing_from_the_network():
    data = octets(0x08, 0x02, 0x00, 0x03, 0x45,     # DISCONNECT, flag 0
                  0x08, 0x02,                       # cause, length 2
                  0x82,                             #   ext 1, coding 00 ITU-T, spare, location 0010 public net local
                  0x90,                             #   ext 1, cause value 0010000 = 16 normal call clearing
                  0x1E, 0x02, 0x82, 0x88)           # progress: tones in band
    msg = decode(data)
    assert msg.cause == Cause(16, location=2) and CAUSES[msg.cause.value] == "normal call clearing"
    assert msg.progress == ProgressIndicator(8, 2)
    assert encode(msg) == data


def test_release_complete_with_causes():
    invalid_cr = octets(0x08, 0x02, 0x80, 0x21, 0x5A,  # RELEASE COMPLETE, flag 1, CRV 0x21
                        0x08, 0x02, 0x82,
                        0xD1)                          # ext 1, cause 1010001 = 81 invalid call reference
    both_ways(invalid_cr, Message(MT.RELEASE_COMPLETE, 0x21, True, cause=Cause(81, 2)))
    # Q.850 defines no diagnostic for cause 81; one with a diagnostic is cause 100, whose
    # diagnostic octets are the identifiers of the offending IEs (here channel identification).
    bad_ie = octets(0x08, 0x02, 0x80, 0x21, 0x5A,
                    0x08, 0x03, 0x80,                  # location user
                    0xE4,                              # ext 1, cause 1100100 = 100
                    0x18)                              # diagnostic: IE identifier 0x18
    both_ways(bad_ie, Message(MT.RELEASE_COMPLETE, 0x21, True, cause=Cause(100, 0, b"\x18")))
    # an opaque diagnostic after cause 81 is still carried as bytes
    odd = octets(0x08, 0x02, 0x80, 0x21, 0x5A, 0x08, 0x04, 0x82, 0xD1, 0x12, 0x34)
    assert decode(odd).cause == Cause(81, 2, b"\x12\x34")


def test_cause_with_octet_3a_is_read_but_not_kept():
    data = octets(0x08, 0x02, 0x00, 0x03, 0x45, 0x08, 0x03,
                  0x02,                         # ext 0: octet 3a follows
                  0x80,                         # 3a: ext 1, recommendation 0000000 Q.931
                  0x91)                         # cause 17 user busy
    assert decode(data).cause == Cause(17, 2)


def test_restart_of_one_channel_and_all_interfaces():
    one = octets(0x08, 0x02, 0x00, 0x00,        # global call reference: CR length 2, value 0
                 0x46,                          # RESTART
                 0x18, 0x03, 0xA9, 0x83, 0x85,  # channel: B-channel 5
                 0x79, 0x01,                    # restart indicator, length 1
                 0x80)                          #   ext 1, spare, class 000 indicated channels
    both_ways(one, Message(MT.RESTART, 0, channel=ChannelId(5), restart=RestartIndicator("indicated")))
    ack = octets(0x08, 0x02, 0x80, 0x00, 0x4E, 0x18, 0x03, 0xA9, 0x83, 0x85, 0x79, 0x01, 0x80)
    assert decode(ack) == Message(MT.RESTART_ACKNOWLEDGE, 0, True, channel=ChannelId(5),
                                  restart=RestartIndicator("indicated"))
    every = octets(0x08, 0x02, 0x00, 0x00, 0x46, 0x79, 0x01,
                   0x87)                        # class 111 all interfaces
    both_ways(every, Message(MT.RESTART, 0, restart=RestartIndicator("all-interfaces")))
    single = octets(0x08, 0x02, 0x00, 0x00, 0x46, 0x79, 0x01, 0x86)  # class 110 single interface
    assert decode(single).restart == RestartIndicator("single-interface")


def test_status_with_cause_and_call_state():
    data = octets(0x08, 0x02, 0x80, 0x03, 0x7D,  # STATUS
                  0x08, 0x02, 0x80,              # cause, location user
                  0x9E,                          # ext 1, cause 30 response to STATUS ENQUIRY
                  0x14, 0x01,                    # call state, length 1
                  0x0A)                          # coding 00, state 001010 = 10 active
    both_ways(data, Message(MT.STATUS, 3, True, cause=Cause(30), call_state=CallState(10)))


def test_dummy_and_one_octet_call_references():
    rose = bytes([0x91,                                  # ext 1, protocol profile 10001 remote operations
                  0xA1, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x22])  # invoke: id 1, operation 34 (opaque)
    dummy = octets(0x08, 0x00,                           # dummy call reference: length 0
                   0x62,                                 # FACILITY
                   0x1C, len(rose), rose)                # facility IE, kept raw
    both_ways(dummy, Message(MT.FACILITY, 0, cref_len=0, others=[RawIE(0x1C, rose)]))
    short = octets(0x08, 0x01, 0x85, 0x75)                   # CR length 1, flag 1, CRV 5, STATUS ENQUIRY
    both_ways(short, Message(MT.STATUS_ENQUIRY, 5, True, cref_len=1))
    big = octets(0x08, 0x02, 0xFF, 0xFF, 0x4D)                # flag 1, CRV 0x7FFF, RELEASE
    both_ways(big, Message(MT.RELEASE, 0x7FFF, True))


def test_display_keypad_and_other_bearers():
    data = octets(0x08, 0x02, 0x00, 0x09, 0x05,
                  0x04, 0x02, 0x88, 0x90,        # unrestricted digital, circuit 64k, no layer 1
                  0x18, 0x01, 0xA3,              # channel: preferred, selection 11 any channel
                  0x28, 0x04, 0xD5, 0xC5, 0xC8, 0xFD,  # display, GBK text as sent
                  0x2C, 0x02, b"*9")             # keypad facility
    both_ways(data, Message(MT.SETUP, 9, bearer=BearerCapability("unrestricted", None),
                            channel=ChannelId(None, exclusive=False), display=Display(b"\xd5\xc5\xc8\xfd"),
                            keypad="*9"))
    audio = decode(octets(0x08, 0x02, 0x00, 0x09, 0x05, 0x04, 0x03, 0x90, 0x90, 0xA2))
    assert audio.bearer == BearerCapability("audio", "ulaw")
    no_channel = decode(octets(0x08, 0x02, 0x00, 0x09, 0x05, 0x18, 0x01, 0xA8))  # selection 00
    assert no_channel.channel == ChannelId(None, exclusive=True, any_channel=False)


def test_ies_the_fields_cannot_express_stay_raw():
    v110 = bytes([0x88, 0x90, 0x21, 0x8F])          # unrestricted, layer 1 V.110 with octet 5a
    slot_map = bytes([0xA9, 0x93, 0x00, 0x00, 0x01, 0x00])  # 3.2 with number/map 1
    data = octets(0x08, 0x02, 0x00, 0x09, 0x05, 0x04, 4, v110, 0x18, 6, slot_map,
                  0x7D, 0x02, 0x91, 0x81)           # high layer compatibility: telephony
    msg = decode(data)
    assert msg.bearer is None and msg.channel is None
    assert msg.others == [RawIE(0x04, v110), RawIE(0x18, slot_map), RawIE(0x7D, b"\x91\x81")]
    assert msg.others[0].comprehension_required and not msg.others[2].comprehension_required
    assert encode(msg) == data


def test_repeated_ies_and_repeat_indicator():
    data = octets(0x08, 0x02, 0x00, 0x09, 0x05,
                  0xA1,                          # sending complete
                  0xD2,                          # repeat indicator: prioritised list
                  0x04, 0x03, 0x80, 0x90, 0xA3,  # first bearer: speech
                  0x04, 0x03, 0x90, 0x90, 0xA3,  # second bearer: 3.1 kHz audio
                  0x1E, 0x02, 0x82, 0x83,        # progress: origination non-ISDN
                  0x1E, 0x02, 0x82, 0x88)        # progress again
    msg = decode(data)
    assert msg.bearer == BearerCapability() and msg.progress == ProgressIndicator(3, 2)
    assert msg.others == [RawIE(0xD2, b""), RawIE(0x04, b"\x90\x90\xa3"), RawIE(0x1E, b"\x82\x88")]
    assert encode(msg) == data


def test_codeset_shifts():
    locking = octets(0x08, 0x02, 0x00, 0x09, 0x07,
                     0x18, 0x03, 0xA9, 0x83, 0x85,
                     0x96,                       # locking shift to codeset 6
                     0x01, 0x02, 0x12, 0x34,     # codeset 6 (local network) IE 0x01, opaque
                     0x7A, 0x01, 0x55)           # codeset 6 IE 0x7A, opaque
    msg = decode(locking)
    assert msg.channel == ChannelId(5)
    assert msg.others == [RawIE(0x01, b"\x12\x34", 6), RawIE(0x7A, b"\x55", 6)]
    assert not msg.others[0].comprehension_required
    assert encode(msg) == locking
    nonlocking = octets(0x08, 0x02, 0x00, 0x09, 0x07,
                        0x9D, 0x28, 0x01, 0x41,  # non-locking shift to codeset 5, its IE 0x28
                        0x28, 0x01, 0x42)        # back in codeset 0: display "B"
    msg = decode(nonlocking)
    assert msg.display == Display(b"B") and msg.others == [RawIE(0x28, b"A", 5)]
    assert encode(msg) == octets(0x08, 0x02, 0x00, 0x09, 0x07, 0x28, 0x01, 0x42, 0x95, 0x28, 0x01, 0x41)


# ---- round trips over generated messages ------------------------------------------------

def _number(rng: random.Random, calling: bool) -> PartyNumber:
    digits = "".join(rng.choice("0123456789*#") for _ in range(rng.randrange(0, 20)))
    presentation = rng.choice([None, "allowed", "restricted", "unavailable"]) if calling else None
    screening = rng.choice(["user-not-screened", "user-passed", "user-failed", "network"]) \
        if presentation else "user-not-screened"
    return PartyNumber(digits, rng.choice(["unknown", "international", "national", "network",
                                           "subscriber", "abbreviated"]),
                       rng.choice(["unknown", "isdn", "data", "telex", "national", "private"]),
                       presentation, screening)


def _random_message(rng: random.Random) -> Message:
    maybe = lambda make: make() if rng.random() < 0.5 else None  # noqa: E731
    cref_len = rng.choice([0, 1, 2, 2, 2])
    cref = 0 if cref_len == 0 else rng.randrange(1 << (8 * cref_len - 1))
    channel = maybe(lambda: rng.choice([ChannelId(rng.randint(1, 31), rng.random() < 0.5, rng.random() < 0.2),
                                        ChannelId(None, rng.random() < 0.5, rng.random() < 0.5,
                                                  rng.random() < 0.5)]))
    msg = Message(rng.choice(list(MT)), cref, cref_len > 0 and rng.random() < 0.5,
                  bearer=maybe(lambda: BearerCapability(rng.choice(["speech", "unrestricted", "audio"]),
                                                        rng.choice(["alaw", "ulaw", None]))),
                  channel=channel,
                  cause=maybe(lambda: Cause(rng.randint(1, 127), rng.choice([0, 1, 2, 3, 4, 5, 7, 10]),
                                            bytes(rng.randrange(256) for _ in range(rng.randrange(3))),
                                            rng.choice([0, 0, 3]))),
                  calling=maybe(lambda: _number(rng, True)), called=maybe(lambda: _number(rng, False)),
                  progress=maybe(lambda: ProgressIndicator(rng.choice([1, 2, 3, 8]), rng.choice([0, 2, 4]))),
                  restart=maybe(lambda: RestartIndicator(rng.choice(["indicated", "single-interface",
                                                                     "all-interfaces"]))),
                  display=maybe(lambda: Display(bytes(rng.randrange(256) for _ in range(rng.randrange(30))))),
                  call_state=maybe(lambda: CallState(rng.randrange(64))),
                  keypad=maybe(lambda: "".join(rng.choice("0123456789*#") for _ in range(rng.randrange(1, 8)))),
                  sending_complete=rng.random() < 0.5, cref_len=cref_len)
    raw = []
    if msg.cause and rng.random() < 0.5:  # a second cause
        raw.append(RawIE(0x08, b"\x80\x90"))
    if rng.random() < 0.5:
        raw.append(RawIE(0x1C, bytes(rng.randrange(256) for _ in range(rng.randrange(10)))))
    if rng.random() < 0.3:
        raw.append(RawIE(0x7E, b"\x04hello"))
    raw.sort(key=lambda r: r.ident)
    for codeset in (5, 6, 7):
        if rng.random() < 0.3:
            raw += [RawIE(rng.randrange(0x7F), bytes(rng.randrange(4)), codeset) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.2:
        raw.insert(0, RawIE(0xA0, b""))          # more data
    msg.others = raw
    return msg


def test_generated_messages_round_trip():
    rng = random.Random(931)
    for _ in range(3000):
        msg = _random_message(rng)
        data = encode(msg)
        assert decode(data) == msg, data.hex(" ")
        assert encode(decode(data)) == data


def test_mutated_bytes_decode_or_raise_protocol_error():
    """Flipped, cut and inserted octets never escape as IndexError & co.; what decodes re-encodes."""
    rng = random.Random(850)
    seeds = [SETUP] + [encode(_random_message(rng)) for _ in range(50)]
    for _ in range(20000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data) + 1)
            action = rng.random()
            if action < 0.5 and at < len(data):
                data[at] = rng.randrange(256)
            elif action < 0.75:
                del data[at:]
            else:
                data.insert(at, rng.randrange(256))
        try:
            msg = decode(bytes(data))
        except ProtocolError:
            continue
        again = encode(msg)
        assert encode(decode(again)) == again


def test_fields_in_ascending_identifier_order():
    msg = Message(MT.SETUP, 1, called=PartyNumber("1"), calling=PartyNumber("2"), restart=None,
                  display=Display(b"x"), cause=Cause(16), bearer=BearerCapability(), sending_complete=True,
                  others=[RawIE(0x7C, b"\x88\x90")])
    idents = [encode(msg)[i] for i in (5, 6, 11, 15, 18, 22)]
    assert idents == [0xA1, 0x04, 0x08, 0x28, 0x6C, 0x70]
    assert encode(msg)[-4:] == bytes([0x7C, 0x02, 0x88, 0x90])


def test_encode_refuses_values_without_coding():
    for bad in [Message(MT.SETUP, 1, bearer=BearerCapability("video")),
                Message(MT.SETUP, 1, channel=ChannelId(32)),
                Message(MT.SETUP, 1, channel=ChannelId(3, any_channel=False)),
                Message(MT.SETUP, 1, called=PartyNumber("12", presentation="allowed")),
                Message(MT.SETUP, 1, calling=PartyNumber("12a")),
                Message(MT.SETUP, 1, calling=PartyNumber("12", screening="network")),
                Message(MT.SETUP, 0x8000),
                Message(MT.SETUP, 1, cref_len=0),
                Message(MT.SETUP, 1, display=Display(bytes(256))),
                Message(MT.SETUP, 1, others=[RawIE(0x95, b"")]),
                Message(MT.SETUP, 1, keypad="\u00e9")]:
        with pytest.raises(ValueError):
            encode(bad)


# ---- malformed input ---------------------------------------------------------------------

HEAD = bytes([0x08, 0x02, 0x00, 0x03])


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (bytes([0x09, 0x02, 0x00, 0x03, 0x05]), "protocol discriminator 0x09, expected 0x08"),
    (bytes([0x08]), "no call reference length octet"),
    (bytes([0x08, 0x03, 0x00, 0x00, 0x03, 0x05]), "call reference length 3 is over the limit"),
    (bytes([0x08, 0x0F, 0x00]), "call reference length 15 is over the limit"),
    (bytes([0x08, 0x12, 0x00]), "spare bits 8-5 set"),
    (bytes([0x08, 0x02, 0x00, 0x03]), "truncated: 4 octets, the header needs 5"),
    (HEAD + bytes([0x99]), "unknown message type 0x99"),
    (HEAD + bytes([0x00]), "escape to nationally specific message types 0x00"),
    (HEAD + bytes([0x05, 0x04]), "IE 0x04 (bearer capability) at offset 5 of a SETUP is truncated"),
    (HEAD + bytes([0x05, 0x04, 0x03, 0x80, 0x90]),
     "IE 0x04 (bearer capability) at offset 5 of a SETUP: length 3 runs past the end"),
    (HEAD + bytes([0x45, 0x08, 0x01, 0x82]), "cause: no cause value octet (octet 4) after octet 3 (0x82)"),
    (HEAD + bytes([0x45, 0x08, 0x00]), "cause: no contents"),
    (HEAD + bytes([0x45, 0x08, 0x02, 0x02, 0x80]), "cause: no cause value octet (octet 4) after octet 3a"),
    (HEAD + bytes([0x45, 0x08, 0x02, 0x82, 0x10]), "cause: octet 4 (0x10) has extension bit 0"),
    (HEAD + bytes([0x05, 0x18, 0x01, 0x89]), "octet 3 (0x89) has interface type 0 (basic interface)"),
    (HEAD + bytes([0x05, 0x18, 0x03, 0x89, 0x83, 0x85]), "a PRI needs interface type 1"),
    (HEAD + bytes([0x05, 0x18, 0x02, 0xA9, 0x83]), "octet 3.3 is missing"),
    (HEAD + bytes([0x05, 0x18, 0x03, 0xA9, 0x83, 0x80]), "names channel 0, an E1 PRI has channels 1..31"),
    (HEAD + bytes([0x05, 0x18, 0x01, 0xAA]), "reserved information channel selection 10"),
    (HEAD + bytes([0x05, 0x18, 0x03, 0xAB, 0x83, 0x85]), "selects any channel, yet 2 more octet(s) follow"),
    (HEAD + bytes([0x05, 0x6C, 0x05, 0x21, 0x80, 0x31, 0x58, 0x32]),
     "calling party number: octet 5 (0x58, 'X') is not a digit 0-9, * or #"),
    (HEAD + bytes([0x05, 0x70, 0x03, 0x21, 0x31, 0x32]), "called party number has no octet 3a"),
    (HEAD + bytes([0x05, 0x6C, 0x01, 0x21]), "announces octet 3a, which is missing"),
    (HEAD + bytes([0x05, 0x6C, 0x02, 0x21, 0xE0]), "reserved presentation indicator 11"),
    (HEAD + bytes([0x05, 0x70, 0x02, 0xD1, 0x31]), "reserved type of number 5"),
    (HEAD + bytes([0x05, 0x70, 0x02, 0x82, 0x31]), "reserved numbering plan 2"),
    (HEAD + bytes([0x46, 0x79, 0x01, 0x83]), "restart indicator: octet 3 (0x83) has the reserved class 3"),
    (HEAD + bytes([0x05, 0x04, 0x01, 0x80]), "bearer capability: 1 octet(s) of contents"),
    (HEAD + bytes([0x05, 0x1E, 0x01, 0x82]), "progress indicator: 1 octet(s)"),
    (HEAD + bytes([0x05, 0x2C, 0x01, 0xB1]), "keypad facility: octet 3 (0xB1) is not an IA5 character"),
    (HEAD + bytes([0x05, 0x96, 0x95]), "goes from codeset 6 to codeset 5"),
    (HEAD + bytes([0x05, 0x92]), "reserved codeset 2"),
])
def test_malformed_input(data, message):
    with pytest.raises(ProtocolError) as err:
        decode(data)
    assert message in str(err.value)


def test_error_names_the_ie_and_the_message():
    with pytest.raises(ProtocolError, match=r"IE 0x18 \(channel identification\) at offset 5 of a SETUP"):
        decode(HEAD + bytes([0x05, 0x18, 0x01, 0x89]))


def test_tolerated_quirks():
    # a repeated IE is not checked: only the first is interpreted, the second is kept raw
    msg = decode(HEAD + bytes([0x45, 0x08, 0x02, 0x82, 0x90, 0x08, 0x01, 0x82]))
    assert msg.cause == Cause(16, 2) and msg.others == [RawIE(0x08, b"\x82")]
    # a locking shift right after a non-locking one counts alone (Q.931 §4.5.4)
    msg = decode(HEAD + bytes([0x05, 0x9E, 0x95, 0x01, 0x00, 0x02, 0x00]))
    assert msg.others == [RawIE(0x01, b"", 5), RawIE(0x02, b"", 5)]
    # cause value 0 and national coding standard are carried, not refused
    assert decode(HEAD + bytes([0x45, 0x08, 0x02, 0xE2, 0x80])).cause == Cause(0, 2, coding=3)
    # progress with national coding, call state with a non-ITU coding stays raw
    msg = decode(HEAD + bytes([0x7D, 0x1E, 0x02, 0xC2, 0x88, 0x14, 0x01, 0xCA]))
    assert msg.progress == ProgressIndicator(8, 2, coding=2) and msg.others == [RawIE(0x14, b"\xca")]


def test_names_for_logs():
    assert CAUSES[16] == "normal call clearing" and CAUSES[34] == "no circuit/channel available"
    for value in (1, 16, 17, 18, 19, 21, 27, 28, 31, 34, 38, 41, 42, 44, 47, 58, 63, 65, 79, 81, 82,
                  88, 96, 97, 98, 99, 100, 101, 102, 111, 127):
        assert CAUSES[value]
    assert RawIE(0x1C, b"").name == "IE 0x1C (facility)"
    assert [MT.SETUP, MT.RELEASE_COMPLETE, MT.STATUS_ENQUIRY, MT.FACILITY] == [0x05, 0x5A, 0x75, 0x62]
