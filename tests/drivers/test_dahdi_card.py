"""The DAHDI card on the fake kernel: what the conformance suite does not reach (DAHDI's own signalling details)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re

import numpy as np
import pytest

from appliance.config import validate
from appliance.core import make_card
from appliance.errors import DriverError
from drivers.base import (BLOCK, Alarm, Card, Digit, Flash, OffHook, OnHook, Polarity, PortFault, PortInfo, PortKind,
                          Released, Ringing)
from dsp.callerid import decode_callerid
from dsp.g711 import alaw_decode

TRUNKS, PHONES, LINES = [1, 2, 3], [32, 33], [38, 39]  # channels in FakeKernel.appliance()
T1, P1, P2, L1 = 0, 3, 4, 5  # their ports: trunk channel 1, phones 32 and 33, line 38


class Box:
    """The card on the fake kernel, ticked the runtime's way: hardware 20 ms on, poll, read, write."""

    def __init__(self, kernel, **kw) -> None:
        from drivers.dahdi.card import DahdiCard
        self.kernel = kernel
        self.card = DahdiCard(kernel, span_channels=TRUNKS, fxs_channels=PHONES, fxo_channels=LINES, **kw)
        self.now = 0.0
        self.rx = np.zeros((len(self.card.ports), BLOCK), np.uint8)
        self.tx = np.full_like(self.rx, 0xD5)

    def run(self, seconds: float) -> list:
        events = []
        for _ in range(int(round(seconds / 0.02))):
            self.kernel.tick(20)
            events += self.card.poll(self.now)
            self.card.read(self.rx)
            self.card.write(self.tx)
            self.now = round(self.now + 0.02, 6)
        return events

    def hooks(self, channo: int) -> list[int]:
        return [v for name, ch, v in self.kernel.calls if name == "DAHDI_HOOK" and ch == channo]


@pytest.fixture
def box(kernel):
    b = Box(kernel)
    yield b
    b.card.close()


def fail_ioctl(kernel, request: int, code: int, *, channo: int | None = None, value: int | None = None, times=1):
    """Make the next ``times`` calls of ``request`` (on ``channo``, with int ``value``) fail with ``code``."""
    real, left = kernel.ioctl, [times]

    def ioctl(fd, req, arg):
        chan = kernel._files[fd]["chan"]
        if req == request and left[0] and (channo is None or chan.channo == channo) and (
                value is None or kernel._int_in(arg) == value):
            left[0] -= 1
            raise OSError(code, os.strerror(code))
        return real(fd, req, arg)

    kernel.ioctl = ioctl


# --- opening -----------------------------------------------------------------------------------


def test_ports_are_trunks_then_phones_then_lines(box, kernel):
    assert isinstance(box.card, Card)
    assert box.card.ports == (
        PortInfo(0, PortKind.TRUNK, "E1 1/1", 1), PortInfo(1, PortKind.TRUNK, "E1 1/2", 1),
        PortInfo(2, PortKind.TRUNK, "E1 1/3", 1), PortInfo(3, PortKind.FXS, "FXS 1"),
        PortInfo(4, PortKind.FXS, "FXS 2"), PortInfo(5, PortKind.FXO, "FXO 1"), PortInfo(6, PortKind.FXO, "FXO 2"))
    assert [ch for name, ch, _ in kernel.calls if name == "DAHDI_SPECIFY"] == TRUNKS + PHONES + LINES
    assert {c.blocksize for c in kernel.channels.values() if c.owner is not None} == {160}
    box.card.close()
    box.card.close()  # idempotent
    assert kernel._files == {}


