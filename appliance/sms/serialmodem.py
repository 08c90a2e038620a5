"""The GSM modem on a serial port: moves bytes between pyserial and :class:`AtModem`.

All AT logic is in :mod:`appliance.sms.atmodem`; this module only reads the clock,
reads and writes the port, and wakes the dialogue at its deadlines.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import serial

from appliance.errors import DriverError
from appliance.sms.atmodem import AtModem, Event

_IDLE_WAIT = 0.5  # longest read wait when no command is pending, so stop() is noticed


class SerialModem:
    """A USB GSM modem on ``port`` (e.g. ``/dev/ttyUSB2``) driven by an :class:`AtModem`.

    Parameters
    ----------
    port : str
        Serial device name.
    baudrate : int, optional
        Line speed; USB modems ignore it.
    clock : callable, optional
        Monotonic seconds; the dialogue's deadlines are on this clock.
    **kwargs
        Passed to :class:`AtModem`.
    """

    def __init__(self, port: str, baudrate: int = 115200, *,
                 clock: Callable[[], float] = time.monotonic, **kwargs) -> None:
        try:
            self._serial = serial.Serial(port, baudrate, timeout=0)
        except (serial.SerialException, OSError) as exc:
            raise DriverError(f"cannot open GSM modem port {port}: {exc}") from exc
        self.port, self.clock, self.at = port, clock, AtModem(**kwargs)
        self._running = True
        self._lock = threading.Lock()  # send() may come from another thread than run()

    def start(self) -> list[Event]:
        """Send the init sequence; :class:`Ready` or :class:`ModemError` comes from :meth:`step`."""
        with self._lock:
            return self._flush(self.at.start(self.clock()))

    def send(self, number: str, text: str, msg_id: str) -> list[Event]:
        """Queue a message; its Sent/SendFailed events come from :meth:`step`."""
        with self._lock:
            return self._flush(self.at.send(number, text, msg_id, self.clock()))

    def step(self, max_wait: float = _IDLE_WAIT) -> list[Event]:
        """Wait up to ``max_wait`` (less if a command times out sooner) for bytes; return events."""
        now = self.clock()
        deadline = self.at.next_deadline()
        wait = max_wait if deadline is None else max(0.0, min(max_wait, deadline - now))
        try:
            self._serial.timeout = wait
            data = self._serial.read(1)  # blocks until a byte or the wait is over
            data += self._serial.read(self._serial.in_waiting)
        except (serial.SerialException, OSError) as exc:
            raise DriverError(f"GSM modem port {self.port} failed: {exc}") from exc
        with self._lock:
            now = self.clock()
            events = self.at.feed(data, now) if data else []
            return self._flush(events + self.at.poll(now))

    def run(self, on_event: Callable[[Event], None]) -> None:
        """Read loop for a thread of the real box: until :meth:`stop`."""
        while self._running:
            for event in self.step():
                on_event(event)

    def stop(self) -> None:
        """Make :meth:`run` return within ``_IDLE_WAIT`` seconds."""
        self._running = False

    def close(self) -> None:
        self._running = False
        self._serial.close()

    def _flush(self, events: list[Event]) -> list[Event]:
        out = self.at.outgoing()
        if out:
            try:
                self._serial.write(out)
            except (serial.SerialException, OSError) as exc:
                raise DriverError(f"GSM modem port {self.port} failed: {exc}") from exc
        return events
