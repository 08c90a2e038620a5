"""The prompt set the call logic names, rendered before the tick starts: fixed prompts, the IVR flow's texts,
music on hold and the voicemail beep.

Rendering is slow on a TTS cache miss: call ``render_prompts`` before the runtime
starts (and again, off the tick, for a changed flow). Music on hold is the
installer's imported prompt ``moh`` when there is one (``PromptLibrary.import_file``),
else a generated tune: a calm pentatonic melody of soft sine notes, deterministic,
kept clear of the DTMF and call-progress frequencies so no detector mistakes it.
"""

from __future__ import annotations

import numpy as np

from drivers.base import RATE
from dsp.levels import dbm0_to_amplitude

from . import messages
from .config import caller_texts
from .config_acd import ivr_flow
from .errors import ConfigError
from .flowrun import text_prompt
from .prompts import PromptLibrary

VOICE_LANG = {"cmn": "zh", "en": "en"}
SPOKEN = ("invalid", "goodbye", "blocked", "transfer", "voicemail")  # from the config's prompts section
AGENT_PROMPTS = {"code.done": "prompt.code_done", "code.failed": "prompt.code_failed"}  # to agents, built in
# C major pentatonic from C5: above the 450 Hz call-progress family, below DTMF's 697 Hz row only for
# C5..E5 (523, 587, 659 Hz) which are no DTMF frequency; notes are single sines, never a DTMF pair
MELODY_HZ = (523.25, 587.33, 659.25, 784.0, 880.0, 1046.5)
MOH_DBM0 = -22.0


def hold_music(seconds: float = 16.0, seed: int = 7) -> np.ndarray:
    """A gentle looping tune: notes of 0.4 s with soft attack and decay at ``MOH_DBM0``.

    Returns
    -------
    x : ndarray, shape (seconds * 8000,), int16, linear PCM at 8 kHz
    """
    rng = np.random.default_rng(seed)
    note_n = int(0.4 * RATE)
    t = np.arange(note_n) / RATE
    env = np.minimum(1.0, t / 0.03) * np.exp(-3.0 * t)  # 30 ms attack, then a bell-like decay
    amp = dbm0_to_amplitude(MOH_DBM0)
    idx = 2
    notes = []
    for _ in range(int(seconds / 0.4)):
        idx = int(np.clip(idx + rng.choice((-2, -1, 1, 2)), 0, len(MELODY_HZ) - 1))  # a stepwise walk
        notes.append(amp * env * np.sin(2 * np.pi * MELODY_HZ[idx] * t))
    return np.round(np.concatenate(notes)).astype(np.int16)


def beep_tone() -> np.ndarray:
    """The voicemail beep: 1 kHz for 0.4 s at -12 dBm0. Returns ndarray, shape (3200,), int16."""
    t = np.arange(int(0.4 * RATE)) / RATE
    return np.round(dbm0_to_amplitude(-12.0) * np.sin(2 * np.pi * 1000.0 * t)).astype(np.int16)


def flow_texts(flow: dict) -> dict[str, str]:
    """The prompts a flow's ``text`` fields need, by the name the flow engine plays them under."""
    return {text_prompt(name, node["text"]): node["text"] for name, node in flow["nodes"].items() if "text" in node}


def render_prompts(library: PromptLibrary, cfg: dict) -> dict[str, np.ndarray]:
    """Every prompt the call logic of ``cfg`` can name: ndarray, shape (n,), int16 each."""
    voice = cfg["ivr"]["voice"]
    lang = VOICE_LANG[voice]
    said = caller_texts(cfg, lang)
    texts = {"welcome": cfg["ivr"]["welcome"], **{n: said[n] for n in SPOKEN},
             **{n: messages.text(k, lang) for n, k in AGENT_PROMPTS.items()}, **flow_texts(ivr_flow(cfg))}
    out = {name: library.render(text, voice) for name, text in texts.items()}
    try:
        out["moh"] = library.load_imported("moh")
    except ConfigError:
        out["moh"] = hold_music()
    out["beep"] = beep_tone()
    for name, node in ivr_flow(cfg)["nodes"].items():  # prompts named by the flow: built in, or imported
        for field in ("prompt", "invalid"):
            wanted = node.get(field)
            if wanted is not None and wanted not in out:
                try:
                    out[wanted] = library.load_imported(wanted)
                except ConfigError:
                    raise ConfigError(f"ivr.flow: node {name!r} field {field!r}: prompt {wanted!r} is neither "
                                      f"built in ({', '.join(sorted(out))}) nor imported") from None
    return out
