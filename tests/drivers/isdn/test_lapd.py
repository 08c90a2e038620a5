"""Q.921 LAPD (drivers.isdn.lapd): the exact bytes of each procedure on one end, then two
ends back to back through a wire that loses or reorders the frames a test picks.

Frames are written out from Q.921 3.3/3.6, not from the module's constants: address
octet 1 is SAPI<<2 | C/R<<1 | EA0=0, octet 2 TEI<<1 | EA1=1. The network's commands and
the user's responses carry C/R=1; the user's commands and the network's responses C/R=0.
"""

from __future__ import annotations

import random
from typing import Callable

import pytest

from appliance.errors import ProtocolError
from drivers.isdn.lapd import Data, Lapd, LinkDown, LinkReset, LinkUp

NET_CMD = USER_RSP = b"\x02\x01"  # SAPI 0, C/R=1, TEI 0
USER_CMD = NET_RSP = b"\x00\x01"  # SAPI 0, C/R=0, TEI 0
SABME_P, UA_F, DISC_P, DM_F, DM_0, FRMR_F = b"\x7f", b"\x73", b"\x53", b"\x1f", b"\x0f", b"\x97"


def rr(nr: int, pf: int = 0) -> bytes:
    return bytes((0x01, nr << 1 | pf))


def rnr(nr: int, pf: int = 0) -> bytes:
    return bytes((0x05, nr << 1 | pf))


def rej(nr: int, pf: int = 0) -> bytes:
    return bytes((0x09, nr << 1 | pf))


def iframe(ns: int, nr: int, info: bytes, p: int = 0) -> bytes:
    return bytes((ns << 1, nr << 1 | p)) + info


def events(end: Lapd) -> list:
    out = []
    while (ev := end.next_event()) is not None:
        out.append(ev)
    return out


def established(network: bool, now: float = 0.0, **timers) -> Lapd:
    """One end brought up by our own SABME and the peer's UA; frames and events drained."""
    end = Lapd(network, **timers)
    end.start(now)
    assert end.frames_to_send() == [(NET_CMD if network else USER_CMD) + SABME_P]
    end.receive((USER_RSP if network else NET_RSP) + UA_F, now)
    assert events(end) == [LinkUp()] and end.up and end.frames_to_send() == []
    return end


# --- one end, exact bytes ---------------------------------------------------------------


def test_the_user_side_sends_sabme_with_p_and_comes_up_on_ua():
    user = Lapd(network=False)
    user.start(0.0)
    assert user.frames_to_send() == [b"\x00\x01\x7f"]  # SAPI 0 C/R=0 | TEI 0 | SABME P=1
    assert not user.up and user.next_deadline() == 1.0  # T200
    user.start(0.5)  # idempotent while establishing
    assert user.frames_to_send() == [] and user.next_event() is None
    user.receive(b"\x00\x01\x73", 0.25)  # UA F=1, a network response: C/R=0
    assert user.up and events(user) == [LinkUp()] and user.frames_to_send() == []
    assert user.next_deadline() == 10.25  # T203 now, T200 stopped
    user.start(1.0)
    assert user.frames_to_send() == [] and user.next_event() is None


def test_the_network_side_sends_sabme_with_p_and_comes_up_on_ua():
    net = Lapd(network=True)
    net.start(0.0)
    assert net.frames_to_send() == [b"\x02\x01\x7f"]  # SAPI 0 C/R=1 | TEI 0 | SABME P=1
    net.receive(b"\x02\x01\x73", 0.1)  # UA F=1, a user response: C/R=1
    assert net.up and events(net) == [LinkUp()]


@pytest.mark.parametrize("network, sabme, ua", [(True, b"\x00\x01\x7f", b"\x00\x01\x73"),
                                                (False, b"\x02\x01\x7f", b"\x02\x01\x73")])
def test_each_side_answers_the_peers_sabme_with_ua_f(network, sabme, ua):
    end = Lapd(network)
    end.receive(sabme, 0.0)
    assert end.frames_to_send() == [ua] and end.up and events(end) == [LinkUp()]
    assert end.next_deadline() == 10.0


