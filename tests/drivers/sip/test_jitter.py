"""Jitter buffer: reordering, loss concealment, duplicates, late packets, PCMU, re-chunking and resync."""

from __future__ import annotations

import random

import numpy as np
import pytest

from appliance.errors import ProtocolError
from drivers.sip.jitter import FADE_FRAMES, SILENCE_FRAME, JitterBuffer
from drivers.sip.rtp import RtpPacket
from dsp.g711 import alaw_decode, alaw_encode, ulaw_decode

N = 500  # 10 s of 20 ms frames


def tone_frames(n: int = N) -> list[np.ndarray]:
    """A 1 kHz tone at -10 dBFS in A-law, each frame stamped with its number in its first two code bytes."""
    t = np.arange(n * 160)
    x = (10362 * np.sin(2 * np.pi * 1000 * t / 8000)).astype(np.int16)
    codes = alaw_encode(x).reshape(n, 160)
    codes[:, 0] = np.arange(n) & 0xFF
    codes[:, 1] = np.arange(n) >> 8
    return list(codes)


def stamp(frame: np.ndarray) -> int:
    return int(frame[0]) | int(frame[1]) << 8


def packet(k: int, payload: np.ndarray | bytes, ts0: int = 1000, ssrc: int = 0x42, pt: int = 8, marker=False,
           samples: int = 160):
    return RtpPacket(pt, k & 0xFFFF, (ts0 + k * samples) & 0xFFFFFFFF, ssrc, bytes(payload), marker)


def test_in_order_stream_starts_after_the_depth_and_plays_every_frame():
    frames = tone_frames(20)
    jb = JitterBuffer(depth_frames=3)
    out = []
    for k in range(20):
        jb.put(packet(k, frames[k], marker=k == 0), now=k * 0.02)
        out.append(jb.get())
    statuses = [s for _, s in out]
    assert statuses[:2] == ["silence", "silence"] and statuses[2:] == ["ok"] * 18
    assert [stamp(f) for f, _ in out[2:]] == list(range(18))
    assert all(np.array_equal(f, frames[k]) for k, (f, _) in enumerate(out[2:]))
    assert np.array_equal(out[0][0], SILENCE_FRAME) and out[0][0].dtype == np.uint8 and out[0][0].shape == (160,)


def run_network(frames, *, seed, loss=0.05, max_delay=2, dup=0.03, isolated=True):
    """Packet k leaves at tick k and arrives at tick k + delay (0..max_delay, so reordered); some lost, some twice."""
    rng = random.Random(seed)
    lost = set()
    arrivals: dict[int, list[RtpPacket]] = {}
    for k, f in enumerate(frames):
        if k > 0 and rng.random() < loss and not (isolated and k - 1 in lost):
            lost.add(k)
            continue
        copies = 2 if rng.random() < dup else 1
        for _ in range(copies):
            arrivals.setdefault(k + rng.randint(0, max_delay), []).append(packet(k, f, marker=k == 0))
    jb = JitterBuffer(depth_frames=3)
    out = []
    for t in range(len(frames) + 10):
        batch = arrivals.get(t, [])
        rng.shuffle(batch)
        for p in batch:
            jb.put(p, now=t * 0.02 + rng.random() * 0.019)
        out.append(jb.get())
    return jb, out, lost


def test_reordered_lossy_tone_stream_plays_in_order_with_one_concealed_frame_per_loss():
    frames = tone_frames()
    jb, out, lost = run_network(frames, seed=7)
    assert 15 <= len(lost) <= 40  # about 5 % of 500
    assert all(s in ("ok", "concealed", "silence") for _, s in out)
    start = next(i for i, (_, s) in enumerate(out) if s != "silence")
    played = out[start:start + N]
    ok_stamps = [stamp(f) for f, s in played if s == "ok"]
    assert ok_stamps == sorted(set(ok_stamps))  # in order, none twice
    assert set(ok_stamps) == set(range(N)) - lost  # every frame that arrived was played
    for k, (f, s) in enumerate(played):  # and each at its own tick: a lost frame is concealed in its place
        if k in lost:
            assert s == "concealed"
            assert np.array_equal(f, alaw_encode(alaw_decode(frames[k - 1]) >> 1))  # the last one, 6 dB down
        else:
            assert s == "ok" and np.array_equal(f, frames[k])
    assert sum(s == "concealed" for _, s in played) == len(lost)
    tail = [s for _, s in out[start + N:]]  # the stream stops: the last frame fades out
    assert tail == ["concealed"] * FADE_FRAMES + ["silence"] * (len(tail) - FADE_FRAMES)
    assert jb.concealed == len(lost) + FADE_FRAMES
    assert jb.duplicates > 0 and jb.late == 0 and jb.shrunk == 0 and jb.overflow == 0
    assert jb.played == N - len(lost)


