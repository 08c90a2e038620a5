"""Prompts spoken to callers: text rendered by espeak-ng, and installer-supplied WAV files, as 8 kHz A-law at one level.

Both paths go through ``dsp.prompt_level.prepare_prompt``: mixed to mono,
resampled to 8 kHz, set to the configured active speech level (``ivr.prompt_level_dbm0``,
P.56), edges trimmed to 0.1 s, clipping counted. Rendering runs a subprocess and
takes a good part of a second: the runtime calls ``PromptLibrary.render`` at
start-up or from a worker thread, never in the 20 ms tick. A rendered prompt is
cached in ``cache_dir`` under a hash of what shaped it, so later renders (and
restarts) only read a small file; imported files are kept in ``cache_dir/imported``.
"""

from __future__ import annotations

import functools
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

from dsp.g711 import alaw_decode, alaw_encode
from dsp.prompt_level import DEFAULT_LEVEL_DBM0, PromptReport, prepare_prompt, resample_to
from dsp.tones import sine, to_int16
from dsp.wavio import decode_wav, parse_wav, read_wav

from . import messages
from .errors import ConfigError, DspError, ProtocolError
from .wavfile import read_alaw_wav, write_alaw_wav

log = logging.getLogger(__name__)

RATE = 8000
RENDER_VERSION = 2          # bump when the processing below changes, so old cache entries are ignored
TARGET_DBM0 = DEFAULT_LEVEL_DBM0  # active speech level (P.56) unless the config says otherwise
LEVEL_RANGE_DBM0 = (-30.0, -6.0)  # as the config's ivr.prompt_level_dbm0 allows
EDGE_SILENCE_S = 0.1        # silence kept (or added) before and after the speech
CLIPPED_WARN_FRACTION = 1e-3  # more clipped samples than this is audible: say so in the log
BEEP_FREQS = (660.0, 880.0)  # neither DTMF nor a call-progress frequency
BEEP_DBM0 = -16.0
DEFAULT_ESPEAK = shutil.which("espeak-ng")
_VOICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+-]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _warn_log(msg: str) -> None:
    log.warning("%s", msg)


def beep(rate: int = RATE) -> np.ndarray:
    """The substitute for speech: 660/880 Hz alternating, 4 x (0.2 s tone, 0.05 s gap), -16 dBm0.

    Returns
    -------
    x : ndarray, shape (8000,), int16, linear PCM at 8 kHz (a new array each call)
    """
    return _beep(rate).copy()


@functools.lru_cache(maxsize=2)
def _beep(rate: int) -> np.ndarray:
    """``beep`` made once: a box without espeak-ng says it for every spoken queue announcement."""
    n_on, n_gap = int(0.2 * rate), int(0.05 * rate)
    ramp = np.sin(np.linspace(0.0, np.pi / 2, int(0.01 * rate))) ** 2  # 10 ms raised cosine: no clicks
    env = np.ones(n_on)
    env[:ramp.size] = ramp
    env[-ramp.size:] = ramp[::-1]
    parts = []
    for f in BEEP_FREQS * 2:
        parts += [sine(f, BEEP_DBM0, n_on, rate) * env, np.zeros(n_gap)]
    return to_int16(np.concatenate(parts))


def shape_speech(x: np.ndarray, level_dbm0: float = TARGET_DBM0) -> np.ndarray:
    """Trim silence at both ends to ``EDGE_SILENCE_S`` and set the active level to ``level_dbm0``.

    Parameters
    ----------
    x : ndarray, shape (n,), float64, linear PCM (int16 scale) at 8 kHz
    level_dbm0 : float, dBm0, P.56 active level of the result

    Returns
    -------
    y : ndarray, shape (m,), float64, the A-law-decoded values (clipped at A-law's range if the gain demands)

    Raises
    ------
    DspError (a ValueError)
        If ``x`` holds no sound at all.
    """
    codes, _ = prepare_prompt(np.asarray(x, np.float64), RATE, level_dbm0, margin_s=EDGE_SILENCE_S)
    return alaw_decode(codes).astype(np.float64)


def _check_level(level_dbm0: float) -> float:
    lo, hi = LEVEL_RANGE_DBM0
    if isinstance(level_dbm0, bool) or not isinstance(level_dbm0, (int, float)) \
            or not (math.isfinite(level_dbm0) and lo <= level_dbm0 <= hi):
        raise ConfigError(f"prompt level {level_dbm0!r} must be a number of dBm0 in {lo:.0f}..{hi:.0f}")
    return float(level_dbm0)


def _log_clipping(what: str, report: PromptReport) -> None:
    if report.clipped_fraction > CLIPPED_WARN_FRACTION:
        log.warning("%s: %d samples (%.2f%%) clipped at %.1f dBm0 (gain %+.1f dB); use a recording with "
                    "less peak-to-average difference", what, report.clipped, 100 * report.clipped_fraction,
                    report.level_dbm0, report.gain_db)