def test_sabme_unanswered_n200_times_reports_link_down_once_and_keeps_trying():
    user = Lapd(False)
    user.start(0.0)
    sent = user.frames_to_send()
    for t in (1.0, 2.0, 3.0):
        user.handle_timer(t)
        sent += user.frames_to_send()
    assert sent == [USER_CMD + SABME_P] * 4 and user.next_event() is None  # first + N200 retries
    user.handle_timer(4.0)
    assert events(user) == [LinkDown("no answer to SABME after 3 retries")]
    assert user.frames_to_send() == [] and user.next_deadline() == 5.0
    sabmes = []
    for t in range(5, 31):  # a new round T200 after each failure, forever, reported once
        user.handle_timer(float(t))
        sabmes += [t for f in user.frames_to_send() if f == USER_CMD + SABME_P]
    assert sabmes == [t for t in range(5, 31) if t % 5 != 4] and user.next_event() is None
    user.receive(NET_RSP + UA_F, 30.5)
    assert events(user) == [LinkUp()]


def test_dm_answering_sabme_is_a_refusal_and_the_link_retries():
    net = Lapd(True)
    net.start(0.0)
    net.frames_to_send()
    net.receive(USER_RSP + DM_F, 0.1)
    assert events(net) == [LinkDown("peer refused the link (DM)")] and not net.up
    net.handle_timer(1.1)
    assert net.frames_to_send() == [NET_CMD + SABME_P]


def test_i_frames_rr_and_piggybacked_acknowledgement():
    user, net = established(False), established(True)
    user.send(b"SETUP", 0.0)
    assert user.frames_to_send() == [b"\x00\x01\x00\x00SETUP"]  # I N(S)=0 N(R)=0 P=0
    assert user.next_deadline() == 1.0  # T200 replaces T203
    user.send(b"INFO", 0.0)
    assert user.frames_to_send() == [b"\x00\x01\x02\x00INFO"]  # N(S)=1
    net.receive(b"\x00\x01\x00\x00SETUP", 0.0)
    net.receive(b"\x00\x01\x02\x00INFO", 0.0)
    assert events(net) == [Data(b"SETUP"), Data(b"INFO")]
    assert net.frames_to_send() == [b"\x00\x01\x01\x02", b"\x00\x01\x01\x04"]  # RR N(R)=1, 2
    net.send(b"CONNECT", 0.0)
    assert net.frames_to_send() == [b"\x02\x01\x00\x04CONNECT"]  # N(S)=0 N(R)=2
    # the RRs are lost; the I frame's N(R) acknowledges both messages
    user.receive(b"\x02\x01\x00\x04CONNECT", 0.2)
    assert events(user) == [Data(b"CONNECT")] and user.frames_to_send() == [USER_RSP + rr(1)]
    assert user.next_deadline() == pytest.approx(10.2)  # all acknowledged: T203 again


def test_the_window_holds_k_frames_until_acknowledged():
    user = established(False)
    for n in range(10):
        user.send(bytes([n]), 0.0)
    sent = user.frames_to_send()
    assert sent == [USER_CMD + iframe(n, 0, bytes([n])) for n in range(7)]  # k=7
    user.receive(NET_RSP + rr(3), 0.1)  # three acknowledged: three more go
    assert user.frames_to_send() == [USER_CMD + iframe(n, 0, bytes([n])) for n in (7, 8, 9)]
    assert user.next_deadline() == pytest.approx(1.1)  # T200 restarted by the progress
    user.receive(NET_RSP + rr(10), 0.2)
    assert user.next_deadline() == pytest.approx(10.2) and user.frames_to_send() == []


def test_a_window_of_two():
    net = established(True, k=2)
    for n in range(3):
        net.send(b"m", 0.0)
    assert len(net.frames_to_send()) == 2