def test_from_config_takes_the_span_and_analog_sections(kernel):
    from drivers.dahdi.card import DahdiCard
    cfg = validate({"card": {"driver": "dahdi", "trunk_channels": 20},
                    "analog": [{"channel": 32}, {"channel": 38, "kind": "fxo"}, {"channel": 33}]})
    card = DahdiCard.from_config(cfg, kernel)
    names = [p.name for p in card.ports]
    assert names[:16] == [f"E1 1/{ts}" for ts in range(1, 16)] + ["E1 1/17"]  # the D-channel is no port
    assert names[20:] == ["FXS 1", "FXS 2", "FXO 1"]
    assert [ch for name, ch, _ in kernel.calls if name == "DAHDI_SPECIFY"][20:] == [32, 33, 38, 16]  # 16: PRI D-channel
    card.close()
    analog_only = validate({"card": {"driver": "dahdi"}, "span": {"enabled": False},
                            "analog": [{"channel": 1}, {"channel": 2}]})
    kernel.channels[1].sig = kernel.channels[2].sig = "fxoks"  # an analog-only card numbers its ports from 1
    card = DahdiCard.from_config(analog_only, kernel)
    assert [p.name for p in card.ports] == ["FXS 1", "FXS 2"] and card.span_alarms == {}
    card.close()


@pytest.mark.parametrize("plan, message", [
    ({"fxs_channels": [38]}, "DAHDI channel 38 is signalled 'fxsks', but the configuration makes it a fxs port, "
                             "which needs fxoks; apply the configuration (appliance dahdi-conf --apply)"),
    ({"fxo_channels": [32]}, "DAHDI channel 32 is signalled 'fxoks', but the configuration makes it a fxo port, "
                             "which needs fxsks"),
    ({"span_channels": [16]}, "DAHDI channel 16 is signalled 'hardhdlc', but the configuration makes it a trunk "
                              "port, which needs clear or cas"),
    ({"span_channels": [99]}, "DAHDI channel 99: DAHDI_SPECIFY 99 failed"),
    ({"fxs_channels": [32, 32]}, "DAHDI channel 32 is given twice"),
])
def test_a_wrong_channel_is_refused_and_nothing_stays_open(kernel, plan, message):
    from drivers.dahdi.card import DahdiCard
    with pytest.raises(DriverError) as exc:
        DahdiCard(kernel, span_channels=plan.get("span_channels", [1, 2]), fxs_channels=plan.get("fxs_channels", []),
                  fxo_channels=plan.get("fxo_channels", []))
    assert message in str(exc.value)
    assert kernel._files == {}


def test_without_dahdi_the_core_gets_one_clear_error(lib, monkeypatch):
    from drivers.dahdi import binding
    cfg = validate({"card": {"driver": "dahdi"}})
    if not os.path.exists("/dev/dahdi/channel"):
        with pytest.raises(DriverError, match=r"^card.driver is 'dahdi' but /dev/dahdi/channel does not exist: "
                                              r"the dahdi kernel module is not loaded"):
            make_card(cfg)
    monkeypatch.setattr(binding, "_dahdi", None)
    monkeypatch.setattr(binding, "_load_error", "")
    with pytest.raises(DriverError, match=r"^DAHDI binding not built"):
        make_card(cfg)


# --- FXS: phones ------------------------------------------------------------------------------


def test_ring_retries_ebusy_on_the_next_poll(box, kernel, lib):
    fail_ioctl(kernel, lib.DAHDI_HOOK, errno.EBUSY, channo=32, value=lib.DAHDI_RING)
    box.card.ring(P1, None)
    assert kernel.channels[32].txstate == "onhook"  # DAHDI said not now
    assert box.card.port_state(P1) == "ringing"
    assert box.run(0.02) == []
    assert kernel.channels[32].txstate == "ringon"  # asked again, and EINPROGRESS is success
    assert box.hooks(32) == [lib.DAHDI_RING]  # (the refused request never reached the fake's log)
    with pytest.raises(DriverError, match=r"cannot ring FXS 1 \(port 3\): the phone is already ringing"):
        box.card.ring(P1, None)
    for port, what in ((L1, "FXO 1 (port 5)"), (T1, "E1 1/1 (port 0)")):
        with pytest.raises(DriverError, match=re.escape(f"cannot ring {what}: only FXS ports ring a phone")):
            box.card.ring(port, "1")


