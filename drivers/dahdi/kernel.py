"""The system calls the DAHDI driver makes, behind one small interface: the real one and its contract.

Channel logic calls only these five methods, so tests serve them from
``drivers.dahdi.fakekernel`` and the same code runs against ``/dev/dahdi``.

Contract (the real kernel's, which the fake keeps):

- errors are ``OSError`` with the kernel's ``errno`` (EAGAIN when a non-blocking
  descriptor has nothing to read or no room to write; ELAST, 500, on read and write
  while a DAHDI event waits for ``DAHDI_GETEVENT``);
- ``ioctl`` takes a writable buffer over the argument (``ffi.buffer`` of an ffi
  struct or ``int``), which the kernel may fill in, and returns the call's result.
  Every DAHDI ioctl takes a *pointer*, even those whose argument is one int, so a
  plain int is no valid argument: the kernel would read it as an address (EFAULT).

A kernel whose descriptors are real ones says so with ``pollable = True``: only
then can the DAHDI card watch them with epoll (``DahdiCard.attach``).
"""

from __future__ import annotations

import fcntl
import os
from typing import Protocol, runtime_checkable


@runtime_checkable
class Kernel(Protocol):
    def open(self, path: str, flags: int) -> int:
        """Open ``path`` with ``os.O_*`` ``flags``; return the descriptor."""

    def close(self, fd: int) -> None:
        ...

    def read(self, fd: int, n: int) -> bytes:
        """Up to ``n`` bytes; a DAHDI channel returns one block."""

    def write(self, fd: int, data: bytes) -> int:
        """Write ``data``; return how many bytes were taken."""

    def ioctl(self, fd: int, request: int, arg: object) -> int:
        """Run ioctl ``request`` on a writable buffer ``arg``; the kernel may change the buffer in place."""


class OsKernel:
    """The real system calls: ``os`` and ``fcntl.ioctl`` on mutable buffers."""

    pollable = True

    def open(self, path: str, flags: int) -> int:
        return os.open(path, flags)

    def close(self, fd: int) -> None:
        os.close(fd)

    def read(self, fd: int, n: int) -> bytes:
        return os.read(fd, n)

    def write(self, fd: int, data: bytes) -> int:
        return os.write(fd, data)

    def ioctl(self, fd: int, request: int, arg: object) -> int:
        # mutate_flag=True: the kernel's answer lands in the caller's ffi buffer
        return fcntl.ioctl(fd, request, arg, True)