@pytest.mark.parametrize("network, poll, answer", [
    (False, NET_CMD + rr(0, 1), USER_RSP + rr(0, 1)),
    (True, USER_CMD + rr(0, 1), NET_RSP + rr(0, 1)),
    (True, USER_CMD + rnr(0, 1), NET_RSP + rr(0, 1)),
    (False, NET_CMD + iframe(0, 0, b"x", p=1), USER_RSP + rr(1, 1)),
])
def test_a_command_with_p_gets_a_response_with_f(network, poll, answer):
    end = established(network)
    end.receive(poll, 0.0)
    assert end.frames_to_send() == [answer]


def test_t203_expiry_polls_with_rr_p_and_the_answer_restarts_it():
    user = established(False)
    assert user.next_deadline() == 10.0
    user.handle_timer(10.0)
    assert user.frames_to_send() == [b"\x00\x01\x01\x01"]  # RR command N(R)=0 P=1
    assert user.up and user.next_deadline() == 11.0
    user.receive(b"\x00\x01\x01\x01", 10.5)  # the network's RR response F=1
    assert user.next_deadline() == 20.5 and user.next_event() is None


def test_an_unanswered_poll_is_repeated_then_the_link_is_reestablished_and_fails():
    net = established(True)
    net.send(b"a", 0.0)
    assert net.frames_to_send() == [NET_CMD + iframe(0, 0, b"a")]
    polls = []
    for t in (1.0, 2.0, 3.0):
        net.handle_timer(t)
        polls += net.frames_to_send()
    assert polls == [NET_CMD + rr(0, 1)] * 3 and net.up
    net.handle_timer(4.0)  # N200 exceeded: re-establish (MDL-ERROR I)
    assert net.frames_to_send() == [NET_CMD + SABME_P] and not net.up and net.next_event() is None
    for t in (5.0, 6.0, 7.0, 8.0):
        net.handle_timer(t)
    assert events(net) == [LinkDown("N200 retries exceeded (I), then no answer to SABME")]
    # the peer comes back: the failure dropped the message (Q.921 5.7.2; Q.931 recovers)
    net.handle_timer(9.0)
    assert net.frames_to_send()[-1] == NET_CMD + SABME_P
    net.receive(USER_RSP + UA_F, 9.1)
    assert events(net) == [LinkUp()] and net.frames_to_send() == []
    net.send(b"b", 9.2)
    assert net.frames_to_send() == [NET_CMD + iframe(0, 0, b"b")]


def test_a_sequence_error_sends_one_rej_until_the_gap_is_filled():
    net = established(True)
    net.receive(USER_CMD + iframe(1, 0, b"b"), 0.0)
    assert net.frames_to_send() == [NET_RSP + rej(0)] and net.next_event() is None
    net.receive(USER_CMD + iframe(2, 0, b"c"), 0.0)  # reject exception: no second REJ
    assert net.frames_to_send() == [] and net.next_event() is None
    net.receive(USER_CMD + iframe(0, 0, b"a"), 0.0)
    assert events(net) == [Data(b"a")] and net.frames_to_send() == [NET_RSP + rr(1)]
    net.receive(USER_CMD + iframe(2, 0, b"c"), 0.0)  # a new gap: a new REJ
    assert net.frames_to_send() == [NET_RSP + rej(1)]


def test_rej_makes_the_sender_go_back_to_n_r():
    user = established(False)
    for m in (b"a", b"b", b"c"):
        user.send(m, 0.0)
    user.frames_to_send()
    user.receive(NET_RSP + rej(1), 0.1)
    assert user.frames_to_send() == [USER_CMD + iframe(1, 0, b"b"), USER_CMD + iframe(2, 0, b"c")]


