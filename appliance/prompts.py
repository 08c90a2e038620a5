"""Prompts spoken to callers: text rendered by espeak-ng to 8 kHz speech, cached as A-law WAV, and installer-supplied files.

Rendering runs a subprocess and takes a good part of a second: the runtime calls
``PromptLibrary.render`` at start-up or from a worker thread, never in the 20 ms
tick. A rendered prompt is cached in ``cache_dir`` under a hash of what shaped it,
so later renders (and restarts) only read a small file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import subprocess
import threading
from typing import Callable

import numpy as np
from scipy.signal import resample_poly

from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import DBM0_RMS, rms_dbm0
from dsp.tones import sine, to_int16

from . import messages
from .errors import ConfigError, ProtocolError
from .wavfile import WAVE_FORMAT_ALAW, WAVE_FORMAT_PCM, alaw_codes, parse_wav, write_alaw_wav, read_alaw_wav

log = logging.getLogger(__name__)

RATE = 8000
RENDER_VERSION = 1          # bump when the processing below changes, so old cache entries are ignored
TARGET_DBM0 = -20.0         # RMS over the active part of the speech
PEAK_LIMIT = 32000.0        # below A-law's largest value (32256): normalising never clips
EDGE_SILENCE_S = 0.1        # silence kept (or added) before and after the speech
ACTIVE_BELOW_PEAK_DB = 35.0  # 10 ms frames within this of the loudest one count as speech
BEEP_FREQS = (660.0, 880.0)  # neither DTMF nor a call-progress frequency
BEEP_DBM0 = -16.0
DEFAULT_ESPEAK = shutil.which("espeak-ng")
_VOICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+-]*$")


def _warn_log(msg: str) -> None:
    log.warning("%s", msg)


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    """Float samples at ``rate`` -> float samples at 8 kHz (polyphase, e.g. 160/441 from 22,050 Hz)."""
    if rate == RATE:
        return x
    g = math.gcd(RATE, rate)
    return resample_poly(x, RATE // g, rate // g)


def beep(rate: int = RATE) -> np.ndarray:
    """The substitute for speech: 660/880 Hz alternating, 4 x (0.2 s tone, 0.05 s gap), -16 dBm0.

    Returns
    -------
    x : ndarray, shape (8000,), int16, linear PCM at 8 kHz
    """
    n_on, n_gap = int(0.2 * rate), int(0.05 * rate)
    ramp = np.sin(np.linspace(0.0, np.pi / 2, int(0.01 * rate))) ** 2  # 10 ms raised cosine: no clicks
    env = np.ones(n_on)
    env[:ramp.size] = ramp
    env[-ramp.size:] = ramp[::-1]
    parts = []
    for f in BEEP_FREQS * 2:
        parts += [sine(f, BEEP_DBM0, n_on, rate) * env, np.zeros(n_gap)]
    return to_int16(np.concatenate(parts))


def shape_speech(x: np.ndarray) -> np.ndarray:
    """Trim silence at both ends to ``EDGE_SILENCE_S`` and normalise the active part to ``TARGET_DBM0``.

    Parameters
    ----------
    x : ndarray, shape (n,), float64, linear PCM (int16 scale) at 8 kHz

    Returns
    -------
    y : ndarray, shape (m,), float64, peak at most ``PEAK_LIMIT``

    Raises
    ------
    ValueError
        If ``x`` holds no sound at all.
    """
    frame = RATE // 100
    n_frames = x.size // frame
    if n_frames == 0 or not np.any(x):
        raise ValueError("the rendered speech is silent")
    level = rms_dbm0(x[:n_frames * frame].reshape(n_frames, frame))
    active = level > level.max() - ACTIVE_BELOW_PEAK_DB
    idx = np.flatnonzero(active)
    edge = int(EDGE_SILENCE_S * RATE)
    start, stop = idx[0] * frame, (idx[-1] + 1) * frame
    y = np.concatenate([np.zeros(max(0, edge - start)), x[max(0, start - edge):stop + edge]])
    y = np.concatenate([y, np.zeros(max(0, stop + edge - x.size))])
    speech = x[:n_frames * frame].reshape(n_frames, frame)[active]
    active_rms = np.sqrt(np.mean(speech ** 2))
    gain = DBM0_RMS * 10.0 ** (TARGET_DBM0 / 20.0) / active_rms
    gain = min(gain, PEAK_LIMIT / np.max(np.abs(y)))
    return y * gain


class PromptLibrary:
    """Renders text prompts with espeak-ng, cached on disk; a beep stands in when espeak-ng is missing.

    Parameters
    ----------
    cache_dir : str or os.PathLike
        Folder for cached renders (created if missing).
    espeak : str or None
        Path of the espeak-ng binary; None means speech is unavailable.
    warn : callable(str)
        Told once per library, with the catalog text ``warn.no_espeak``, when a beep
        replaces speech. Defaults to a logging warning.
    speed : int
        espeak-ng words per minute (80..450).
    lang : str
        Language of the warning text ('zh' or 'en').
    timeout_s : float
        Longest an espeak-ng run may take before it counts as failed.
    """

    def __init__(self, cache_dir: str | os.PathLike, espeak: str | None = DEFAULT_ESPEAK,
                 warn: Callable[[str], None] = _warn_log, speed: int = 150,
                 lang: str = messages.DEFAULT_LANG, timeout_s: float = 30.0) -> None:
        if not isinstance(speed, int) or not 80 <= speed <= 450:
            raise ConfigError(f"prompt speed {speed!r} must be an integer of words per minute in 80..450")
        self.cache_dir = os.fspath(cache_dir)
        os.makedirs(self.cache_dir, exist_ok=True)
        self.espeak = espeak
        self.speed = speed
        self.timeout_s = timeout_s
        self._warn = warn
        self._warning = messages.text("warn.no_espeak", lang)
        self._warned = False
        self._lock = threading.Lock()

    def cache_path(self, text: str, voice: str = "cmn") -> str:
        """The cache file for ``text`` in ``voice`` at this library's speed."""
        key = json.dumps([RENDER_VERSION, text, voice, self.speed], ensure_ascii=False)
        return os.path.join(self.cache_dir, hashlib.sha256(key.encode()).hexdigest()[:32] + ".wav")

    def render(self, text: str, voice: str = "cmn") -> np.ndarray:
        """Speak ``text`` (slow on a cache miss: never call it from the tick).

        Parameters
        ----------
        text : str
            What to say; passed to espeak-ng as one argument, never through a shell.
        voice : str
            espeak-ng voice, e.g. "cmn" (Mandarin) or "en".

        Returns
        -------
        x : ndarray, shape (n,), int16, linear PCM at 8 kHz, exactly the values its A-law
            coding decodes to. Without espeak-ng: ``beep()``.

        Raises
        ------
        ValueError
            If ``text`` is empty or ``voice`` is not a plain voice name.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"prompt text must be a non-empty string, got {text!r}")
        if not isinstance(voice, str) or not _VOICE.match(voice):
            raise ValueError(f"voice {voice!r} is not an espeak-ng voice name (letters, digits, _ + -)")
        path = self.cache_path(text, voice)
        if os.path.exists(path):
            try:
                codes, _ = read_alaw_wav(path)
                return alaw_decode(codes[0])
            except (ProtocolError, OSError) as e:
                log.warning("prompt cache %s is unreadable (%s); rendering again", path, e)
        pcm = self._speak(text, voice)
        if pcm is None:
            self._warn_once()
            return beep()
        codes = alaw_encode(to_int16(shape_speech(pcm)))
        write_alaw_wav(path, codes[np.newaxis, :])
        return alaw_decode(codes)

    def render_alaw(self, text: str, voice: str = "cmn") -> np.ndarray:
        """Like ``render`` but A-law coded: ndarray, shape (n,), uint8."""
        return alaw_encode(self.render(text, voice))

    def _warn_once(self) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        self._warn(self._warning)

    def _speak(self, text: str, voice: str) -> np.ndarray | None:
        """Run espeak-ng; its speech resampled to 8 kHz as float (int16 scale), or None if it failed."""
        if self.espeak is None:
            return None
        # the leading space keeps a text starting with '-' from being read as an option
        argv = [self.espeak, "-v", voice, "-s", str(self.speed), "--stdout", " " + text]
        try:
            run = subprocess.run(argv, capture_output=True, timeout=self.timeout_s, check=False)
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("espeak-ng %r failed to run: %s", self.espeak, e)
            return None
        if run.returncode != 0:
            log.warning("espeak-ng exited with %d for voice %r: %s", run.returncode, voice,
                        run.stderr.decode(errors="replace").strip())
            return None
        try:
            info = parse_wav(run.stdout, "espeak-ng output", streaming=True)
        except ProtocolError as e:
            log.warning("%s", e)
            return None
        if info.format_tag != WAVE_FORMAT_PCM or info.bits != 16 or info.channels != 1:
            log.warning("espeak-ng output is format %d, %d bits, %d channels; expected 16-bit mono PCM",
                        info.format_tag, info.bits, info.channels)
            return None
        x = np.frombuffer(info.data, dtype="<i2").astype(np.float64)
        return _resample(x, info.rate)


def load_prompt_file(path: str | os.PathLike) -> np.ndarray:
    """Load an installer-supplied prompt: A-law WAV (8 kHz) or 16-bit PCM WAV at any rate, mono or stereo.

    Returns
    -------
    x : ndarray, shape (n,), int16, linear PCM at 8 kHz (stereo mixed to mono)

    Raises
    ------
    ConfigError
        Naming the file and what is wrong with it.
    """
    name = f"prompt file {os.fspath(path)!r}"
    try:
        with open(path, "rb") as f:
            blob = f.read()
        info = parse_wav(blob, name)
        if info.format_tag == WAVE_FORMAT_ALAW:
            chans = alaw_decode(alaw_codes(info, name)).astype(np.float64)
            rate = info.rate
        elif info.format_tag == WAVE_FORMAT_PCM and info.bits == 16:
            if info.channels not in (1, 2) or info.block_align != 2 * info.channels:
                raise ProtocolError(f"{name}: {info.channels} channels with block align {info.block_align}; "
                                    f"mono or stereo 16-bit PCM expected")
            if not 4000 <= info.rate <= 192000:
                raise ProtocolError(f"{name}: sample rate {info.rate} Hz is outside 4000..192000 Hz")
            chans = np.frombuffer(info.data, dtype="<i2").reshape(-1, info.channels).T.astype(np.float64)
            rate = info.rate
        else:
            raise ProtocolError(f"{name}: format tag {info.format_tag} with {info.bits} bits is not supported; "
                                f"use A-law 8 kHz or 16-bit PCM WAV")
    except ProtocolError as e:
        raise ConfigError(str(e)) from None
    except OSError as e:
        raise ConfigError(f"{name} cannot be read: {e.strerror or e}") from None
    mono = chans.mean(axis=0)
    return to_int16(_resample(mono, rate)) if mono.size else np.zeros(0, np.int16)
