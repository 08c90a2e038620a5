"""Login sessions of the web process (the users and their password hashes are in ``appliance.users``)."""

from __future__ import annotations

import secrets
import threading
from typing import Callable

IDLE_S = 8 * 3600.0


class Sessions:
    """Random session tokens mapped to user names, dropped after ``idle_s`` without use."""

    def __init__(self, clock: Callable[[], float], idle_s: float = IDLE_S) -> None:
        self._clock = clock
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._by_token: dict[str, tuple[str, float]] = {}

    def create(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._by_token[token] = (user, self._clock())
        return token

    def user(self, token: str | None) -> str | None:
        """The user of a live ``token`` (renewing its idle timer), else None."""
        if not token:
            return None
        now = self._clock()
        with self._lock:
            # sweep expired ones here: no timer thread needed
            for t in [t for t, (_, seen) in self._by_token.items() if now - seen > self.idle_s]:
                del self._by_token[t]
            entry = self._by_token.get(token)
            if entry is None:
                return None
            self._by_token[token] = (entry[0], now)
            return entry[0]

    def drop(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)