def test_rnr_stops_the_sender_and_the_busy_peer_is_polled():
    user = established(False)
    user.send(b"a", 0.0)
    user.frames_to_send()
    user.receive(NET_RSP + rnr(1), 0.1)  # "a" acknowledged, but the network is busy
    user.send(b"b", 0.2)
    assert user.frames_to_send() == [] and user.next_deadline() == pytest.approx(1.1)
    user.handle_timer(1.1)
    assert user.frames_to_send() == [USER_CMD + rr(0, 1)]
    user.receive(NET_RSP + rnr(1, 1), 1.2)  # still busy: keep waiting, poll again later
    assert user.frames_to_send() == [] and user.next_deadline() == pytest.approx(2.2)
    user.receive(NET_RSP + rr(1), 1.5)  # not busy any more
    assert user.frames_to_send() == [USER_CMD + iframe(1, 0, b"b")]
    assert user.next_event() is None


def test_an_invalid_n_r_reestablishes_and_reports_a_reset_with_code_j():
    user = established(False)
    user.receive(NET_CMD + rr(5), 1.0)  # nothing was sent: N(R)=5 is impossible
    assert user.frames_to_send() == [USER_CMD + SABME_P] and not user.up
    user.receive(NET_RSP + UA_F, 1.1)
    assert events(user) == [LinkReset("N(R) error (J)")] and user.up


def test_dm_while_established_reestablishes_but_an_unsolicited_dm_f_is_ignored():
    net = established(True)
    net.receive(USER_RSP + DM_F, 1.0)  # F=1 without a poll of ours (MDL-ERROR B)
    assert net.frames_to_send() == [] and net.up
    net.receive(USER_RSP + DM_0, 1.0)
    assert net.frames_to_send() == [NET_CMD + SABME_P]
    net.receive(USER_RSP + UA_F, 1.1)
    assert events(net) == [LinkReset("DM received (E)")]


def test_dm_answering_a_poll_reestablishes():
    user = established(False)
    user.handle_timer(10.0)
    assert user.frames_to_send() == [USER_CMD + rr(0, 1)]
    user.receive(NET_RSP + DM_F, 10.1)  # the network lost the link: it answers DM F=1
    assert user.frames_to_send() == [USER_CMD + SABME_P]


def test_frmr_reestablishes():
    user = established(False)
    user.receive(NET_RSP + FRMR_F + b"\x01\x02\x03\x04\x05", 1.0)
    assert user.frames_to_send() == [USER_CMD + SABME_P]


def test_peer_sabme_while_up_resets_the_link_and_discards_what_was_not_acknowledged():
    user = established(False)
    for m in (b"a", b"b", b"c"):
        user.send(m, 0.0)
    user.frames_to_send()
    user.receive(NET_RSP + rr(1), 0.1)  # "a" is acknowledged, "b" and "c" are not
    user.receive(b"\x02\x01\x7f", 0.2)
    assert events(user) == [LinkReset("peer reset the link (SABME)")] and user.up
    assert user.frames_to_send() == [b"\x02\x01\x73"]  # UA; "b" and "c" are gone (Q.921 5.7.2)


def test_disc_releases_with_ua_and_a_stopped_end_refuses_sabme():
    net = established(True)
    net.stop(1.0)
    assert net.frames_to_send() == [b"\x02\x01\x53"] and not net.up  # DISC P=1
    net.receive(USER_RSP + UA_F, 1.1)
    assert events(net) == [LinkDown("released")] and net.next_deadline() is None
    net.receive(USER_CMD + SABME_P, 2.0)
    assert net.frames_to_send() == [b"\x00\x01\x1f"] and not net.up  # DM F=1
    user = established(False)
    user.receive(b"\x02\x01\x53", 1.0)
    assert user.frames_to_send() == [b"\x02\x01\x73"]  # UA F=1
    assert events(user) == [LinkDown("DISC received")] and not user.up


def test_a_release_without_answer_ends_after_n200_retries():
    user = established(False)
    user.stop(0.0)
    assert user.frames_to_send() == [USER_CMD + DISC_P]
    for t in (1.0, 2.0, 3.0, 4.0):
        user.handle_timer(t)
    assert user.frames_to_send() == [USER_CMD + DISC_P] * 3
    assert events(user) == [LinkDown("released (no answer to DISC)")] and user.next_deadline() is None


