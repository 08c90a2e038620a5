"""Jitter buffer for one incoming G.711 stream: RTP packets in, one 20 ms A-law frame out per tick.

Packets are laid out by timestamp on a sample-level ring of ``max_frames`` frames, so
packets of any length (10, 20, 30 ms...) are re-chunked into the 160-sample frames the
tick moves, and reordered packets fall into place. PCMU payloads are transcoded to A-law
on the way in; other payload types (telephone-event, comfort noise) are ignored and counted.

Playout, per tick (`get`):

- A (re)started stream waits until ``depth_frames`` frames are buffered (or ``depth_frames``
  ticks passed with something buffered), playing silence meanwhile.
- A frame whose samples all arrived is "ok". A missing frame repeats the last good one,
  6 dB lower for the first, 6 dB lower again for each further one ("concealed", done on
  linear samples through dsp.g711), and is "silence" from the fifth on. A frame with only
  some samples (a lost 30 ms packet) fills the gap from the last frame the same way.
- Resync: a packet of another SSRC, a timestamp jump beyond the ring, a marker bit that
  opens a gap after what is buffered (new talkspurt), or a run of late packets (a sender
  clock gone astray) re-anchors the timeline: right at the play point when the buffer has
  drained (then it waits for the depth again), else after what is still buffered, no
  earlier than ``depth_frames - 1`` frames ahead.
- Duplicates (same SSRC, sequence number and timestamp as a recent packet) and packets
  whose time has already been played are dropped and counted.
- Latency creep (a sender clock faster than ours): when, over 100 ticks, the buffer never
  held fewer than ``depth_frames + 2`` frames, one frame is dropped (``shrunk``). A packet
  that does not fit in the ring drops the oldest samples (``overflow``).

No clock is read; ``now`` given to `put` is only kept as ``last_arrival``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from appliance.errors import ProtocolError
from drivers.sip.rtp import FRAME_SAMPLES, PCMA, PCMU, ULAW_TO_ALAW, RtpPacket, signed32
from dsp.g711 import alaw_decode, alaw_encode

OK, CONCEALED, SILENCE = "ok", "concealed", "silence"
FADE_FRAMES = 4  # lost frames concealed (-6, -12, -18, -24 dB) before silence
LATE_RESYNC = 10  # this many late packets in a row re-anchor the timeline
SHRINK_WINDOW = 100  # ticks over which the buffer level is watched for latency creep
SILENCE_FRAME = alaw_encode(np.zeros(FRAME_SAMPLES, np.int16))
SILENCE_FRAME.flags.writeable = False
_STEP = np.arange(FRAME_SAMPLES)


class JitterBuffer:
    """Reorders, de-duplicates, conceals and paces one RTP audio stream for the 20 ms tick.

    Parameters
    ----------
    depth_frames : int, frames buffered before playout starts (latency target), >= 1
    max_frames : int, capacity of the ring in frames, > depth_frames
    pcma_pt, pcmu_pt : int, payload types carrying A-law and u-law (8 and 0 by RFC 3551)
    """

    def __init__(self, depth_frames: int = 3, max_frames: int = 50, pcma_pt: int = PCMA, pcmu_pt: int = PCMU):
        if not isinstance(depth_frames, int) or depth_frames < 1:
            raise ProtocolError(f"depth_frames must be an integer >= 1, got {depth_frames!r}")
        if not isinstance(max_frames, int) or max_frames <= depth_frames:
            raise ProtocolError(f"max_frames must be an integer > depth_frames ({depth_frames}), got {max_frames!r}")
        self.depth_frames = depth_frames
        self.max_frames = max_frames
        self.pcma_pt, self.pcmu_pt = pcma_pt, pcmu_pt
        self._cap = max_frames * FRAME_SAMPLES
        self._buf = np.zeros(self._cap, np.uint8)
        self._have = np.zeros(self._cap, bool)  # True exactly for buffered samples in [_pos, _high_end)
        self._pos = 0  # absolute sample position of the next frame to play
        self._high_end = 0  # one past the last buffered sample
        self._play_ts: int | None = None  # RTP timestamp at _pos
        self._ssrc: int | None = None
        self._waiting = True
        self._wait_ticks = 0
        self._last: np.ndarray | None = None  # last frame played with real samples, A-law
        self._loss_run = 0
        self._late_run = 0
        self._min_span = None
        self._window = 0
        self._recent: OrderedDict[tuple[int, int, int], None] = OrderedDict()
        self.last_arrival: float | None = None
        # counters
        self.received = self.duplicates = self.late = self.ignored = self.overflow = 0
        self.resyncs = self.shrunk = 0
        self.played = self.concealed = self.silence = 0

    # --- input ----------------------------------------------------------------------------

    def put(self, packet: RtpPacket, now: float) -> None:
        """Buffer one packet that arrived at ``now`` (s); never raises on what the peer sent."""
        self.last_arrival = now
        if packet.payload_type == self.pcma_pt:
            samples = np.frombuffer(packet.payload, np.uint8)
        elif packet.payload_type == self.pcmu_pt:
            samples = ULAW_TO_ALAW[np.frombuffer(packet.payload, np.uint8)]
        else:
            self.ignored += 1
            return
        n = len(samples)
        if n == 0 or n > self._cap:
            self.ignored += 1
            return
        key = (packet.ssrc, packet.sequence_number, packet.timestamp)
        if key in self._recent:
            self.duplicates += 1
            return
        self._recent[key] = None
        if len(self._recent) > 2 * self.max_frames:
            self._recent.popitem(last=False)
        self.received += 1
        if self._play_ts is None or packet.ssrc != self._ssrc:
            return self._resync(packet, samples)
        off = signed32(packet.timestamp - self._play_ts)
        if off >= self._cap or off + n <= -self._cap:  # timestamp jump
            return self._resync(packet, samples)
        pos = self._pos + off
        if packet.marker and pos > self._high_end:  # a new talkspurt after a gap
            return self._resync(packet, samples)
        if pos + n <= self._pos:
            if self._waiting and self._high_end - pos <= self._cap:  # reordered before the start
                self._pos, self._play_ts = pos, packet.timestamp
            else:
                self.late += 1
                self._late_run += 1
                if self._late_run >= LATE_RESYNC:
                    self._resync(packet, samples)
                return
        self._late_run = 0
        self._write(pos, samples)

    def _resync(self, packet: RtpPacket, samples: np.ndarray) -> None:
        self.resyncs += 1
        self._ssrc = packet.ssrc
        self._late_run = 0
        if self._waiting or self._high_end <= self._pos:  # nothing to finish: start afresh here
            self._have[:] = False
            self._high_end = self._pos
            self._waiting, self._wait_ticks = True, 0
            target = self._pos
        else:  # after what is still buffered, with at least depth - 1 frames of margin
            target = max(self._high_end, self._pos + (self.depth_frames - 1) * FRAME_SAMPLES)
            if target + len(samples) > self._pos + self._cap:
                target = self._pos + self._cap - len(samples)
        self._play_ts = (packet.timestamp - (target - self._pos)) & 0xFFFFFFFF
        self._write(target, samples)

    def _write(self, pos: int, samples: np.ndarray) -> None:
        if pos < self._pos:  # partly late: keep the part still to be played
            samples = samples[self._pos - pos:]
            pos = self._pos
        end = pos + len(samples)
        excess = end - (self._pos + self._cap)
        if excess > 0:  # no room: drop the oldest samples
            self.overflow += 1
            self._advance(excess)
        idx = np.arange(pos, end) % self._cap
        self._buf[idx] = samples
        self._have[idx] = True
        self._high_end = max(self._high_end, end)

    def _advance(self, n: int) -> None:
        """Move the play point ``n`` samples on, discarding what was buffered there."""
        if n >= self._cap:
            self._have[:] = False
        else:
            self._have[np.arange(self._pos, self._pos + n) % self._cap] = False
        self._pos += n
        self._play_ts = (self._play_ts + n) & 0xFFFFFFFF if self._play_ts is not None else None
        self._high_end = max(self._high_end, self._pos)

    # --- output ---------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Samples from the play point to the newest buffered one (holes included)."""
        return max(0, self._high_end - self._pos)

    def get(self) -> tuple[np.ndarray, str]:
        """This tick's frame.

        Returns
        -------
        frame : ndarray, shape (160,), uint8, A-law (a new array each call)
        status : str, "ok", "concealed" or "silence"
        """
        depth = self.depth_frames * FRAME_SAMPLES
        if self._waiting:
            if self._play_ts is None or self.buffered == 0:
                return self._silent()
            self._wait_ticks += 1
            if self.buffered < depth and self._wait_ticks <= self.depth_frames:
                return self._silent()
            self._waiting = False
            self._min_span, self._window = None, 0
        self._watch_level(depth)
        idx = (_STEP + self._pos) % self._cap
        have = self._have[idx]
        frame = self._buf[idx]
        self._advance(FRAME_SAMPLES)
        if have.all():
            self._last, self._loss_run = frame, 0
            self.played += 1
            return frame.copy(), OK
        if have.any():  # part of the frame arrived: patch the rest
            self._loss_run = 0
            patch = self._fade(1) if self._last is not None else SILENCE_FRAME
            frame = np.where(have, frame, patch).astype(np.uint8)
            self._last = frame
            self.concealed += 1
            return frame.copy(), CONCEALED
        self._loss_run += 1
        if self._last is None or self._loss_run > FADE_FRAMES:
            return self._silent()
        self.concealed += 1
        return self._fade(self._loss_run), CONCEALED

    def _silent(self) -> tuple[np.ndarray, str]:
        self.silence += 1
        return SILENCE_FRAME.copy(), SILENCE

    def _fade(self, k: int) -> np.ndarray:
        """The last frame attenuated by 6 dB x ``k``."""
        return alaw_encode(alaw_decode(self._last) >> k)

    def _watch_level(self, depth: int) -> None:
        span = self.buffered
        self._min_span = span if self._min_span is None else min(self._min_span, span)
        self._window += 1
        if self._window >= SHRINK_WINDOW:
            if self._min_span >= depth + 2 * FRAME_SAMPLES:
                self.shrunk += 1
                self._advance(FRAME_SAMPLES)
            self._min_span, self._window = None, 0
