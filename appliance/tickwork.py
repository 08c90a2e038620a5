"""Work the 20 ms tick hands to threads and takes back when done: IVR lookups, spoken answers, recordings played
over the phone (a part of ``appliance.runtime.Runtime``).

A ``Say`` or a played recording is like a ``Play`` whose clip comes later: the port
falls silent until it is in, and a per-port generation (``_say_gen``) drops a clip
whose port was stopped, replaced or hung up meanwhile, so it never reaches that
port's next caller. In virtual time the loop waits for outstanding work before time
moves on, so runs are the same whatever the host's speed.
"""

from __future__ import annotations

import logging

import numpy as np

from .actions import HttpResult
from .errors import ApplianceError
from .flowrun import HttpLookup

log = logging.getLogger("appliance.runtime")

VIRTUAL_WAIT_S = 60.0  # virtual time waits this long (host seconds) at most for a lookup or a rendering
EMPTY_CLIP = np.zeros(0, np.int16)  # an empty clip: its PromptDone comes at once


class OffTickWork:
    def _lookup(self, a: HttpLookup) -> None:
        if self.lookups is None:
            self._refused.append(HttpResult(a.call_id, False, {"error": "no lookup worker"}))
            return
        self.lookups.submit(a.call_id, a.url, a.timeout_s)
        self._lookups_out += 1

    def _say(self, port: int, text: str, now: float) -> None:
        """Like a Play whose clip comes later: the port falls silent until the rendering is in."""
        self.player.stop(port)
        self._say_gen[port] += 1
        if self.speech is None:
            log.warning("no speech worker: port %d skips saying %r", port, text[:40])
            self.player.play_clip(port, self._no_clip, now)
            return
        self.speech.submit((port, self._say_gen[port]), text)
        self._speech_out += 1

    def _play_recording(self, port: int, number: int, now: float) -> None:
        """Like a ``Say``: silence until the recording is loaded off the tick (``_collect`` plays it)."""
        self.player.stop(port)
        self._say_gen[port] += 1
        if self.playback is None:
            self._play_failed(port, now)
            return
        self.playback.submit((port, self._say_gen[port]), number)
        self._playback_out += 1

    def _play_failed(self, port: int, now: float) -> None:
        try:
            self.player.play(port, "code.failed", now)
        except ApplianceError:
            self.player.play_clip(port, EMPTY_CLIP, now)

    def _collect(self, now: float) -> list:
        """Start the renderings that are in and still wanted; the lookups' answers as ``HttpResult`` events."""
        events, self._refused = self._refused, []
        if self._speech_out:
            for (port, gen), samples, error in self.speech.results():
                self._speech_out -= 1
                if gen != self._say_gen[port]:
                    continue  # stopped, replaced or hung up while rendering: never to the port's next caller
                if samples is None:
                    log.warning("speech on port %d failed (%s); the flow goes on as if it had been said", port, error)
                    samples = self._no_clip
                self.player.play_clip(port, samples, now)
        if self._playback_out:
            for (port, gen), samples, error in self.playback.results():
                self._playback_out -= 1
                if gen != self._say_gen[port]:
                    continue  # hung up (or stopped) while it was loading
                if samples is None:
                    self._play_failed(port, now)
                else:
                    self.player.play_clip(port, samples, now)
        if self._lookups_out:
            for key, ok, fields in self.lookups.results():
                self._lookups_out -= 1
                events.append(HttpResult(key, ok, fields))
        return events

    def _finish_work(self) -> None:
        """Virtual time only: let outstanding lookups and renderings finish before time moves on."""
        for name, worker, out in (("lookups", self.lookups, self._lookups_out),
                                  ("speech", self.speech, self._speech_out),
                                  ("recordings", self.playback, self._playback_out)):
            if out and not worker.wait(VIRTUAL_WAIT_S):
                log.warning("%d %s still unfinished after %.0f s; virtual time goes on without them",
                            out, name, VIRTUAL_WAIT_S)