def test_the_phone_answers_a_ring_flashes_dials_and_hangs_up(box, kernel, lib):
    box.card.ring(P1, "13912345678")
    box.run(1.5)
    kernel.phone_off_hook(32)
    assert box.run(0.02) == [OffHook(P1)]
    assert kernel.channels[32].txstate == "offhook"  # ring trip answered: the ringer stays off
    assert box.hooks(32) == [lib.DAHDI_RING, lib.DAHDI_OFFHOOK]
    kernel.phone_flash(32)
    kernel.queue_event(32, lib.DAHDI_EVENT_PULSEDIGIT | ord("5"))
    kernel.phone_on_hook(32)
    assert box.run(0.02) == [Flash(P1), Digit(P1, "5"), OnHook(P1)]
    assert kernel.channels[32].txstate == "onhook"
    assert box.run(6.0) == []  # no ring comes back
    kernel.phone_off_hook(33)  # an agent lifts the phone to dial: no hook change from us
    kernel.phone_on_hook(33)
    kernel.phone_on_hook(33)  # a repeated edge means nothing
    assert box.run(0.02) == [OffHook(P2), OnHook(P2)]
    assert box.hooks(33) == []


def test_stop_ring_turns_the_ringer_off_and_sends_no_caller_id(box, kernel, lib):
    box.card.ring(P1, "13912345678")
    box.run(0.5)
    box.card.stop_ring(P1)
    box.card.stop_ring(P1)  # no-op when not ringing
    assert kernel.channels[32].txstate == "onhook" and box.hooks(32) == [lib.DAHDI_RING, lib.DAHDI_RINGOFF]
    box.run(6.0)
    assert set(kernel.channels[32].sent) == {0xD5}
    with pytest.raises(DriverError, match="only FXS ports ring a phone"):
        box.card.stop_ring(L1)


def sent(kernel, channo) -> np.ndarray:
    return alaw_decode(np.frombuffer(bytes(kernel.channels[channo].sent), np.uint8))


@pytest.mark.parametrize("caller, number, reason", [("13912345678", "13912345678", None), (None, "", "O"),
                                                     ("anonymous", "", "O")])
def test_fsk_caller_id_goes_between_the_first_and_second_ring(box, kernel, caller, number, reason):
    box.card.ring(P1, caller)
    box.run(5.0)
    line = sent(kernel, 32)
    cid = decode_callerid(line)
    assert (cid.number, cid.number_absent_reason, cid.format) == (number, reason, "mdmf")
    loud = np.flatnonzero(np.abs(line.astype(np.int32)) > 100) / 8000
    assert 1.0 + 0.5 <= loud[0] <= 1.0 + 0.7  # the first ring ends at 1.0 s; FSK 0.6 s later
    assert loud[-1] <= 5.0 - 0.2  # and done before the second ring
    assert set(kernel.channels[33].sent) == {0xD5}  # the other phone heard nothing


def test_answering_during_caller_id_cuts_the_burst(box, kernel):
    box.card.ring(P1, "13912345678")
    box.run(1.7)  # the burst started at 1.6 s
    kernel.phone_off_hook(32)
    box.run(1.0)
    line = sent(kernel, 32)
    assert np.abs(line[int(1.62 * 8000):int(1.7 * 8000)]).max() > 1000
    assert np.abs(line[int(1.8 * 8000):]).max() < 100


# --- FXO: lines -------------------------------------------------------------------------------


@pytest.mark.parametrize("clear", ["loop", "polarity"])
def test_a_line_rings_is_answered_and_the_far_end_clears(box, kernel, lib, clear):
    kernel.line_polarity(38)  # on hook: nothing to tell
    kernel.line_ring(38, True)
    assert box.run(1.0) == [Ringing(L1, True)]
    kernel.line_ring(38, False)
    assert box.run(0.02) == [Ringing(L1, False)]
    box.card.answer(L1)
    box.card.answer(L1)  # already off hook
    assert kernel.channels[38].txstate == "offhook" and box.hooks(38) == [lib.DAHDI_OFFHOOK]
    kernel.line_ring(38, True)  # a late ring edge while off hook is no call
    assert box.run(0.5) == []
    if clear == "loop":
        kernel.line_disconnect(38)
        assert box.run(0.02) == [Released(L1, 16)]
        assert box.card.port_state(L1) == "cleared"
    else:
        kernel.line_polarity(38)
        assert box.run(0.02) == [Polarity(L1)]
    box.card.hangup(L1, 16)
    assert kernel.channels[38].txstate == "onhook" and box.card.port_state(L1) == "idle"