def test_burst_losses_fade_to_silence():
    frames = tone_frames(30)
    jb = JitterBuffer(depth_frames=2)
    out = []
    for k in range(30):
        if not 10 <= k < 17:  # 7 frames lost in a row
            jb.put(packet(k, frames[k]), now=k * 0.02)
        out.append(jb.get())
    played = out[1:]
    statuses = [s for _, s in played]
    assert statuses[:10] == ["ok"] * 10
    assert statuses[10:17] == ["concealed"] * FADE_FRAMES + ["silence"] * (7 - FADE_FRAMES)
    assert statuses[17:29] == ["ok"] * 12
    for i in range(FADE_FRAMES):  # -6 dB more each frame, on linear samples
        assert np.array_equal(played[10 + i][0], alaw_encode(alaw_decode(frames[9]) >> (i + 1)))
    assert np.array_equal(played[16][0], SILENCE_FRAME)
    levels = [np.abs(alaw_decode(played[i][0]).astype(float)).mean() for i in range(9, 15)]
    assert all(a > b for a, b in zip(levels, levels[1:]))


def test_pcmu_payloads_come_out_as_alaw():
    rng = np.random.default_rng(3)
    ulaw = [rng.integers(0, 256, 160).astype(np.uint8) for _ in range(12)]
    jb = JitterBuffer(depth_frames=1)
    out = []
    for k, f in enumerate(ulaw):
        jb.put(packet(k, f, pt=0), now=k * 0.02)
        out.append(jb.get())
    assert [s for _, s in out] == ["ok"] * 12
    for (f, _), u in zip(out, ulaw):
        assert np.array_equal(f, alaw_encode(ulaw_decode(u)))


@pytest.mark.parametrize("samples", [240, 80, 400])
def test_other_packet_lengths_are_rechunked_into_160_sample_frames(samples):
    rng = np.random.default_rng(samples)
    stream = rng.integers(0, 256, 160 * 60).astype(np.uint8)
    jb = JitterBuffer(depth_frames=3)
    out, sent = [], 0
    for tick in range(70):
        while sent * samples < (tick + 1) * 160 and (sent + 1) * samples <= len(stream):  # packets as they fill
            chunk = stream[sent * samples:(sent + 1) * samples]
            jb.put(packet(sent, chunk, samples=samples), now=tick * 0.02)
            sent += 1
        out.append(jb.get())
    ok = [f for f, s in out if s == "ok"]
    assert len(ok) == 60
    assert np.array_equal(np.concatenate(ok), stream)
    assert out[-1][1] != "ok"


def test_lost_30ms_packet_patches_the_partial_frames():
    stream = tone_frames(12)
    flat = np.concatenate(stream)
    jb = JitterBuffer(depth_frames=2)
    for k in range(8):
        if k != 3:  # samples 720..959 lost: frame 4 (640..799) partly, frame 5 (800..959) wholly
            jb.put(packet(k, flat[k * 240:(k + 1) * 240], samples=240), now=0.0)
    out = [jb.get() for _ in range(12)]
    assert [s for _, s in out] == ["ok"] * 4 + ["concealed", "concealed"] + ["ok"] * 6
    assert np.array_equal(out[4][0][:80], flat[640:720])  # the part that arrived is kept


def test_duplicates_and_late_packets_are_counted_and_dropped():
    frames = tone_frames(10)
    jb = JitterBuffer(depth_frames=1)
    jb.put(packet(0, frames[0]), 0.0)
    jb.put(packet(0, frames[0]), 0.001)
    assert jb.duplicates == 1
    assert jb.get()[1] == "ok"
    jb.put(packet(2, frames[2]), 0.02)
    assert jb.get()[1] == "concealed"  # frame 1 missing at its tick
    jb.put(packet(1, frames[1]), 0.03)  # too late now
    assert jb.late == 1
    f, s = jb.get()
    assert s == "ok" and stamp(f) == 2


