"""A simulated GSM modem on a pseudo-terminal, for the tests of the AT dialogue.

The code under test opens :attr:`SimModem.port` with pyserial as it would a USB
modem.  The sim answers AT commands from a thread, decodes each SMS-SUBMIT with
its own small parser (independent of ``appliance.sms.pdu``), and builds the
SMS-DELIVER and SMS-STATUS-REPORT PDUs it sends back.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

SMSC = "0891683108200505F0"  # +8613800250500, as real modems prefix stored PDUs


@dataclass
class Submit:
    """One SMS-SUBMIT as the sim read it."""

    mr: int
    number: str
    pid: int
    dcs: int
    srr: bool
    vp: bytes
    concat: tuple[int, int, int] | None  # (ref, total, seq)
    text: str


def _bcd_number(data: bytes, digits: int) -> str:
    nibbles = [n for b in data for n in (b & 0x0F, b >> 4)][:digits]
    return "".join(str(n) for n in nibbles)


def _gsm7_unpack(data: bytes, count: int, skip_bits: int) -> str:
    bits = int.from_bytes(data, "little")
    chars = [(bits >> (skip_bits + 7 * i)) & 0x7F for i in range(count)]
    return "".join("@" if c == 0 else chr(c) for c in chars)  # enough for ASCII letters/digits


def parse_submit(hexpdu: str) -> Submit:
    """Parse ``00`` + SMS-SUBMIT hex as a modem would (TS 23.040 9.2.2.2)."""
    b = bytes.fromhex(hexpdu)
    i = 1 + b[0]  # skip the SMSC
    first, mr = b[i], b[i + 1]
    assert first & 0x03 == 0x01, f"not a SUBMIT: {first:#x}"
    ndigits, toa = b[i + 2], b[i + 3]
    i += 4
    number = ("+" if toa == 0x91 else "") + _bcd_number(b[i:i + (ndigits + 1) // 2], ndigits)
    i += (ndigits + 1) // 2
    pid, dcs = b[i], b[i + 1]
    i += 2
    vpf = (first >> 3) & 3
    vp = b[i:i + {0: 0, 2: 1}.get(vpf, 7)]
    i += len(vp)
    udl, ud = b[i], b[i + 1:]
    concat, udh_len = None, 0
    if first & 0x40:
        udh_len = 1 + ud[0]
        if ud[1] == 0x00 and ud[2] == 3:
            concat = (ud[3], ud[4], ud[5])
    if dcs == 0x08:
        assert len(ud) == udl, "UCS2 UDL must count octets"
        text = ud[udh_len:].decode("utf-16-be")
    else:
        skip = (udh_len * 8 + 6) // 7 if udh_len else 0
        text = _gsm7_unpack(ud, udl - skip, skip * 7)
    return Submit(mr, number, pid, dcs, bool(first & 0x20), vp, concat, text)


def _semi(digits: str) -> bytes:
    digits += "F" * (len(digits) % 2)
    return bytes.fromhex("".join(digits[k + 1] + digits[k] for k in range(0, len(digits), 2)))


def _address(number: str) -> bytes:
    digits = number.lstrip("+")
    return bytes([len(digits), 0x91 if number.startswith("+") else 0x81]) + _semi(digits)


def _stamp(t: datetime) -> bytes:
    quarters = int(t.utcoffset().total_seconds() // 900)
    return _semi(t.strftime("%y%m%d%H%M%S") + f"{quarters:02d}")


def deliver_pdus(sender: str, text: str, when: datetime, ref: int = 7) -> list[str]:
    """SMS-DELIVER hex PDUs (with SMSC) carrying ``text`` in UCS2, split in 67-unit parts."""
    units = [text[k:k + 67] for k in range(0, len(text), 67)] if len(text) > 70 else [text]
    out = []
    for seq, part in enumerate(units, 1):
        udh = bytes([5, 0, 3, ref, len(units), seq]) if len(units) > 1 else b""
        ud = udh + part.encode("utf-16-be")
        first = 0x04 | (0x40 if udh else 0)  # TP-MMS: no more messages waiting
        tpdu = bytes([first]) + _address(sender) + bytes([0, 0x08]) + _stamp(when) + bytes([len(ud)]) + ud
        out.append(SMSC + tpdu.hex().upper())
    return out


def status_report_pdu(mr: int, recipient: str, status: int, when: datetime) -> tuple[int, str]:
    """An SMS-STATUS-REPORT as ``(TPDU length, hex with SMSC)``, for a ``+CDS`` line."""
    tpdu = bytes([0x06, mr]) + _address(recipient) + _stamp(when) + _stamp(when) + bytes([status])
    return len(tpdu), SMSC + tpdu.hex().upper()


class SimModem:
    """A modem behind a pty, answering in a thread.

    Attributes set by the test before the dialogue starts: ``cpin`` ("READY",
    "SIM PIN" or "NOSIM"), ``creg`` (registration status), ``csq`` (rssi),
    ``cms_on_submit`` (submit number, 1-based, -> +CMS error code),
    ``silent`` (commands never answered), ``mute`` (nothing answered at all: a
    tty of the modem that is not its AT port), ``hold_submits`` (a PDU is taken
    but never answered, as if the network were slow).  ``commands`` and
    ``submits`` record what arrived; ``store`` is the SIM message store.
    :meth:`unplug` closes the pty's master, as pulling the USB plug hangs up the tty.
    """

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave  # kept open so the pty lives while pyserial reopens it
        self.cpin, self.creg, self.csq = "READY", 1, 20
        self.cms_on_submit: dict[int, int] = {}
        self.silent: set[str] = set()
        self.mute = False
        self.hold_submits = False
        self.hold_prompt = False  # AT+CMGS never answered with its "> " prompt: no PDU can follow
        self.unplugged = False
        self.commands: list[str] = []
        self.submits: list[Submit] = []
        self.store: dict[int, str] = {}
        self.deleted: list[int] = []
        self.errors: list[str] = []
        self.echo = True
        self._mr = 40
        self._lock = threading.Lock()
        self._rpipe, self._wpipe = os.pipe()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    # --- the test's side --------------------------------------------------------------

    def inject(self, sender: str, text: str, ref: int = 7) -> list[int]:
        """Store an inbound message (several parts if long) and announce each with +CMTI."""
        when = datetime(2026, 11, 28, 11, 20, 5, tzinfo=timezone(timedelta(hours=8)))
        indexes = []
        with self._lock:
            for pdu in deliver_pdus(sender, text, when, ref):
                index = max(self.store, default=0) + 1
                self.store[index] = pdu
                indexes.append(index)
        for index in indexes:
            self._write(f'\r\n+CMTI: "SM",{index}\r\n')
        return indexes

    def report(self, mr: int, status: int = 0x00) -> None:
        """Emit a +CDS status report for the submit with TP-MR ``mr``."""
        number = next((s.number for s in self.submits if s.mr == mr), "+0")
        length, pdu = status_report_pdu(mr, number, status, datetime(2026, 11, 28, 11, 21, tzinfo=timezone.utc))
        self._write(f"\r\n+CDS: {length}\r\n{pdu}\r\n")

    def unplug(self) -> None:
        """Stop answering and close the master: the other end's reads and writes fail with EIO."""
        if not self.unplugged:
            self.unplugged = True
            os.write(self._wpipe, b"x")
            self._thread.join(timeout=5)
            os.close(self.master)

    def close(self) -> None:
        if not self.unplugged:
            os.write(self._wpipe, b"x")
            self._thread.join(timeout=5)
            os.close(self.master)
        for fd in (self._slave, self._rpipe, self._wpipe):
            os.close(fd)

    # --- the modem's side -------------------------------------------------------------

    def _write(self, text: str) -> None:
        os.write(self.master, text.encode())

    def _serve(self) -> None:
        buf, pdu_len = bytearray(), None
        while True:
            ready, _, _ = select.select([self.master, self._rpipe], [], [])
            if self._rpipe in ready:
                return
            try:
                buf += os.read(self.master, 4096)
            except OSError:
                return
            while True:
                if pdu_len is not None:  # PDU entry: up to Ctrl-Z (send) or ESC (cancel)
                    end = next((k for k, c in enumerate(buf) if c in (0x1A, 0x1B)), -1)
                    if end < 0:
                        break
                    body, cancel = bytes(buf[:end]).decode().strip(), buf[end] == 0x1B
                    del buf[:end + 1]
                    if not cancel:
                        self._submit(body, pdu_len)
                    pdu_len = None
                    continue
                end = buf.find(b"\r")
                if end < 0:
                    break
                line = bytes(buf[:end]).decode().strip()
                del buf[:end + 1]
                if line:
                    pdu_len = self._command(line)

    def _command(self, cmd: str) -> int | None:
        """Answer one command line; return the TPDU length when a PDU is to follow."""
        self.commands.append(cmd)
        if self.mute:
            return None
        if self.echo:
            self._write(cmd + "\r")
        if cmd in self.silent:
            return None
        ok = "\r\nOK\r\n"
        if cmd == "ATE0":
            self.echo = False
            return self._write(ok)
        if cmd == "AT+CPIN?":
            if self.cpin == "NOSIM":
                return self._write("\r\n+CME ERROR: 10\r\n")
            return self._write(f"\r\n+CPIN: {self.cpin}\r\n" + ok)
        if cmd == "AT+CSQ":
            return self._write(f"\r\n+CSQ: {self.csq},99\r\n" + ok)
        if cmd == "AT+CREG?":
            return self._write(f"\r\n+CREG: 0,{self.creg}\r\n" + ok)
        if cmd.startswith("AT+CMGS="):
            if self.hold_prompt:
                return None
            self._write("\r\n> ")
            return int(cmd[8:])
        if cmd.startswith("AT+CMGR="):
            with self._lock:
                pdu = self.store.get(int(cmd[8:]))
            if pdu is None:
                return self._write("\r\n+CMS ERROR: 321\r\n")
            return self._write(f"\r\n+CMGR: 0,,{len(pdu) // 2 - 9}\r\n{pdu}\r\n" + ok)
        if cmd.startswith("AT+CMGD="):
            with self._lock:
                self.store.pop(int(cmd[8:]), None)
            self.deleted.append(int(cmd[8:]))
            return self._write(ok)
        if cmd in ("AT", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,1,0", "AT+CSMS=1", "AT+CNMA"):
            return self._write(ok)
        return self._write("\r\nERROR\r\n")

    def _submit(self, body: str, length: int) -> None:
        try:
            sub = parse_submit(body)
            assert len(body) // 2 - 1 == length, "AT+CMGS length must count the TPDU only"
        except Exception as exc:  # a test reads ``errors``: an exception here would kill the thread
            self.errors.append(f"bad submit {body[:40]}: {exc!r}")
            self._write("\r\n+CMS ERROR: 304\r\n")
            return
        self.submits.append(sub)
        if self.hold_submits:
            return
        code = self.cms_on_submit.get(len(self.submits))
        if code is not None:
            self._write(f"\r\n+CMS ERROR: {code}\r\n")
            return
        self._mr = (self._mr + 1) % 256
        sub.mr = self._mr  # the network's TP-MR, as real modems report it
        self._write(f"\r\n+CMGS: {self._mr}\r\n\r\nOK\r\n")