def test_ui_frames_deliver_their_information_in_any_state():
    user = Lapd(False)
    user.receive(NET_CMD + b"\x03" + b"hello", 0.0)
    assert events(user) == [Data(b"hello")] and user.frames_to_send() == [] and user.discarded == 0


def test_send_while_down_establishes_and_keeps_the_order():
    user = Lapd(False)
    user.send(b"one", 0.0)
    user.send(b"two", 0.0)
    assert user.frames_to_send() == [USER_CMD + SABME_P]
    user.receive(NET_RSP + UA_F, 0.1)
    assert user.frames_to_send() == [USER_CMD + iframe(0, 0, b"one"), USER_CMD + iframe(1, 0, b"two")]


def test_send_refuses_a_message_longer_than_n201():
    user = established(False)
    user.send(bytes(260), 0.0)
    with pytest.raises(ProtocolError):
        user.send(bytes(261), 0.0)


BAD_FRAMES = {
    "empty": b"",
    "one octet": b"\x02",
    "two octets": b"\x02\x01",
    "EA0 set in octet 1": b"\x03\x01\x7f",
    "EA1 clear in octet 2": b"\x02\x00\x7f",
    "SAPI 63 (TEI management)": b"\xfe\xff\x03\x0f\x00\x00\x01\xff",
    "SAPI 16": b"\x42\x01\x00\x00x",
    "TEI 1": b"\x02\x03\x7f",
    "TEI 127": b"\x02\xff\x03hello",
    "I frame of 3 octets": b"\x02\x01\x00",
    "RR of 3 octets": b"\x02\x01\x01",
    "I frame as a response": NET_RSP + b"\x00\x00x",
    "UA as a command": NET_CMD + UA_F,
    "SABME as a response": NET_RSP + SABME_P,
    "XID": b"\x02\x01\xaf",
}
REJECTED = {  # frame rejection conditions (Q.921 5.8.5)
    "undefined U control": b"\x02\x01\xff",
    "undefined S control": b"\x02\x01\x0d\x00",
    "RR with an information field": b"\x02\x01\x01\x00\x00",
    "SABME with an information field": b"\x02\x01\x7f\x00",
    "I frame of 261 octets": b"\x02\x01\x00\x00" + bytes(261),
}


@pytest.mark.parametrize("frame", list(BAD_FRAMES.values()) + list(REJECTED.values()),
                         ids=list(BAD_FRAMES) + list(REJECTED))
def test_bad_frames_are_discarded_and_counted(frame):
    user = Lapd(False)
    user.receive(frame, 0.0)
    assert user.discarded == 1 and user.last_discard and sum(user.discard_reasons.values()) == 1
    assert user.frames_to_send() == [] and user.next_event() is None and not user.up


@pytest.mark.parametrize("frame", BAD_FRAMES.values(), ids=BAD_FRAMES)
def test_invalid_frames_leave_an_established_link_alone(frame):
    user = established(False)
    user.receive(frame, 1.0)
    assert user.discarded == 1 and user.up and user.frames_to_send() == []
    assert user.next_event() is None


@pytest.mark.parametrize("frame", REJECTED.values(), ids=REJECTED)
def test_frame_rejection_conditions_reestablish_an_established_link(frame):
    user = established(False)
    user.receive(frame, 1.0)
    assert user.discarded == 1 and user.frames_to_send() == [USER_CMD + SABME_P]
    user.receive(NET_RSP + UA_F, 1.1)
    [reset] = events(user)
    assert isinstance(reset, LinkReset) and reset.reason == user.last_discard


def test_the_longest_i_frame_is_accepted():
    user = established(False)
    user.receive(NET_CMD + iframe(0, 0, bytes(260)), 0.0)
    assert events(user) == [Data(bytes(260))] and user.discarded == 0


# --- two ends back to back --------------------------------------------------------------

Lose = Callable[[str, bytes], bool]


