"""The media switch: one mixing matrix over all ports, ``tx = M @ rx``.

A bridge sets two symmetric entries; later, conferences are cliques, and a
supervisor's listen, whisper and barge are single rows or columns of the same
matrix, so every mix costs one matrix product per tick whatever the topology.
"""

from __future__ import annotations

import numpy as np

from .errors import ApplianceError


class Switch:
    """Mixing matrix for ``n_ports`` ports.

    ``mix(rx, out)`` computes ``out = M @ rx`` with ``rx`` shape (n_ports, 160)
    float32 (linear PCM) into ``out`` float32 of the same shape, with no allocation.
    """

    def __init__(self, n_ports: int) -> None:
        self.n = n_ports
        self.m = np.zeros((n_ports, n_ports), np.float32)
        self._any = False

    def _check(self, *ports: int) -> None:
        for p in ports:
            if not 0 <= p < self.n:
                raise ApplianceError(f"switch port {p} is out of range; allowed 0..{self.n - 1}")

    def connect(self, a: int, b: int) -> None:
        """Bridge ``a`` and ``b``: each hears the other at unity gain."""
        self._check(a, b)
        if a == b:
            raise ApplianceError(f"cannot bridge port {a} to itself")
        self.m[a, b] = self.m[b, a] = 1.0
        self._any = True

    def hear(self, listener: int, talker: int, on: bool = True) -> None:
        """One way: ``listener`` hears ``talker`` at unity gain, or not."""
        self._check(listener, talker)
        if listener == talker:
            raise ApplianceError(f"port {listener} cannot hear itself")
        self.m[listener, talker] = 1.0 if on else 0.0
        self._any = bool(self.m.any())

    def isolate(self, port: int) -> None:
        """``port`` hears nobody and nobody hears it."""
        self._check(port)
        self.m[port, :] = 0.0
        self.m[:, port] = 0.0
        self._any = bool(self.m.any())

    def disconnect(self, a: int, b: int) -> None:
        self._check(a, b)
        self.m[a, b] = self.m[b, a] = 0.0
        self._any = bool(self.m.any())

    def mix(self, rx: np.ndarray, out: np.ndarray) -> None:
        if self._any:
            np.matmul(self.m, rx, out=out)
        else:
            out.fill(0.0)
