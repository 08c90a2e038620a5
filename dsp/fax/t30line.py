"""The audio side of a T.30 session: what goes out block by block, and V.21 frames and page-modem bits coming in.

``Sender`` is a queue of signal sources (silence, tones, a V.21
transmission, a page-modem burst) drained 160 samples at a time; it
reports when the queue has run dry so the protocol can start its timers.
``Listener`` runs the V.21 receiver and HDLC deframer all the time and the
page-modem receiver when the protocol expects one, and hands back frames,
page bits and the page modem's events. Which page modem serves which rate
is looked up in :data:`MODEMS` lazily, so a session only imports what it uses.
"""

from __future__ import annotations

import importlib
from collections import deque

import numpy as np

from appliance.errors import DspError
from dsp.fax import hdlc
from dsp.fax.t30frames import RATES
from dsp.fax.v21 import V21Receiver, v21_modulate

__all__ = ["MODEMS", "page_modem", "Sender", "Listener"]

# modem name -> (module, transmitter class, receiver class)
MODEMS = {"v29": ("dsp.fax.v29", "V29Transmitter", "V29Receiver"),
          "v27ter": ("dsp.fax.v27ter", "V27terTransmitter", "V27terReceiver")}


def page_modem(bit_rate: int, side: str, block: int = 160):
    """A page-modem transmitter (``side`` "tx") or receiver ("rx") for ``bit_rate``."""
    if bit_rate not in RATES:
        raise DspError(f"no page modem for {bit_rate!r} bit/s; rates are {sorted(RATES)}")
    module, tx, rx = MODEMS[RATES[bit_rate][0]]
    cls = getattr(importlib.import_module(module), tx if side == "tx" else rx)
    return cls(bit_rate, block=block)


class _Samples:
    """A fixed array of samples."""

    def __init__(self, x: np.ndarray):
        self.x, self.pos = np.asarray(x, np.int16), 0

    def take(self, n: int) -> np.ndarray:
        out = self.x[self.pos:self.pos + n]
        self.pos += out.size
        return out

    @property
    def done(self) -> bool:
        return self.pos >= self.x.size


class _Burst:
    """A page-modem burst; the modem hands out whole blocks."""

    def __init__(self, tx):
        self.tx, self.started = tx, False

    def take(self, n: int) -> np.ndarray:
        self.started = True
        return self.tx.take() if self.tx.busy else np.zeros(0, np.int16)

    @property
    def done(self) -> bool:
        return self.started and not self.tx.busy


class Sender:
    """Everything we put on the line, in order; ``take`` gives one block.

    Parameters
    ----------
    block : int, samples per block
    level_dbm0 : float, V.21 transmit level
    """

    def __init__(self, block: int = 160, level_dbm0: float = -13.0):
        self.block, self.level = int(block), float(level_dbm0)
        self._queue: deque = deque()

    @property
    def busy(self) -> bool:
        """Signal still queued."""
        return bool(self._queue)

    def silence(self, seconds: float) -> None:
        self._queue.append(_Samples(np.zeros(int(round(seconds * 8000)), np.int16)))

    def samples(self, x: np.ndarray) -> None:
        self._queue.append(_Samples(x))

    def frames(self, frames: list[bytes], preamble_s: float = 1.0) -> None:
        """One V.21 transmission: a second of flags, the frames, a closing flag."""
        bits = hdlc.encode(frames, preamble=hdlc.preamble_flags(preamble_s), closing=2)
        self._queue.append(_Samples(v21_modulate(bits, self.level)))

    def burst(self, tx, bits: np.ndarray) -> None:
        """A page-modem burst: ``tx`` trains and sends ``bits`` when the queue reaches it."""
        tx.send(bits)
        self._queue.append(_Burst(tx))

    def take(self) -> np.ndarray:
        """The next block, shape (block,), int16 (zeros once the queue is empty)."""
        out = np.zeros(self.block, np.int16)
        n = 0
        while self._queue and n < self.block:
            src = self._queue[0]
            if isinstance(src, _Burst):
                if n:  # a burst starts on a block boundary
                    break
                x = src.take(self.block)
                out[: x.size] = x
                n = self.block
            else:
                x = src.take(self.block - n)
                out[n:n + x.size] = x
                n += x.size
            if src.done:
                self._queue.popleft()
        return out

    def clear(self) -> None:
        self._queue.clear()


class Listener:
    """V.21 frames always, page-modem bits when asked for.

    ``process`` returns the good frames completed in the block; page-modem
    bits gather in ``page_bits`` and the modem's events in ``page_events``.
    """

    def __init__(self, block: int = 160):
        self.block = int(block)
        self.v21 = V21Receiver(1, block)
        self.hdlc = hdlc.HdlcReceiver()
        self.page_rx = None
        self.page_carrier_seen = False  # the page modem heard energy since expect_page
        self._v21_paused = False
        self.page_events: list[str] = []
        self._bits: list[np.ndarray] = []
        self._run = 0

    def expect_page(self, bit_rate: int) -> None:
        """Start a page-modem receiver for ``bit_rate`` (dropping any bits gathered)."""
        self.page_rx = page_modem(bit_rate, "rx", self.block)
        self._bits = []
        self._run = 0
        self.page_carrier_seen = False

    def stop_page(self) -> None:
        self.page_rx = None
        self._bits = []
        self._run = 0
        self.page_carrier_seen = False

    def page_bits(self) -> np.ndarray:
        """The page-modem bits since ``expect_page`` (the burst's data)."""
        return np.concatenate(self._bits) if self._bits else np.zeros(0, np.uint8)

    def process(self, x: np.ndarray) -> list[hdlc.HdlcFrame]:
        self.page_events = []
        if self.page_rx is not None:
            bits = self.page_rx.process(x)
            if bits.size:
                self._bits.append(bits)
            self.page_events = list(self.page_rx.events)
        if self.page_rx is not None and self.page_rx.trained and self.page_rx.carrier:
            self._v21_paused = True  # a page is coming in: no V.21 (which costs more than the page modem) till it ends
            return []
        if self._v21_paused:
            self.reset_v21()
            self._v21_paused = False
        got = self.v21.process(x[None, :])[0]
        if self.page_rx is not None:
            # energy for the page modem that is not V.21 (whose band it shares), for 60 ms: a page burst
            v21_car = bool(self.v21.carrier[0])
            self._run = self._run + 1 if self.page_rx.carrier and not v21_car else 0
            self.page_carrier_seen |= self._run >= 3
        return [f for f in self.hdlc.feed(got) if f.fcs_ok] if got.size else []

    def reset_v21(self) -> None:
        """Forget half-heard V.21 (our own transmission may have left the receiver mid-frame)."""
        self.v21.reset(0)
        self.hdlc.reset()