class Wire:
    """A network and a user end joined on a simulated clock. Every frame is logged as
    (time, "n>u" or "u>n", frame, lost); ``lose`` picks the frames that vanish and
    ``reorder`` may permute each batch one end sends."""

    def __init__(self, **timers) -> None:
        self.net, self.usr = Lapd(True, **timers), Lapd(False, **timers)
        self.now = 0.0
        self.log: list[tuple[float, str, bytes, bool]] = []
        self.events: dict[str, list] = {"net": [], "usr": []}
        self.lose: Lose = lambda way, frame: False
        self.reorder: Callable[[str, list[bytes]], list[bytes]] = lambda way, frames: frames

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for way, src, dst in (("n>u", self.net, self.usr), ("u>n", self.usr, self.net)):
                for frame in self.reorder(way, src.frames_to_send()):
                    moved = True
                    lost = self.lose(way, frame)
                    self.log.append((self.now, way, frame, lost))
                    if not lost:
                        dst.receive(frame, self.now)
            for name, end in (("net", self.net), ("usr", self.usr)):
                while (ev := end.next_event()) is not None:
                    self.events[name].append(ev)

    def run(self, until: float) -> None:
        """Move frames and fire timers in time order up to ``until``."""
        self.pump()
        while True:
            due = [t for t in (self.net.next_deadline(), self.usr.next_deadline()) if t is not None]
            if not due or min(due) > until:
                break
            self.now = max(self.now, min(due))
            self.net.handle_timer(self.now)
            self.usr.handle_timer(self.now)
            self.pump()
        self.now = until

    def send(self, side: str, payloads: list[bytes]) -> None:
        end = self.net if side == "net" else self.usr
        for p in payloads:
            end.send(p, self.now)
        self.pump()

    def data(self, side: str) -> list[bytes]:
        return [ev.payload for ev in self.events[side] if isinstance(ev, Data)]

    def links(self, side: str) -> list:
        return [ev for ev in self.events[side] if not isinstance(ev, Data)]

    def frames(self, way: str, pred: Callable[[bytes], bool]) -> list[bytes]:
        return [f for _, w, f, _ in self.log if w == way and pred(f)]


def is_i(f: bytes) -> bool:
    return f[2] & 1 == 0


def is_rej(f: bytes) -> bool:
    return f[2] == 0x09


def is_poll(f: bytes) -> bool:  # RR command P=1 sent by the user
    return f[:3] == USER_CMD + b"\x01" and f[3] & 1 == 1


def nth(way: str, pred: Callable[[bytes], bool], *which: int) -> Lose:
    """Lose the ``which``-th (from 1) frames on ``way`` that match ``pred``."""
    seen = 0

    def lose(w: str, frame: bytes) -> bool:
        nonlocal seen
        if w != way or not pred(frame):
            return False
        seen += 1
        return seen in which
    return lose


def msgs(tag: str, n: int) -> list[bytes]:
    return [f"{tag} message {i}".encode() for i in range(n)]


def up_wire(**timers) -> Wire:
    w = Wire(**timers)
    w.usr.start(0.0)
    w.net.start(0.0)
    w.run(0.0)
    assert w.links("net") == w.links("usr") == [LinkUp()]
    return w


def test_both_ends_starting_at_once_come_up_without_a_reset():
    w = up_wire()
    assert [(way, f) for _, way, f, _ in w.log] == [
        ("n>u", NET_CMD + SABME_P), ("u>n", USER_CMD + SABME_P),  # crossing SABMEs
        ("u>n", USER_RSP + UA_F), ("n>u", NET_RSP + UA_F)]
    w.run(35.0)  # idle: T203 polls and their answers, nothing else
    assert w.links("net") == w.links("usr") == [LinkUp()]
    polls = [(t, way, f) for t, way, f, _ in w.log[4:]]
    assert [t for t, _, _ in polls] == [10.0] * 4 + [20.0] * 4 + [30.0] * 4
    assert {f for _, _, f in polls} == {USER_CMD + rr(0, 1), NET_CMD + rr(0, 1)}  # same bytes
    # as the answers: a user command and a network response both carry C/R=0