def test_new_talkspurt_after_silence_resyncs_and_waits_for_the_depth():
    frames = tone_frames(40)
    jb = JitterBuffer(depth_frames=3)
    out = []
    for k in range(10):
        jb.put(packet(k, frames[k], marker=k == 0), k * 0.02)
        out.append(jb.get())
    for _ in range(15):  # the phone's VAD stops sending for 300 ms
        out.append(jb.get())
    for k in range(10, 25):  # ... and resumes with a marker, timestamps 2 s further on
        jb.put(packet(k, frames[k], ts0=1000 + 16000, marker=k == 10), (15 + k) * 0.02)
        out.append(jb.get())
    statuses = [s for _, s in out]
    assert statuses[2:10] == ["ok"] * 8
    assert statuses[25:27] == ["silence", "silence"] and statuses[27:] == ["ok"] * 13
    assert [stamp(f) for f, s in out if s == "ok"] == list(range(23))
    assert jb.resyncs == 2 and jb.late == 0


def test_source_change_and_timestamp_jump_resync():
    frames = tone_frames(30)
    jb = JitterBuffer(depth_frames=2)
    out = []
    for k in range(10):
        jb.put(packet(k, frames[k]), k * 0.02)
        out.append(jb.get())
    for k in range(10, 20):  # a new SSRC mid-stream, no marker, unrelated timestamps
        jb.put(packet(k, frames[k], ts0=77_000_000, ssrc=0x99), k * 0.02)
        out.append(jb.get())
    for k in range(20, 30):  # the same SSRC jumps its timestamps by an hour
        jb.put(packet(k, frames[k], ts0=77_000_000 + 8000 * 3600, ssrc=0x99), k * 0.02)
        out.append(jb.get())
    ok = [stamp(f) for f, s in out if s == "ok"]
    assert ok == sorted(ok) and len(ok) >= 26 and ok[-1] >= 27
    assert jb.resyncs == 3 and jb.late == 0


def test_timestamp_wrap_is_seamless():
    frames = tone_frames(20)
    jb = JitterBuffer(depth_frames=2)
    out = []
    for k in range(20):
        jb.put(packet(k, frames[k], ts0=0xFFFFFFFF - 160 * 8), k * 0.02)
        out.append(jb.get())
    assert [s for _, s in out] == ["silence"] + ["ok"] * 19 and jb.resyncs == 1


def test_reordering_before_playout_starts_is_kept():
    frames = tone_frames(10)
    jb = JitterBuffer(depth_frames=3)
    for k in [1, 2, 0, 3, 4]:
        jb.put(packet(k, frames[k]), 0.0)
    out = [jb.get() for _ in range(5)]
    assert [stamp(f) for f, _ in out] == [0, 1, 2, 3, 4]


def test_other_payload_types_are_ignored_and_counted():
    jb = JitterBuffer()
    jb.put(RtpPacket(101, 1, 0, 1, b"\x05\x0a\x00\xa0"), 0.0)
    jb.put(RtpPacket(8, 2, 0, 1, b""), 0.0)
    assert jb.ignored == 2 and jb.get()[1] == "silence"


def test_latency_creep_drops_a_frame():
    frames = tone_frames(300)
    jb = JitterBuffer(depth_frames=2, max_frames=20)
    out = []
    for k in range(8):  # a burst: 8 frames arrive before playout begins
        jb.put(packet(k, frames[k]), 0.0)
    for k in range(8, 300):
        out.append(jb.get())
        jb.put(packet(k, frames[k]), k * 0.02)
    assert jb.shrunk >= 1
    ok = [stamp(f) for f, s in out if s == "ok"]
    assert ok == sorted(set(ok))


@pytest.mark.parametrize("kwargs, message", [
    (dict(depth_frames=0), "depth_frames must be an integer >= 1, got 0"),
    (dict(depth_frames=5, max_frames=5), "max_frames must be an integer > depth_frames (5), got 5"),
])
def test_bad_configuration(kwargs, message):
    with pytest.raises(ProtocolError) as e:
        JitterBuffer(**kwargs)
    assert str(e.value) == message
