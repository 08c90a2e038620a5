"""The DAHDI channel layer against the fake kernel (and the real system calls where they can run here)."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from appliance.errors import DriverError
from drivers.base import Alarm, Digit, Flash, OffHook, OnHook, Polarity, PortFault, PortKind, Released, Ringing
from drivers.dahdi.channel import DahdiChannel, HookResult
from drivers.dahdi.events import DialComplete, EventDecoder, HookComplete, Ringer
from drivers.dahdi.kernel import OsKernel
from drivers.dahdi.events import alarm_names, decode_alarms
from tests.tools import require_dahdi_binding

PHONE, PHONE2, LINE, BCHAN, DCHAN = 32, 33, 38, 1, 16  # in FakeKernel.appliance()


def open_chan(kernel, channo, port=None, **kw) -> DahdiChannel:
    return DahdiChannel(kernel, channo, port=port if port is not None else channo - 32, **kw)


# --- opening --------------------------------------------------------------------------------


def test_open_runs_specify_blocksize_alaw_params_in_order(kernel, lib):
    flags = []
    real_open = kernel.open
    kernel.open = lambda path, f: flags.append((path, f)) or real_open(path, f)
    chan = open_chan(kernel, PHONE)
    assert flags == [("/dev/dahdi/channel", os.O_RDWR | os.O_NONBLOCK)]
    assert kernel.calls == [("DAHDI_SPECIFY", PHONE, PHONE), ("DAHDI_SET_BLOCKSIZE", PHONE, 160),
                            ("DAHDI_SETLAW", PHONE, lib.DAHDI_LAW_ALAW), ("DAHDI_GET_PARAMS", PHONE, 0)]
    p = chan.params
    assert (p.channo, p.span, p.chanpos, p.signalling, p.kind) == (PHONE, 2, 1, "fxoks", PortKind.FXS)
    assert (p.name, p.law, p.rx_offhook, p.alarms) == ("FAKE-ANALOG/0/0", "alaw", False, frozenset())
    assert kernel.channels[PHONE].blocksize == 160


@pytest.mark.parametrize("channo, sig, kind, span, chanpos", [
    (LINE, "fxsks", PortKind.FXO, 2, 7),
    (BCHAN, "clear", PortKind.TRUNK, 1, 1),
    (DCHAN, "hardhdlc", PortKind.TRUNK, 1, 16),
])
def test_params_name_the_signalling_and_port_kind(kernel, channo, sig, kind, span, chanpos):
    p = open_chan(kernel, channo).params
    assert (p.signalling, p.kind, p.span, p.chanpos) == (sig, kind, span, chanpos)


def test_a_channel_opens_once_and_a_failed_open_leaks_no_descriptor(kernel):
    first = open_chan(kernel, PHONE)
    with pytest.raises(DriverError, match=r"DAHDI channel 32: DAHDI_SPECIFY 32 failed: .*Device or resource busy"):
        open_chan(kernel, PHONE)
    with pytest.raises(DriverError, match=r"DAHDI channel 99: DAHDI_SPECIFY 99 failed: .*Invalid argument"):
        open_chan(kernel, 99)
    assert list(kernel._files) == [first.fd]
    first.close()
    with open_chan(kernel, PHONE) as again:  # the close released it
        assert again.params.channo == PHONE
    assert kernel._files == {}


def test_without_dev_dahdi_the_real_kernel_says_the_module_is_not_loaded(lib):
    if os.path.exists("/dev/dahdi/channel"):
        pytest.skip("this machine has DAHDI")
    with pytest.raises(DriverError, match=r"cannot open /dev/dahdi/channel for DAHDI channel 1: .*"
                                          r"No such file.*is the dahdi kernel module loaded\?"):
        DahdiChannel(OsKernel(), 1)


def test_real_ioctl_passes_the_ffi_buffer_to_the_kernel(lib):
    # /dev/null knows no DAHDI request: the call reaches the kernel, which answers ENOTTY
    ffi = require_dahdi_binding()[0]
    k, value = OsKernel(), ffi.new("int *", 7)
    fd = k.open("/dev/null", os.O_RDWR)
    try:
        with pytest.raises(OSError) as exc:
            k.ioctl(fd, lib.DAHDI_GETEVENT, ffi.buffer(value))
        assert exc.value.errno == errno.ENOTTY
        assert value[0] == 7
    finally:
        k.close(fd)


def test_the_fake_refuses_int_arguments_like_the_kernel(kernel, lib):
    chan = open_chan(kernel, PHONE)
    with pytest.raises(OSError) as exc:
        kernel.ioctl(chan.fd, lib.DAHDI_HOOK, lib.DAHDI_RING)
    assert exc.value.errno == errno.EFAULT


# --- hook -----------------------------------------------------------------------------------


def test_ringing_a_phone_port_is_in_progress_then_rings_in_cadence(kernel):
    chan = open_chan(kernel, PHONE)
    assert chan.hook("ring") is HookResult.IN_PROGRESS  # EINPROGRESS is success
    assert chan.hook("ring") is HookResult.BUSY  # already ringing: EBUSY, try again later
    kernel.tick(980)
    assert chan.events() == []
    kernel.tick(20)  # 1 s on ...
    assert chan.events() == [Ringer(0, False)]
    kernel.tick(4000)  # ... 4 s off
    assert chan.events() == [Ringer(0, True)]
    kernel.phone_off_hook(PHONE)
    assert chan.get_event() == OffHook(0)
    assert chan.hook("offhook") is HookResult.DONE
    assert kernel.channels[PHONE].txstate == "offhook"


def test_ring_cadence_is_configurable(kernel):
    chan = open_chan(kernel, PHONE)
    chan.set_ring_cadence([400, 200, 400, 2000])
    assert kernel.channels[PHONE].cadence == (400, 200, 400, 2000)
    chan.hook("ring")
    kernel.tick(400)
    kernel.tick(200)
    assert chan.events() == [Ringer(0, False), Ringer(0, True)]
    for bad in ([], [1000], [1000, 0], [100, 100] * 9):
        with pytest.raises(DriverError, match="ring cadence"):
            chan.set_ring_cadence(bad)


def test_flash_needs_off_hook_and_completes_later(kernel):
    chan = open_chan(kernel, LINE, port=7)
    assert chan.hook("flash") is HookResult.BUSY
    assert chan.hook("offhook") is HookResult.DONE
    assert chan.hook("flash") is HookResult.IN_PROGRESS
    kernel.tick(740)
    assert chan.get_event() is None
    kernel.tick(20)
    assert chan.get_event() == HookComplete(7)
    assert kernel.channels[LINE].txstate == "offhook"


def test_hook_retries_eintr_and_reports_other_errors(kernel, lib):
    chan = open_chan(kernel, PHONE)
    real_ioctl, interrupted = kernel.ioctl, []

    def flaky(fd, request, arg):
        if request == lib.DAHDI_HOOK and not interrupted:
            interrupted.append(1)
            raise OSError(errno.EINTR, "Interrupted system call")
        return real_ioctl(fd, request, arg)

    kernel.ioctl = flaky
    assert chan.hook("offhook") is HookResult.DONE
    assert interrupted and kernel.channels[PHONE].txstate == "offhook"
    with pytest.raises(DriverError, match="DAHDI channel 1: DAHDI_HOOK ring failed: .*Invalid argument"):
        open_chan(kernel, BCHAN).hook("ring")  # a B-channel has no hook
    with pytest.raises(DriverError, match=r"hook operation 'answer' unknown; expected one of \['flash'"):
        chan.hook("answer")


# --- events ---------------------------------------------------------------------------------


def test_phone_port_events(kernel, lib):
    chan = open_chan(kernel, PHONE2)  # port 1
    kernel.phone_off_hook(PHONE2)
    kernel.phone_flash(PHONE2)
    kernel.queue_event(PHONE2, lib.DAHDI_EVENT_PULSEDIGIT | ord("7"))
    kernel.queue_event(PHONE2, lib.DAHDI_EVENT_DTMFDOWN | ord("#"))  # the release reports the key
    kernel.queue_event(PHONE2, lib.DAHDI_EVENT_DTMFUP | ord("#"))
    kernel.queue_event(PHONE2, lib.DAHDI_EVENT_RINGBEGIN)  # means nothing on a phone port
    kernel.phone_on_hook(PHONE2)
    assert chan.events() == [OffHook(1), Flash(1), Digit(1, "7"), Digit(1, "#"), OnHook(1)]
    assert chan.get_event() is None


def test_line_port_events(kernel):
    chan = open_chan(kernel, LINE, port=7)
    kernel.line_ring(LINE, True)
    kernel.line_ring(LINE, False)
    kernel.line_polarity(LINE)
    assert chan.events() == [Ringing(7, True), Ringing(7, False), Polarity(7)]
    kernel.line_disconnect(LINE)  # on hook: DAHDI does not report loop current
    assert chan.events() == []
    chan.hook("offhook")
    kernel.line_disconnect(LINE)
    assert chan.events() == [Released(7, 16)]


def test_dial_plays_digits_and_reports_completion(kernel):
    chan = open_chan(kernel, LINE, port=7)
    chan.hook("offhook")
    chan.dial("T4008w1")  # 5 digits of 200 ms and a 500 ms pause
    assert kernel.channels[LINE].dials == [("replace", "T4008w1")]
    assert chan.dialing()
    kernel.tick(1480)
    assert chan.get_event() is None
    kernel.tick(20)
    assert chan.get_event() == DialComplete(7)
    assert not chan.dialing()
    chan.dial("12")
    chan.dial("3", append=True)
    chan.cancel_dial()
    assert kernel.channels[LINE].dials[1:] == [("replace", "12"), ("append", "3"), ("cancel", "")]
    assert not chan.dialing()


@pytest.mark.parametrize("digits, why", [("", "invalid"), ("123x5", "got 'x'"), ("1" * 255, "expected 1..254")])
def test_bad_dial_strings_are_refused_before_the_kernel(kernel, digits, why):
    chan = open_chan(kernel, LINE)
    with pytest.raises(DriverError, match=why):
        chan.dial(digits)
    assert kernel.channels[LINE].dials == []


def test_an_unknown_event_code_is_logged_once_per_card_and_ignored(kernel, lib, caplog):
    decoder = EventDecoder(lib)
    a, b = open_chan(kernel, PHONE, decoder=decoder), open_chan(kernel, PHONE2, decoder=decoder)
    for channo in (PHONE, PHONE2, PHONE):
        kernel.queue_event(channo, 0x4D)
        kernel.phone_off_hook(channo)
    with caplog.at_level(logging.WARNING, logger="drivers.dahdi.events"):
        assert a.events() == [OffHook(0), OffHook(0)]
        assert b.events() == [OffHook(1)]
        kernel.queue_event(PHONE, lib.DAHDI_EVENT_DTMFUP | ord("x"))  # not a DTMF key
        assert a.events() == []
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "DAHDI event code 0x4D on port 0 is unknown to this driver; ignored (logged once per card)",
        "DAHDI event code 0x40078 on port 0 is unknown to this driver; ignored (logged once per card)"]


def test_removed_channel_reports_a_port_fault_then_fails(kernel):
    chan = open_chan(kernel, BCHAN, port=1)
    kernel.unplug(1)
    assert chan.get_event() == PortFault(1, False, "the channel was removed (DAHDI_EVENT_REMOVED)")
    with pytest.raises(DriverError, match="DAHDI channel 1: read failed: .*No such device"):
        chan.read_frame()


# --- frames and ELAST ------------------------------------------------------------------------


def test_frames_in_and_out(kernel):
    chan = open_chan(kernel, PHONE)
    assert chan.read_frame() is None  # EAGAIN: nothing received yet
    heard = bytes(range(160))
    kernel.hear(PHONE, heard)
    kernel.tick()
    assert chan.read_frame() == heard
    kernel.tick()
    assert chan.read_frame() == b"\xd5" * 160  # the line was silent
    said = bytes(i * 7 % 256 for i in range(160))
    assert bytes(kernel.channels[PHONE].sent) == b"\xd5" * 320  # nothing written yet: silence
    assert chan.write_frame(said)
    assert chan.write_frame(said)
    assert not chan.write_frame(said)  # two buffers full: EAGAIN
    kernel.tick()
    kernel.tick()
    kernel.tick()
    assert bytes(kernel.channels[PHONE].sent[320:]) == said + said + b"\xd5" * 160


def test_elast_on_read_fetches_the_events_keeps_them_and_returns_the_frame(kernel, lib):
    chan = open_chan(kernel, PHONE)
    kernel.hear(PHONE, b"\x01" * 160)
    kernel.tick()
    kernel.phone_off_hook(PHONE)
    kernel.phone_flash(PHONE)
    with pytest.raises(OSError) as exc:  # what the kernel does while events wait
        kernel.read(chan.fd, 160)
    assert exc.value.errno == lib.ELAST == 500
    assert chan.read_frame() == b"\x01" * 160
    kernel.phone_on_hook(PHONE)
    assert chan.write_frame(b"\x02" * 160)
    assert chan.events() == [OffHook(0), Flash(0), OnHook(0)]  # none lost, in order


def test_elast_that_never_clears_skips_the_frame(kernel, lib):
    chan = open_chan(kernel, PHONE)
    kernel.read = lambda fd, n: (_ for _ in ()).throw(OSError(lib.ELAST, "event pending"))
    assert chan.read_frame() is None


def test_flush_drops_audio_and_optionally_events(kernel):
    chan = open_chan(kernel, PHONE)
    kernel.tick()
    kernel.phone_off_hook(PHONE)
    chan.flush()
    assert chan.read_frame() is None  # the event was fetched while retrying; the audio is gone
    assert chan.get_event() == OffHook(0)
    kernel.phone_on_hook(PHONE)
    chan.flush(events=True)
    assert chan.get_event() is None


# --- spans and alarms ------------------------------------------------------------------------


def test_span_alarms_arrive_as_alarm_events_with_their_names(kernel):
    b1, phone = open_chan(kernel, BCHAN, port=0), open_chan(kernel, PHONE)
    kernel.set_span_alarms(1, {"RED", "LOS"})
    assert b1.get_event() == Alarm(1, frozenset({"RED", "LOS"}))
    assert phone.get_event() is None  # another span
    assert b1.spanstat() == b1.spanstat(1) == phone.spanstat(1) == frozenset({"RED", "LOS"})
    kernel.set_span_alarms(1, {"YELLOW"})
    assert b1.events() == [Alarm(1, frozenset({"YELLOW"}))]
    kernel.set_span_alarms(1, {"BLUE", "RECOVER"})
    assert b1.events() == [Alarm(1, frozenset({"BLUE", "RECOVER"}))]
    kernel.set_span_alarms(1, ())
    assert b1.events() == [Alarm(1, frozenset())]
    assert b1.spanstat() == frozenset()
    # The event does not say which alarms: each one reports what the span has when it is read,
    # so a late reader sees the latest state (and never a state the span has left).
    kernel.set_span_alarms(1, {"RED"})
    kernel.set_span_alarms(1, {"YELLOW"})
    assert b1.events() == [Alarm(1, frozenset({"YELLOW"}))] * 2


def test_span_info_and_unknown_span(kernel):
    chan = open_chan(kernel, PHONE)
    kernel.spans[1].counters.update(crc4count=3, bpvcount=2)
    kernel.spans[1].syncsrc = 1
    info = chan.span_info(1)
    assert (info.span, info.name, info.description, info.spantype, info.channels) == (
        1, "FAKE-E1/0/1", "fake E1 span, PRI", "E1", 31)
    assert (info.crc4_errors, info.bpv_count, info.sync_source, info.alarms) == (3, 2, 1, frozenset())
    assert chan.span_info().span == 2
    with pytest.raises(DriverError, match="DAHDI_SPANSTAT 9 failed: .*Invalid argument"):
        chan.spanstat(9)


def test_alarm_bits_decode_to_names(lib):
    table = alarm_names(lib)
    assert decode_alarms(0, table) == frozenset()
    red_los_lfa = lib.DAHDI_ALARM_RED | lib.DAHDI_ALARM_LOS | lib.DAHDI_ALARM_LFA
    assert decode_alarms(red_los_lfa, table) == {"RED", "LOS", "LFA"}
    assert decode_alarms(lib.DAHDI_ALARM_YELLOW | 1 << 12, table) == {"YELLOW", "0x1000"}  # unknown bit kept


def test_params_report_channel_alarms(kernel):
    kernel.set_span_alarms(2, {"RED"})
    assert open_chan(kernel, PHONE).params.alarms == frozenset({"RED"})


# --- other settings --------------------------------------------------------------------------


def test_tone_zone_echo_canceller_and_buffers(kernel):
    chan = open_chan(kernel, PHONE)
    chan.set_tone_zone(5)
    chan.set_echo_canceller(128, {"aggressive": 1, "nlp_type": 3})
    chan.set_buffers(4)
    fake = kernel.channels[PHONE]
    assert (fake.tonezone, fake.echocan, fake.numbufs, fake.blocksize) == (
        5, (128, {"aggressive": 1, "nlp_type": 3}), 4, 160)
    chan.set_echo_canceller(0)
    assert fake.echocan is None
    with pytest.raises(DriverError, match="at most 8 parameters"):
        chan.set_echo_canceller(128, {f"p{i}": i for i in range(9)})
    with pytest.raises(DriverError, match="parameter name 'a_name_far_too_long'"):
        chan.set_echo_canceller(128, {"a_name_far_too_long": 1})
    with pytest.raises(DriverError, match="DAHDI_SETTONEZONE 999 failed"):
        chan.set_tone_zone(999)
    with pytest.raises(DriverError, match=r"numbufs 1 out of range; expected 2\.\.32"):
        chan.set_buffers(1)