def test_a_caller_who_gives_up_leaves_the_line_idle(box, kernel):
    kernel.line_ring(38, True)
    box.run(1.0)
    kernel.line_ring(38, False)
    box.run(0.02)
    box.run(8.0)  # up to 9.0 s: 8 s since the last burst ended
    assert box.card.port_state(L1) == "ringing"
    assert box.run(0.02) == [] and box.card.port_state(L1) == "idle"


def test_outbound_dial_on_a_line(box, kernel, lib):
    box.card.dial(L1, "4008001234")
    assert kernel.channels[38].txstate == "offhook" and kernel.channels[38].dials == [("replace", "Tw4008001234")]
    assert box.card.port_state(L1) == "dialing"
    assert box.run(2.48) == []  # 0.5 s pause, ten digits of 0.2 s
    assert box.card.port_state(L1) == "dialing"
    assert box.run(0.02) == []  # DialComplete is the card's own business
    assert box.card.port_state(L1) == "dialled"
    kernel.line_polarity(38)  # the far end answered
    assert box.run(0.02) == [Polarity(L1)]
    box.card.hangup(L1)
    assert kernel.channels[38].txstate == "onhook"
    box.card.dial(L1, "110")
    box.run(0.3)
    box.card.hangup(L1)  # mid-dial: the hook change stops the digits
    assert kernel.channels[38].dial_buf == "" and box.run(1.0) == [] and box.card.port_state(L1) == "idle"


def test_dial_refusals_say_why(box, kernel):
    with pytest.raises(DriverError, match=r"cannot dial '12a': a number is one or more of 0-9 \* #"):
        box.card.dial(L1, "12a")
    assert kernel.channels[38].txstate == "onhook"
    kernel.line_ring(39, True)
    box.run(0.02)
    with pytest.raises(DriverError, match=r"cannot dial on FXO 2 \(port 6\): the line is ringing"):
        box.card.dial(6, "110")
    with pytest.raises(DriverError, match=r"cannot dial on FXS 1 \(port 3\): outbound calls go on FXO lines"):
        box.card.dial(P1, "110")
    stack = r"the card runs no signalling on its E1 span \(it was opened without pri or r2\)"
    with pytest.raises(DriverError, match=rf"cannot dial on E1 1/1 \(port 0\): {stack}"):
        box.card.dial(T1, "110")
    with pytest.raises(DriverError, match=rf"cannot answer on E1 1/1 \(port 0\): {stack}"):
        box.card.answer(T1)
    with pytest.raises(DriverError, match=r"port 9 does not exist; this card has ports 0\.\.6"):
        box.card.hangup(9)
    box.card.hangup(T1)  # no call can be on it: nothing to do (this card was opened without PRI or R2)
    box.card.bridge(T1, P1)
    box.card.bridge(T1, None)


# --- span alarms --------------------------------------------------------------------------------


def test_span_alarm_events_from_every_channel_collapse_into_one(box, kernel):
    box.run(0.02)
    kernel.set_span_alarms(1, {"RED", "LOS"})  # ALARM on each of the three open channels
    assert box.run(0.02) == [Alarm(1, frozenset({"RED", "LOS"}))]
    kernel.set_span_alarms(1, {"RED", "LOS"})
    kernel.set_span_alarms(2, {"RED"})  # the analog module's span: no trunk of ours
    assert box.run(1.5) == []
    kernel.set_span_alarms(1, ())
    assert box.run(0.02) == [Alarm(1, frozenset())]