def test_a_lost_sabme_in_a_collision_costs_no_reset():
    w = Wire()
    w.lose = nth("n>u", lambda f: f == NET_CMD + SABME_P, 1)
    w.net.start(0.0)
    w.usr.start(0.0)
    w.run(5.0)  # the network answers the user's SABME with UA and is up at once
    assert w.links("net") == w.links("usr") == [LinkUp()]
    assert len(w.log) == 3


def test_one_end_started_brings_up_both():
    w = Wire()
    w.usr.start(0.0)
    w.run(0.0)
    assert [f for _, _, f, _ in w.log] == [USER_CMD + SABME_P, NET_RSP + UA_F]
    assert w.net.up and w.usr.up


@pytest.mark.parametrize("n", [100, 300])  # 300 wraps the modulo-128 sequence numbers twice
def test_messages_each_way_arrive_once_and_in_order(n):
    w = up_wire()
    w.send("usr", msgs("usr", n))
    w.send("net", msgs("net", n))
    w.run(1.0)
    assert w.data("net") == msgs("usr", n) and w.data("usr") == msgs("net", n)
    assert not w.frames("u>n", is_rej) and not w.frames("n>u", is_rej)
    assert len(w.frames("u>n", is_i)) == n  # none sent twice


def test_a_lost_i_frame_is_recovered_by_rej_at_once():
    w = up_wire()
    w.lose = nth("u>n", is_i, 3)
    w.send("usr", msgs("usr", 10))
    assert w.data("net") == msgs("usr", 10) and w.now == 0.0  # no timer needed
    assert w.frames("n>u", is_rej) == [NET_RSP + rej(2)]  # one REJ for the whole gap


def test_the_last_i_frame_lost_is_recovered_by_t200_and_the_poll():
    w = up_wire()
    start = len(w.log)
    w.lose = nth("u>n", is_i, 1)
    w.send("usr", [b"alone"])
    w.run(5.0)
    assert w.data("net") == [b"alone"]
    assert [(t, way, f, lost) for t, way, f, lost in w.log[start:start + 5]] == [
        (0.0, "u>n", USER_CMD + iframe(0, 0, b"alone"), True),
        (1.0, "u>n", USER_CMD + rr(0, 1), False),  # T200: poll
        (1.0, "n>u", NET_RSP + rr(0, 1), False),  # F=1, N(R)=0: nothing arrived
        (1.0, "u>n", USER_CMD + iframe(0, 0, b"alone"), False),  # go back to V(A)
        (1.0, "n>u", NET_RSP + rr(1), False)]


def test_lost_acknowledgements_resend_nothing():
    w = up_wire()
    w.lose = nth("n>u", lambda f: f[2] == 0x01 and f[3] & 1 == 0, 1, 2, 3, 4, 5)
    w.send("usr", msgs("usr", 5))
    w.run(3.0)
    assert w.data("net") == msgs("usr", 5) and len(w.frames("u>n", is_i)) == 5
    assert len(w.frames("u>n", is_poll)) == 1 and w.links("usr") == [LinkUp()]


@pytest.mark.parametrize("lost", ["poll", "answer"])
def test_a_lost_poll_or_answer_is_polled_again(lost):
    w = up_wire()
    first_i = nth("u>n", is_i, 1)
    answer = nth("n>u", lambda f: f[2] == 0x01 and f[3] & 1 == 1, 1)
    poll = nth("u>n", is_poll, 1)
    w.lose = lambda way, f: first_i(way, f) or (poll if lost == "poll" else answer)(way, f)
    w.send("usr", [b"x"])
    w.run(1.5)
    assert w.data("net") == []
    w.run(2.5)
    assert w.data("net") == [b"x"] and len(w.frames("u>n", is_poll)) == 2