class PromptLibrary:
    """Renders text prompts with espeak-ng and imports prompt files, all cached on disk as A-law WAV.

    A beep stands in when espeak-ng is missing.

    Parameters
    ----------
    cache_dir : str or os.PathLike
        Folder for cached renders (created if missing); imported files go to ``cache_dir/imported``.
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
    level_dbm0 : float
        Active speech level of every prompt, dBm0, -30..-6 (the config's ``ivr.prompt_level_dbm0``).
    """

    def __init__(self, cache_dir: str | os.PathLike, espeak: str | None = DEFAULT_ESPEAK,
                 warn: Callable[[str], None] = _warn_log, speed: int = 150,
                 lang: str = messages.DEFAULT_LANG, timeout_s: float = 30.0,
                 level_dbm0: float = TARGET_DBM0) -> None:
        if not isinstance(speed, int) or not 80 <= speed <= 450:
            raise ConfigError(f"prompt speed {speed!r} must be an integer of words per minute in 80..450")
        self.level_dbm0 = _check_level(level_dbm0)
        self.cache_dir = os.fspath(cache_dir)
        os.makedirs(self.cache_dir, exist_ok=True)
        self.imported_dir = os.path.join(self.cache_dir, "imported")
        self.espeak = espeak
        self.speed = speed
        self.timeout_s = timeout_s
        self._warn = warn
        self._warning = messages.text("warn.no_espeak", lang)
        self._warned = False
        self._lock = threading.Lock()

    def cache_path(self, text: str, voice: str = "cmn") -> str:
        """The cache file for ``text`` in ``voice`` at this library's speed and level."""
        key = json.dumps([RENDER_VERSION, text, voice, self.speed, self.level_dbm0], ensure_ascii=False)
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
        speech = self._speak(text, voice)
        if speech is None:
            self._warn_once()
            return beep()
        try:
            codes, report = prepare_prompt(speech[0], speech[1], self.level_dbm0, margin_s=EDGE_SILENCE_S)
        except DspError as e:  # espeak-ng said nothing audible (e.g. only punctuation)
            log.warning("espeak-ng output for voice %r: %s", voice, e)
            self._warn_once()
            return beep()
        _log_clipping(f"prompt {text[:20]!r}", report)
        write_alaw_wav(path, codes[np.newaxis, :])
        return alaw_decode(codes)

    def render_alaw(self, text: str, voice: str = "cmn") -> np.ndarray:
        """Like ``render`` but A-law coded: ndarray, shape (n,), uint8."""
        return alaw_encode(self.render(text, voice))

    def imported_path(self, name: str) -> str:
        """Where the imported prompt ``name`` lives (a plain name: letters, digits, _ and -, up to 64)."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"prompt name {name!r} must be 1..64 letters, digits, _ or -, starting with a letter "
                              f"or digit")
        return os.path.join(self.imported_dir, name + ".wav")

    def import_file(self, name: str, path: str | os.PathLike) -> PromptReport:
        """Import an installer-supplied WAV as prompt ``name``: any rate, mono or stereo, 8/16/24/32-bit
        PCM, 32/64-bit float, A-law or mu-law; stored as 8 kHz A-law at this library's level.

        An earlier prompt of that name is replaced only once the new one is written
        whole. Clipping is not avoided by lowering the gain (prompts must match in
        loudness): it is counted in the report and logged when audible.

        Returns
        -------
        report : PromptReport, what the conversion did (levels, gain, clipped samples)

        Raises
        ------
        DspError
            Naming the file and the problem: not a WAV file, truncated, no samples,
            an unsupported codec, or no sound in it. ``ConfigError`` for a bad ``name``.
        """
        dest = self.imported_path(name)
        src = os.fspath(path)
        wav = read_wav(src)  # AudioFileError (a DspError) names the file
        try:
            codes, report = prepare_prompt(wav.samples, wav.rate, self.level_dbm0, margin_s=EDGE_SILENCE_S)
        except DspError as e:
            raise DspError(f"{src}: {str(e).removeprefix('prepare_prompt: ')}") from None
        _log_clipping(src, report)
        os.makedirs(self.imported_dir, exist_ok=True)
        write_alaw_wav(dest, codes[np.newaxis, :])
        return report

    def load_imported(self, name: str) -> np.ndarray:
        """The imported prompt ``name``: ndarray, shape (n,), int16, linear PCM at 8 kHz.

        Raises
        ------
        ConfigError
            If no prompt of that name was imported, or its file is damaged.
        """
        path = self.imported_path(name)
        try:
            codes, _ = read_alaw_wav(path)
        except FileNotFoundError:
            raise ConfigError(f"prompt {name!r} has not been imported") from None
        except (ProtocolError, OSError) as e:
            raise ConfigError(f"imported prompt {name!r} is unreadable: {e}") from None
        return alaw_decode(codes[0])

    def _warn_once(self) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        self._warn(self._warning)

    def _speak(self, text: str, voice: str) -> tuple[np.ndarray, int] | None:
        """Run espeak-ng; its speech as (samples shape (channels, n) float on the int16 scale, rate), or None."""
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
            name = "espeak-ng output"
            wav = decode_wav(parse_wav(run.stdout, name, streaming=True), name)
        except DspError as e:
            log.warning("%s", e)
            return None
        if wav.samples.shape[1] == 0:
            log.warning("espeak-ng output for voice %r holds no samples", voice)
            return None
        return wav.samples, wav.rate


def load_prompt_file(path: str | os.PathLike) -> np.ndarray:
    """Load a WAV file as it is (no level change): any rate, mono or stereo, PCM, float, A-law or mu-law.

    Returns
    -------
    x : ndarray, shape (n,), int16, linear PCM at 8 kHz (channels mixed to mono)

    Raises
    ------
    ConfigError
        Naming the file and what is wrong with it.
    """
    name = os.fspath(path)
    try:
        wav = read_wav(name)
    except DspError as e:
        msg = str(e)
        raise ConfigError(f"prompt file {name!r}: {msg.removeprefix(name + ': ')}") from None
    return to_int16(resample_to(wav.samples.mean(axis=0), wav.rate))
