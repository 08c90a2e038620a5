"""Speech for IVR flows' spoken answers (``flowrun.Say``): text rendered by TTS off the 20 ms tick.

``SpeechWorker.submit(key, text)`` hands the text to a thread or two that call the
render function (``PromptLibrary.render`` with the voice bound: slow on a cache
miss, a subprocess); ``results()``, called from the tick, takes the clips that are
ready as ``(key, samples, error)``. A render that raises (espeak-ng failing, an
empty text) gives ``samples`` None and the error's text, so the runtime can go on
rather than leave the caller in silence.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from .offtick import OffTick

log = logging.getLogger(__name__)


class SpeechWorker:
    """Renders texts off the tick; results collected by the tick.

    Parameters
    ----------
    render : callable(str) -> ndarray, shape (n,), int16, linear PCM at 8 kHz
        E.g. ``functools.partial(library.render, voice="cmn")``.
    threads : int
        Renders at once; 0 renders inside ``submit`` (virtual time: deterministic; the
        clip is still only handed out by the next ``results()``).
    """

    def __init__(self, render: Callable[[str], np.ndarray], threads: int = 2) -> None:
        self._render = render
        self._work = OffTick("ivr-speech", threads)

    def submit(self, key: object, text: str) -> None:
        self._work.submit(lambda: self._speak(key, text))

    def _speak(self, key: object, text: str) -> tuple[object, np.ndarray | None, str | None]:
        try:
            x = self._render(text)
        except Exception as exc:  # noqa: BLE001 (any failure must still answer, or the caller waits forever)
            error = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("speaking %r failed: %s", text[:40], error)
            return key, None, error
        if not isinstance(x, np.ndarray) or x.ndim != 1 or x.dtype != np.int16:
            what = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            return key, None, f"render gave {what}, expected int16 samples of shape (n,)"
        return key, x, None

    def results(self) -> list[tuple[object, np.ndarray | None, str | None]]:
        """``(key, samples, error)`` of the renders finished since the last call; never blocks.

        ``samples`` is ndarray, shape (n,), int16, 8 kHz, with ``error`` None; or None with ``error`` a text.
        """
        return self._work.results()

    def wait(self, timeout: float | None = None) -> bool:
        """Virtual time only: block until every render has finished (True) or ``timeout`` passes (False)."""
        return self._work.wait(timeout)

    def close(self) -> None:
        self._work.close()