def test_reordered_i_frames_arrive_once_and_in_order():
    w = up_wire()
    swapped = False

    def reorder(way: str, frames: list[bytes]) -> list[bytes]:
        nonlocal swapped
        if way == "u>n" and not swapped and len(frames) >= 4:
            swapped = True
            return [frames[1], frames[0], frames[3], frames[2]] + frames[4:]
        return frames
    w.reorder = reorder
    w.send("usr", msgs("usr", 20))
    w.run(5.0)
    assert swapped and w.data("net") == msgs("usr", 20) and w.links("net") == [LinkUp()]
    assert w.frames("n>u", is_rej)


def test_random_loss_both_ways_still_delivers_everything_once_in_order():
    rng = random.Random(921)
    w = up_wire()
    w.lose = lambda way, f: rng.random() < 0.15
    for burst in range(10):
        w.send("usr", msgs(f"usr {burst}", 10))
        w.send("net", msgs(f"net {burst}", 10))
        w.run(w.now + 3.0)
    w.lose = lambda way, f: False
    w.run(w.now + 20.0)
    want_net = [m for b in range(10) for m in msgs(f"usr {b}", 10)]
    want_usr = [m for b in range(10) for m in msgs(f"net {b}", 10)]
    assert w.data("net") == want_net and w.data("usr") == want_usr
    assert w.links("net") == w.links("usr") == [LinkUp()]


def test_a_silent_peer_exceeds_n200_goes_down_and_the_link_comes_back_by_itself():
    w = up_wire()
    silent = True
    w.lose = lambda way, f: silent
    w.run(0.5)
    w.send("usr", [b"during 1"])
    w.send("net", [b"during 2"])
    w.run(30.0)
    assert w.links("usr") == [LinkUp(), LinkDown("N200 retries exceeded (I), then no answer to SABME")]
    assert w.links("net")[-1] == LinkDown("N200 retries exceeded (I), then no answer to SABME")
    assert not w.net.up and not w.usr.up
    w.send("usr", [b"while down"])
    silent = False
    w.run(40.0)
    assert w.usr.up and w.net.up
    assert w.links("usr") == w.links("net") == [
        LinkUp(), LinkDown("N200 retries exceeded (I), then no answer to SABME"), LinkUp()]
    assert w.data("net") == [b"while down"] and w.data("usr") == []  # the failure dropped the others


def test_a_restarted_peer_resets_the_link_and_unacknowledged_messages_are_dropped():
    w = up_wire()
    w.send("usr", [b"before"])
    w.lose = lambda way, f: way == "u>n" and is_i(f)  # the network dies: these never arrive
    w.send("usr", [b"lost 1", b"lost 2"])
    w.lose = lambda way, f: False
    w.net = Lapd(True)  # a fresh network end, as after a reboot
    w.net.start(w.now)
    w.run(5.0)
    assert w.links("usr") == [LinkUp(), LinkReset("peer reset the link (SABME)")]
    assert w.links("net") == [LinkUp(), LinkUp()]  # the old end's, then the new end's
    assert w.data("net") == [b"before"]
    w.send("net", [b"after"])
    assert w.data("usr") == [b"after"]


def test_disc_takes_the_link_down_and_start_brings_it_back():
    w = up_wire()
    w.send("usr", [b"a"])
    w.net.stop(w.now)
    w.run(0.5)
    assert w.links("usr") == [LinkUp(), LinkDown("DISC received")]
    assert w.links("net") == [LinkUp(), LinkDown("released")]
    w.run(10.0)  # the user keeps asking, the stopped network keeps refusing, quietly
    assert not w.usr.up and w.links("usr")[-1] == LinkDown("DISC received")
    assert w.frames("n>u", lambda f: f == NET_RSP + DM_F)
    w.net.start(w.now)
    w.run(11.0)
    assert w.usr.up and w.net.up and w.links("usr")[-1] == w.links("net")[-1] == LinkUp()
    w.send("net", [b"b"])
    assert w.data("net") == [b"a"] and w.data("usr") == [b"b"]