def test_spanstat_is_read_once_a_second_and_catches_a_silent_change(box, kernel, lib):
    reads = []
    real = kernel.ioctl
    kernel.ioctl = lambda fd, req, arg: (req == lib.DAHDI_SPANSTAT and reads.append(box.now)) or real(fd, req, arg)
    assert box.run(0.1) == []
    kernel.spans[1].alarms = lib.DAHDI_ALARM_YELLOW  # no event: only the periodic read can see it
    assert box.run(0.9) == []
    assert box.run(0.02) == [Alarm(1, frozenset({"YELLOW"}))]
    box.run(1.08)
    assert reads == [0.0, 1.0, 2.0]
    assert box.card.next_deadline() == 3.0


def test_a_span_already_in_alarm_is_reported_at_the_first_poll(kernel):
    kernel.set_span_alarms(1, {"BLUE"})
    b = Box(kernel)
    assert b.run(0.02) == [Alarm(1, frozenset({"BLUE"}))]
    b.card.close()


# --- faults ---------------------------------------------------------------------------------------


def test_a_dead_channel_is_taken_out_of_service_and_the_others_go_on(box, kernel):
    dead_fd = kernel.channels[33].owner
    real_read = kernel.read
    kernel.read = lambda fd, n: (_ for _ in ()).throw(OSError(errno.EIO, "Input/output error")) \
        if fd == dead_fd else real_read(fd, n)
    kernel.hear(32, bytes(range(160)))
    kernel.hear(38, b"\x11" * 160)
    events = box.run(0.02)
    assert events == []  # found in read(), reported by the next poll
    assert (box.rx[P1].tobytes(), box.rx[L1].tobytes()) == (bytes(range(160)), b"\x11" * 160)
    assert set(box.rx[P2]) == {0xD5}
    faults = [e for e in box.run(2.0) if isinstance(e, PortFault)]
    assert faults == [PortFault(P2, False, "DAHDI channel 33: read failed: [Errno 5] Input/output error")]
    assert box.card.port_state(P2) == "down" and dead_fd not in kernel._files  # closed
    box.card.ring(P2, None)  # its fault is already reported: a command on it is dropped, not raised
    box.card.ring(P1, None)
    assert kernel.channels[32].txstate == "ringon"
    kernel.phone_off_hook(32)
    assert box.run(0.02) == [OffHook(P1)]


def test_a_kernel_error_in_a_command_faults_the_port_instead_of_raising(box, kernel, lib):
    fail_ioctl(kernel, lib.DAHDI_HOOK, errno.EIO, channo=38)
    box.card.answer(L1)
    assert box.run(0.02) == [PortFault(L1, False, "DAHDI channel 38: DAHDI_HOOK offhook failed: [Errno 5] "
                                                   "Input/output error")]
    kernel.line_ring(39, True)
    assert box.run(0.02) == [Ringing(6, True)]


def test_a_removed_span_faults_its_ports_once(box, kernel):
    kernel.unplug(1)
    reason = "the channel was removed (DAHDI_EVENT_REMOVED)"
    assert box.run(0.02) == [PortFault(p, False, reason) for p in (0, 1, 2)]
    assert box.run(2.0) == []  # no spanstat through a removed channel, no second fault
    kernel.phone_off_hook(32)
    assert box.run(0.02) == [OffHook(P1)]


def test_a_port_without_frames_is_reported_once_and_back_when_they_return(box, kernel):
    kernel.stall(32)
    events = box.run(0.48)
    assert events == []
    assert box.run(2.0) == [PortFault(P1, False, "no frames")]  # after 25 ticks, once
    kernel.phone_off_hook(32)  # signalling still works
    assert box.run(0.02) == [OffHook(P1)]
    kernel.stall(32, False)
    assert box.run(0.06) == [PortFault(P1, True)]


def test_an_unknown_event_code_is_logged_once_and_ignored(box, kernel, caplog):
    with caplog.at_level(logging.WARNING, logger="drivers.dahdi"):
        for ch in (32, 33, 32):
            kernel.queue_event(ch, 0x4D)
        kernel.phone_off_hook(32)
        assert box.run(0.04) == [OffHook(P1)]
    assert [r.getMessage() for r in caplog.records] == [
        "DAHDI event code 0x4D on port 3 is unknown to this driver; ignored (logged once per card)"]


