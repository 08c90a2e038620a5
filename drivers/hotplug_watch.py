"""What is plugged in now: udev's events folded into one entry per device, and the asyncio watcher.

`Inventory` keeps one entry per physical device (a modem is a USB device, its
interfaces and one tty per serial port) and reports only real changes;
`Hotplug` enumerates what is already plugged (a card present at boot), then
watches a ``pyudev.Monitor`` whose fd sits in the loop through ``add_reader``
(no thread), and calls back with every change.
"""

from __future__ import annotations

import errno
import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

from appliance.errors import DriverError
from drivers.hotplug import SUBSYSTEMS, HotplugEvent, classify

log = logging.getLogger(__name__)
_SECTOR = 512  # sysfs "size" counts 512-byte sectors whatever the medium
_BATCH = 64  # udev events handled per wake-up, so a burst cannot hold the loop for long


def _natural(node: str) -> list[Any]:
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", node)]


# --- the inventory -------------------------------------------------------------------


@dataclass
class _Entry:
    base: HotplugEvent  # from the device's own event, or from the first part seen
    whole: bool  # the device's own event was seen
    parts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # part DEVPATH -> its ttys

    def view(self) -> HotplugEvent:
        ttys = sorted({t for nodes in self.parts.values() for t in nodes}, key=_natural)
        return replace(self.base, present=True, part="", ttys=tuple(ttys))


class Inventory:
    """What is plugged in now, one entry per device, fed with `classify`'s events."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def apply(self, event: HotplugEvent) -> HotplugEvent | None:
        """Fold one event in; return the device's new state if it changed, else None.

        A duplicate add (udev's add for a USB device, then bind, then its interfaces)
        changes nothing; a tty adds a node to its modem; removing an interface or tty
        removes only its nodes, removing the device removes the entry; a remove of a
        device never seen is ignored. A removal returns the last state with present False.
        """
        entry = self._entries.get(event.id)
        before = entry.view() if entry else None
        if event.present:
            if entry is None:
                entry = self._entries[event.id] = _Entry(event, whole=not event.part)
            elif not event.part:
                entry.base, entry.whole = event, True
            if event.part:
                entry.parts[event.part] = event.ttys
            after = entry.view()
            return after if after != before else None
        if entry is None:
            return None
        if event.part:
            entry.parts.pop(event.part, None)
            if entry.whole or entry.parts:
                after = entry.view()
                return after if after != before else None
        del self._entries[event.id]
        return replace(before, present=False)

    def forget(self, devpath: str) -> HotplugEvent | None:
        """Remove what a remove event names when `classify` could not place it (udev sent no properties)."""
        if devpath in self._entries:
            return self.apply(replace(self._entries[devpath].base, present=False, part=""))
        for entry in self._entries.values():
            if devpath in entry.parts:
                return self.apply(replace(entry.base, present=False, part=devpath))
        return None

    def reset(self, events: Iterable[HotplugEvent]) -> list[HotplugEvent]:
        """Replace the contents with a fresh enumeration; return the changes, removals first."""
        fresh = Inventory()
        for event in events:
            fresh.apply(event)
        old, new = {e.id: e for e in self.present()}, {e.id: e for e in fresh.present()}
        self._entries = fresh._entries
        gone = [replace(e, present=False) for i, e in old.items() if i not in new]
        return gone + [e for i, e in new.items() if old.get(i) != e]

    def present(self) -> list[HotplugEvent]:
        """Every device present now, by kind then id."""
        return sorted((e.view() for e in self._entries.values()), key=lambda e: (e.kind, e.id))


# --- the asyncio glue ----------------------------------------------------------------


def scan(context: Any) -> list[HotplugEvent]:
    """Classify every device already present, as "add" events, from a pyudev context."""
    events = []
    for subsystem in SUBSYSTEMS:
        for device in context.list_devices(subsystem=subsystem):
            event = classify("add", dict(device.properties), size_sectors=_size(device, "add"))
            if event is not None:
                events.append(event)
    return events


def _size(device: Any, action: str) -> int | None:
    if action == "remove" or device.properties.get("SUBSYSTEM") != "block":
        return None  # after a remove, sysfs has nothing left to read
    try:
        return int(device.attributes.asint("size"))
    except (KeyError, ValueError, OSError, AttributeError):
        return None


class Hotplug:
    """Watch udev from an asyncio loop and call back with every change of the inventory.

    Parameters
    ----------
    context : pyudev.Context, optional
        Used to enumerate what is present at start; a real one by default.
    monitor : pyudev.Monitor, optional
        Its ``filter_by``, ``start``, ``fileno`` and ``poll`` are used; by default a
        netlink monitor of udev events on `context`. Tests pass fakes of both.
    """

    def __init__(self, context: Any = None, monitor: Any = None) -> None:
        if context is None or monitor is None:
            import pyudev  # only here, so that tests with fakes need no udev

            context = context if context is not None else pyudev.Context()
            monitor = monitor if monitor is not None else pyudev.Monitor.from_netlink(context)
        self._context, self._monitor = context, monitor
        self.inventory = Inventory()
        self._loop: Any = None
        self._callback: Callable[[HotplugEvent], None] | None = None
        self._filtered = False

    def start(self, loop: Any, callback: Callable[[HotplugEvent], None]) -> None:
        """Report what is present now through `callback`, then every change as it happens."""
        if self._loop is not None:
            raise DriverError("hotplug: start() called twice without stop()")
        if not self._filtered:
            for subsystem in SUBSYSTEMS:
                self._monitor.filter_by(subsystem)
            self._filtered = True
        # listen before enumerating, so a device plugged in between is not missed;
        # the inventory folds the duplicate this may give
        self._monitor.start()
        self._loop, self._callback = loop, callback
        self._resync()
        loop.add_reader(self._monitor.fileno(), self._on_readable)

    def stop(self) -> None:
        """Stop watching; the inventory keeps its last state."""
        if self._loop is not None:
            self._loop.remove_reader(self._monitor.fileno())
            self._loop = self._callback = None

    def present(self) -> list[HotplugEvent]:
        """Every device present now."""
        return self.inventory.present()

    def _resync(self) -> None:
        for change in self.inventory.reset(scan(self._context)):
            self._emit(change)

    def _on_readable(self) -> None:
        for _ in range(_BATCH):
            try:
                device = self._monitor.poll(timeout=0)
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                # the kernel dropped events when our socket buffer overflowed: enumerate again
                log.warning("hotplug: udev events were lost (%s); enumerating again", exc)
                self._resync()
                return
            if device is None or self._callback is None:
                return
            action = device.action or "add"
            props = dict(device.properties)
            event = classify(action, props, size_sectors=_size(device, action))
            if event is not None:
                change = self.inventory.apply(event)
            elif action == "remove":
                change = self.inventory.forget(props.get("DEVPATH", ""))
            else:
                change = None
            if change is not None:
                self._emit(change)

    def _emit(self, change: HotplugEvent) -> None:
        log.info("hotplug: %s %s %s %s", change.kind, "present" if change.present else "gone",
                 change.description, change.ttys or change.devnode or change.id)
        if self._callback is not None:
            self._callback(change)
