"""Hotplug: voice cards, USB GSM modems and USB disks as udev reports them coming and going.

Three layers, so that each can be tested alone:

- `classify` maps one udev event (an action and the device's property dict, as
  ``pyudev.Device.properties`` gives it) to a `HotplugEvent`, or to None for the
  devices the box does not care about. Pure: no sysfs, no socket, never raises.
- `Inventory` (``drivers.hotplug_watch``) folds those events into what is present now.
- `Hotplug` (``drivers.hotplug_watch``) is the asyncio glue around ``pyudev.Monitor``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import Mapping

from drivers.hotplug_ids import MODEM_VENDORS, NOT_VOICE, VOICE_PCI, VOICE_USB, VOICE_VENDORS

log = logging.getLogger(__name__)

KINDS = ("voice_card", "gsm_modem", "usb_disk")
SUBSYSTEMS = ("pci", "usb", "tty", "block")
# unbind only loses the driver: the device is still plugged in
_PRESENT_ACTIONS = frozenset({"add", "change", "bind", "unbind"})
_SECTOR = 512  # sysfs "size" and ID_PART_ENTRY_SIZE count 512-byte sectors whatever the medium

_TTY = re.compile(r"/dev/tty(?:USB|ACM)\d+")
_USB_DEV = r"(?:usb\d+|\d+-\d+(?:\.\d+)*)"
_USB_IFACE = r"\d+-\d+(?:\.\d+)*:\d+\.\d+"
# the USB device that an interface, or a tty below an interface, belongs to
_USB_PARENT = re.compile(rf"^(/devices/.*?/{_USB_DEV})/{_USB_IFACE}(?:/|$)")
_HEX16 = re.compile(r"[0-9A-Fa-f]{1,4}")
_ESCAPE = re.compile(rb"\\x([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class HotplugEvent:
    """A device the box cares about appeared, changed or went away.

    kind : str
        "voice_card", "gsm_modem" or "usb_disk".
    present : bool
        False when it went away.
    id : str
        Stable for the device's life: the DEVPATH of the PCI function, of the USB
        device (also for events of its interfaces and ttys), or of the disk partition.
    description : str
        For people: vendor and model, with the hexadecimal ids.
    vendor_id, model_id : int
        PCI or USB ids; 0 when udev did not give them (a disk without ID_VENDOR_ID).
    driver : str
        voice_card on PCI: the kernel driver bound now, "" when none (then DAHDI cannot use it).
    module : str
        voice_card: the kernel module that serves this model, "" when unknown.
    ttys : tuple of str
        gsm_modem: its serial device nodes in natural order (ttyUSB2 before ttyUSB10);
        the SMS code probes them for the AT port. Empty until the tty events arrive.
    devnode, label, fs_type : str
        usb_disk: the node to mount, the file system label, its type ("vfat").
    size_bytes : int or None
        usb_disk: size in bytes, None when unknown.
    part : str
        Only in events from `classify`: DEVPATH of the interface or tty that the event
        came from, "" for the device itself. The inventory's events always have "".
    """

    kind: str
    present: bool
    id: str
    description: str
    vendor_id: int = 0
    model_id: int = 0
    driver: str = ""
    module: str = ""
    ttys: tuple[str, ...] = ()
    devnode: str = ""
    label: str = ""
    fs_type: str = ""
    size_bytes: int | None = None
    part: str = ""


# --- the classifier ------------------------------------------------------------------


def classify(action: str, properties: Mapping[str, str], *, size_sectors: int | None = None) -> HotplugEvent | None:
    """Map one udev event to the event the box cares about, or None.

    Parameters
    ----------
    action : str
        "add", "remove", "change", "bind" or "unbind"; a device found by enumeration is an "add".
    properties : mapping of str to str
        The device's udev properties (SUBSYSTEM, DEVTYPE, DEVPATH, DEVNAME, PCI_ID,
        PCI_SUBSYS_ID, PRODUCT, ID_VENDOR_ID, ID_MODEL_ID, ID_BUS, ID_FS_TYPE, ...).
    size_sectors : int, optional
        A block device's sysfs ``size`` in 512-byte sectors, which udev does not carry
        for a file system without a partition table.

    Returns
    -------
    HotplugEvent or None
        None for devices of no interest and for bad input (missing keys, ids that are
        not hexadecimal, unknown actions), which is logged at debug level, never raised.
    """
    try:
        props = {str(k): v for k, v in properties.items() if isinstance(v, str)}
    except (AttributeError, TypeError):
        log.debug("hotplug: properties are not a mapping: %r", properties)
        return None
    if action != "remove" and action not in _PRESENT_ACTIONS:
        log.debug("hotplug: unknown action %r for %s", action, props.get("DEVPATH"))
        return None
    devpath, subsystem = props.get("DEVPATH", ""), props.get("SUBSYSTEM", "")
    if not devpath.startswith("/devices/") or not subsystem:
        log.debug("hotplug: event without DEVPATH or SUBSYSTEM: %r", props)
        return None
    present = action != "remove"
    if subsystem == "pci":
        return _pci(present, devpath, props)
    if subsystem == "usb":
        return _usb(present, devpath, props)
    if subsystem == "tty":
        return _tty(present, devpath, props)
    if subsystem == "block":
        return _block(action, devpath, props, size_sectors)
    return None


def _pci(present: bool, devpath: str, props: dict[str, str]) -> HotplugEvent | None:
    ids = _hex_pair(props, "PCI_ID", ":")
    sub = _hex_pair(props, "PCI_SUBSYS_ID", ":") if "PCI_SUBSYS_ID" in props else (None, None)
    if ids is None or sub is None:
        return None
    (vendor, device), (subvendor, subdevice) = ids, sub
    if (vendor, device) in NOT_VOICE:
        return None
    for key in ((vendor, device, subvendor, subdevice), (vendor, device, subvendor, None), (vendor, device, None, None)):
        if key in VOICE_PCI:
            name, module = VOICE_PCI[key]
            break
    else:
        if vendor not in VOICE_VENDORS:
            return None
        name = f"{VOICE_VENDORS[vendor]} {props.get('ID_MODEL_FROM_DATABASE') or 'card'}"
        module = ""
    return HotplugEvent("voice_card", present, devpath, f"{name} ({vendor:04x}:{device:04x})", vendor, device,
                        driver=props.get("DRIVER", ""), module=module)


def _usb(present: bool, devpath: str, props: dict[str, str]) -> HotplugEvent | None:
    devtype = props.get("DEVTYPE", "")
    if devtype == "usb_device":
        device_id, part = devpath, ""
    elif devtype == "usb_interface":
        parent = _USB_PARENT.match(devpath)
        if parent is None:
            log.debug("hotplug: USB interface path without its device: %s", devpath)
            return None
        device_id, part = parent.group(1), devpath
    else:
        return None
    ids = _usb_ids(props)
    if ids is None:
        return None
    return _usb_event(present, device_id, part, ids, props)


def _tty(present: bool, devpath: str, props: dict[str, str]) -> HotplugEvent | None:
    node = props.get("DEVNAME", "")
    if not _TTY.fullmatch(node):
        return None  # consoles, ptys, on-board UARTs
    parent = _USB_PARENT.match(devpath)
    if parent is None:
        log.debug("hotplug: USB tty %s outside a USB interface: %s", node, devpath)
        return None
    ids = _usb_ids(props)
    if ids is None:
        return None
    event = _usb_event(present, parent.group(1), devpath, ids, props)
    if event is None or event.kind != "gsm_modem":
        return None
    return replace(event, ttys=(node,))


def _usb_event(present: bool, device_id: str, part: str, ids: tuple[int, int],
               props: dict[str, str]) -> HotplugEvent | None:
    vendor, product = ids
    if (vendor, product) in VOICE_USB or vendor == 0xE4E4:
        name, module = VOICE_USB.get((vendor, product), ("Xorcom Astribank", "xpp_usb"))
        return HotplugEvent("voice_card", present, device_id, f"{name} ({vendor:04x}:{product:04x})",
                            vendor, product, module=module, part=part)
    maker = MODEM_VENDORS.get(vendor)
    if maker is None or (maker[1] is not None and product not in maker[1]):
        return None
    model = (props.get("ID_MODEL_FROM_DATABASE") or _decode(props.get("ID_MODEL_ENC", ""))
             or props.get("ID_MODEL", "").replace("_", " ") or "modem")
    return HotplugEvent("gsm_modem", present, device_id, f"{maker[0]} {model} ({vendor:04x}:{product:04x})",
                        vendor, product, part=part)


def _block(action: str, devpath: str, props: dict[str, str], size_sectors: int | None) -> HotplugEvent | None:
    node = props.get("DEVNAME", "")
    if props.get("ID_BUS") != "usb" or props.get("DEVTYPE") not in ("disk", "partition") or not node:
        return None
    if props.get("ID_TYPE") == "cd" or props.get("ID_CDROM") == "1":
        return None  # e.g. the driver CD that a modem shows before usb_modeswitch
    ids = _usb_ids(props) if "ID_VENDOR_ID" in props else (0, 0)
    if ids is None:
        return None
    vendor, model = ids
    fs_type = props.get("ID_FS_TYPE", "")
    mountable = bool(fs_type) and props.get("ID_FS_USAGE", "filesystem") == "filesystem"
    if action != "remove" and not mountable:
        if action != "change":
            return None  # a disk holding a partition table, swap, LUKS, RAID member
        action = "remove"  # its file system was wiped or the medium pulled: no longer usable
    if size_sectors is None and props.get("ID_PART_ENTRY_SIZE", "").isdigit():
        size_sectors = int(props["ID_PART_ENTRY_SIZE"])
    description = " ".join(filter(None, (
        _decode(props.get("ID_VENDOR_ENC", "")) or props.get("ID_VENDOR", "").replace("_", " "),
        _decode(props.get("ID_MODEL_ENC", "")) or props.get("ID_MODEL", "").replace("_", " "),
    ))) or "USB disk"
    label = _decode(props.get("ID_FS_LABEL_ENC", "")) or props.get("ID_FS_LABEL", "")
    return HotplugEvent("usb_disk", action != "remove", devpath, description, vendor, model, devnode=node,
                        label=label, fs_type=fs_type if mountable else "",
                        size_bytes=None if size_sectors is None else size_sectors * _SECTOR)


def _usb_ids(props: dict[str, str]) -> tuple[int, int] | None:
    """USB vendor and product: udev's ID_VENDOR_ID/ID_MODEL_ID, else the kernel's PRODUCT."""
    if "ID_VENDOR_ID" in props and "ID_MODEL_ID" in props:
        vendor = _hex16(props["ID_VENDOR_ID"], "ID_VENDOR_ID")
        product = None if vendor is None else _hex16(props["ID_MODEL_ID"], "ID_MODEL_ID")
        return None if vendor is None or product is None else (vendor, product)
    if "PRODUCT" in props:  # "12d1/1506/102": vendor/product/bcdDevice, hex without padding
        return _hex_pair(props, "PRODUCT", "/", parts=3)
    log.debug("hotplug: USB device %s without ids", props.get("DEVPATH"))
    return None


def _hex_pair(props: dict[str, str], key: str, sep: str, parts: int = 2) -> tuple[int, int] | None:
    fields = props.get(key, "").split(sep)
    if len(fields) != parts:
        log.debug("hotplug: %s=%r is not %d hexadecimal fields", key, props.get(key), parts)
        return None
    first = _hex16(fields[0], key)
    second = None if first is None else _hex16(fields[1], key)
    return None if first is None or second is None else (first, second)


def _hex16(text: str, key: str) -> int | None:
    if not _HEX16.fullmatch(text):
        log.debug("hotplug: %s=%r is not a 16-bit hexadecimal id", key, text)
        return None
    return int(text, 16)


def _decode(encoded: str) -> str:
    """Undo udev's ``\\xNN`` escaping (ID_*_ENC); FAT labels written by Windows in China are GBK."""
    raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), encoded.encode("utf-8", "surrogateescape"))
    for codec in ("utf-8", "gb18030"):
        try:
            return raw.decode(codec).strip()
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", "replace").strip()