# --- frames and waking the loop -------------------------------------------------------------


def test_frames_go_both_ways_per_port(box, kernel):
    kernel.hear(1, b"\x01" * 160)
    kernel.hear(39, b"\x02" * 160)
    box.tx[T1] = 0x33
    box.tx[6] = 0x44
    box.run(0.04)
    assert bytes(kernel.channels[1].sent[160:320]) == b"\x33" * 160
    assert bytes(kernel.channels[39].sent[160:320]) == b"\x44" * 160
    kernel.hear(1, b"\x05" * 160)
    box.run(0.02)
    assert box.rx[T1].tobytes() == b"\x05" * 160 and set(box.rx[6]) == {0xD5}


def test_attach_is_a_no_op_on_the_fake_kernel(box):
    class Loop:
        def add_reader(self, *a):
            raise AssertionError("the fake kernel has no descriptors to watch")
    assert box.card.attach(Loop()) is False


def test_attach_wakes_the_loop_once_per_edge_through_epoll(lib):
    from drivers.dahdi.fakekernel import FakeKernel

    class PipeKernel(FakeKernel):
        """The fake kernel with a real pipe behind each descriptor, so epoll can watch it."""

        pollable = True

        def __init__(self):
            super().__init__()
            self.writers = {}

        def open(self, path, flags):
            r, self.writers[r] = os.pipe()
            self._next_fd = r
            return super().open(path, flags)

        def close(self, fd):
            super().close(fd)
            os.close(fd)
            os.close(self.writers.pop(fd))

    kernel = PipeKernel.appliance()
    b = Box(kernel)
    wakes = []

    async def main():
        loop = asyncio.get_running_loop()
        assert b.card.attach(loop, lambda: wakes.append(loop.time()))
        await asyncio.sleep(0.05)
        assert wakes == []
        os.write(kernel.writers[kernel.channels[33].owner], b"x")  # readable, as a frame or event would make it
        await asyncio.sleep(0.1)
        assert len(wakes) == 1  # edge-triggered: no spinning until the tick reads it
        b.card.detach()

    asyncio.run(main())
    b.card.close()
    assert kernel.writers == {}


def test_every_voice_channel_gets_the_echo_canceller_unless_configured_off(kernel):
    Box(kernel)
    turned_on = [(ch, taps) for name, ch, taps in kernel.calls if name == "DAHDI_ECHOCANCEL_PARAMS"]
    assert turned_on == [(ch, 128) for ch in TRUNKS + PHONES + LINES]
    from drivers.dahdi.fakekernel import FakeKernel
    quiet = FakeKernel.appliance()
    Box(quiet, echo_taps=0)
    assert not [c for c in quiet.calls if c[0] == "DAHDI_ECHOCANCEL_PARAMS"]


def test_a_port_out_of_service_after_a_kernel_error_comes_back_when_its_channel_opens_again(box, kernel, lib):
    fail_ioctl(kernel, lib.DAHDI_HOOK, errno.EIO, channo=38)
    box.card.answer(L1)
    assert [e for e in box.run(0.02) if isinstance(e, PortFault)] == [
        PortFault(L1, False, "DAHDI channel 38: DAHDI_HOOK offhook failed: [Errno 5] Input/output error")]
    assert box.run(4.9) == []  # retried every 5 s, not every tick
    assert box.run(0.2) == [PortFault(L1, True)]
    assert box.card.port_state(L1) == "idle"
    kernel.line_ring(38, True)
    assert box.run(0.02) == [Ringing(L1, True)]


def test_a_removed_span_stays_out_of_service_without_more_events(box, kernel):
    kernel.unplug(1)
    box.run(0.02)
    assert [e for e in box.run(12.0) if isinstance(e, PortFault)] == []  # reopening fails quietly
