"""Hotplug: recorded udev properties classified, folded into the inventory, and fed through asyncio."""

from __future__ import annotations

import asyncio
import errno
import logging
import os

from dataclasses import replace

import pytest

from appliance.errors import DriverError
from drivers.hotplug import SUBSYSTEMS, HotplugEvent, classify
from drivers.hotplug_watch import Hotplug, Inventory, scan

# --- recorded devices, as `udevadm info` prints their properties ----------------------

TE131 = {  # Digium TE131 single-span E1, PCI Express
    "DEVPATH": "/devices/pci0000:00/0000:00:1c.4/0000:03:00.0",
    "DRIVER": "wcte13xp",
    "PCI_CLASS": "78000",
    "PCI_ID": "D161:800A",
    "PCI_SUBSYS_ID": "D161:800A",
    "PCI_SLOT_NAME": "0000:03:00.0",
    "MODALIAS": "pci:v0000D161d0000800Asv0000D161sd0000800Abc07sc80i00",
    "SUBSYSTEM": "pci",
    "USEC_INITIALIZED": "4811532",
    "ID_PCI_CLASS_FROM_DATABASE": "Communication controller",
    "ID_PCI_SUBCLASS_FROM_DATABASE": "Communication controller",
    "ID_VENDOR_FROM_DATABASE": "Digium, Inc.",
    "ID_MODEL_FROM_DATABASE": "Wildcard TE133 single-span T1/E1/J1 card (PCI Express)",
}
A1200P = {  # OpenVox A1200P: a Tiger Jet 320 bridge, known by OpenVox's subvendor
    "DEVPATH": "/devices/pci0000:00/0000:00:1e.0/0000:05:01.0",
    "DRIVER": "opvxa1200",
    "PCI_CLASS": "78000",
    "PCI_ID": "E159:0001",
    "PCI_SUBSYS_ID": "9599:0003",
    "PCI_SLOT_NAME": "0000:05:01.0",
    "MODALIAS": "pci:v0000E159d00000001sv00009599sd00000003bc07sc80i00",
    "SUBSYSTEM": "pci",
    "USEC_INITIALIZED": "4790021",
    "ID_VENDOR_FROM_DATABASE": "Tiger Jet Network Inc. / ICP DAS",
    "ID_MODEL_FROM_DATABASE": "Tiger3XX Modem/ISDN interface",
}
SANGOMA_A500 = {  # a Sangoma product missing from our table: known by its vendor
    "DEVPATH": "/devices/pci0000:00/0000:00:1c.0/0000:02:00.0",
    "PCI_CLASS": "28000",
    "PCI_ID": "1923:0600",
    "PCI_SUBSYS_ID": "1923:0600",
    "PCI_SLOT_NAME": "0000:02:00.0",
    "MODALIAS": "pci:v00001923d00000600sv00001923sd00000600bc02sc80i00",
    "SUBSYSTEM": "pci",
    "ID_VENDOR_FROM_DATABASE": "Sangoma Technologies Corp.",
}
TELES_ISDN = {  # the same Tiger Jet chip on a plain ISDN adapter: not a voice card
    "DEVPATH": "/devices/pci0000:00/0000:00:1e.0/0000:05:02.0",
    "DRIVER": "netjet",
    "PCI_CLASS": "20400",
    "PCI_ID": "E159:0001",
    "PCI_SUBSYS_ID": "00A7:0001",
    "PCI_SLOT_NAME": "0000:05:02.0",
    "SUBSYSTEM": "pci",
}

E3372 = {  # Huawei E3372 in stick (serial) mode
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-2",
    "DEVNAME": "/dev/bus/usb/001/005",
    "DEVTYPE": "usb_device",
    "DRIVER": "usb",
    "PRODUCT": "12d1/1506/102",
    "TYPE": "0/0/0",
    "BUSNUM": "001",
    "DEVNUM": "005",
    "MAJOR": "189",
    "MINOR": "4",
    "SUBSYSTEM": "usb",
    "USEC_INITIALIZED": "912345678",
    "ID_BUS": "usb",
    "ID_VENDOR": "HUAWEI_MOBILE",
    "ID_VENDOR_ENC": "HUAWEI_MOBILE",
    "ID_VENDOR_ID": "12d1",
    "ID_MODEL": "HUAWEI_MOBILE",
    "ID_MODEL_ENC": "HUAWEI_MOBILE",
    "ID_MODEL_ID": "1506",
    "ID_REVISION": "0102",
    "ID_SERIAL": "HUAWEI_MOBILE_HUAWEI_MOBILE",
    "ID_USB_INTERFACES": ":ff0201:ff0202:ff0212:ff0216:",
    "ID_VENDOR_FROM_DATABASE": "Huawei Technologies Co., Ltd.",
    "ID_MODEL_FROM_DATABASE": "Modem/Networkcard",
    "ID_PATH": "pci-0000:00:14.0-usb-0:2",
    "ID_PATH_TAG": "pci-0000_00_14_0-usb-0_2",
}
E3372_IF0 = {  # interfaces carry the kernel's PRODUCT, not udev's ID_VENDOR_ID
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0",
    "DEVTYPE": "usb_interface",
    "DRIVER": "option",
    "PRODUCT": "12d1/1506/102",
    "TYPE": "0/0/0",
    "INTERFACE": "255/2/1",
    "MODALIAS": "usb:v12D1p1506d0102dc00dsc00dp00icFFisc02ip01in00",
    "SUBSYSTEM": "usb",
    "ID_VENDOR_FROM_DATABASE": "Huawei Technologies Co., Ltd.",
    "ID_MODEL_FROM_DATABASE": "Modem/Networkcard",
}
E3372_IF3 = {
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.3",
    "DEVTYPE": "usb_interface",
    "DRIVER": "huawei_cdc_ncm",
    "PRODUCT": "12d1/1506/102",
    "TYPE": "0/0/0",
    "INTERFACE": "255/2/22",
    "MODALIAS": "usb:v12D1p1506d0102dc00dsc00dp00icFFisc02ip16in03",
    "SUBSYSTEM": "usb",
    "ID_VENDOR_FROM_DATABASE": "Huawei Technologies Co., Ltd.",
    "ID_MODEL_FROM_DATABASE": "Modem/Networkcard",
}


def _e3372_tty(n: int) -> dict[str, str]:
    # the three ttys differ only in their number and interface; udevadm prints each in full
    return {
        "DEVPATH": f"/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.{n}/ttyUSB{n}/tty/ttyUSB{n}",
        "DEVNAME": f"/dev/ttyUSB{n}",
        "MAJOR": "188",
        "MINOR": str(n),
        "SUBSYSTEM": "tty",
        "USEC_INITIALIZED": "912399001",
        "ID_BUS": "usb",
        "ID_VENDOR": "HUAWEI_MOBILE",
        "ID_VENDOR_ENC": "HUAWEI_MOBILE",
        "ID_VENDOR_ID": "12d1",
        "ID_MODEL": "HUAWEI_MOBILE",
        "ID_MODEL_ENC": "HUAWEI_MOBILE",
        "ID_MODEL_ID": "1506",
        "ID_REVISION": "0102",
        "ID_SERIAL": "HUAWEI_MOBILE_HUAWEI_MOBILE",
        "ID_TYPE": "generic",
        "ID_USB_INTERFACES": ":ff0201:ff0202:ff0212:ff0216:",
        "ID_USB_INTERFACE_NUM": f"0{n}",
        "ID_USB_DRIVER": "option",
        "ID_VENDOR_FROM_DATABASE": "Huawei Technologies Co., Ltd.",
        "ID_MODEL_FROM_DATABASE": "Modem/Networkcard",
        "ID_PATH": f"pci-0000:00:14.0-usb-0:2:1.{n}",
        "DEVLINKS": f"/dev/serial/by-id/usb-HUAWEI_MOBILE_HUAWEI_MOBILE-if0{n}-port0 "
                    f"/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.{n}-port0",
    }


E3372_TTYS = [_e3372_tty(n) for n in range(3)]

EC20 = {  # Quectel EC20 R2.1 behind a hub; it calls itself "Android"
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.3",
    "DEVNAME": "/dev/bus/usb/001/007",
    "DEVTYPE": "usb_device",
    "DRIVER": "usb",
    "PRODUCT": "2c7c/125/318",
    "TYPE": "239/2/1",
    "BUSNUM": "001",
    "DEVNUM": "007",
    "SUBSYSTEM": "usb",
    "ID_BUS": "usb",
    "ID_VENDOR": "Android",
    "ID_VENDOR_ENC": "Android",
    "ID_VENDOR_ID": "2c7c",
    "ID_MODEL": "Android",
    "ID_MODEL_ENC": "Android",
    "ID_MODEL_ID": "0125",
    "ID_REVISION": "0318",
    "ID_SERIAL": "Android_Android_0123456789ABCDEF",
    "ID_USB_INTERFACES": ":ffffff:ff0000:ff0201:",
    "ID_VENDOR_FROM_DATABASE": "Quectel Wireless Solutions Co., Ltd.",
    "ID_MODEL_FROM_DATABASE": "EC25 LTE modem",
}
EC20_TTY2 = {  # interface 2: the AT command port
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.3/1-1.3:1.2/ttyUSB2/tty/ttyUSB2",
    "DEVNAME": "/dev/ttyUSB2",
    "MAJOR": "188",
    "MINOR": "2",
    "SUBSYSTEM": "tty",
    "ID_BUS": "usb",
    "ID_VENDOR": "Android",
    "ID_VENDOR_ID": "2c7c",
    "ID_MODEL": "Android",
    "ID_MODEL_ID": "0125",
    "ID_USB_INTERFACE_NUM": "02",
    "ID_USB_DRIVER": "option",
    "ID_VENDOR_FROM_DATABASE": "Quectel Wireless Solutions Co., Ltd.",
    "ID_MODEL_FROM_DATABASE": "EC25 LTE modem",
}
EC20_TTY10 = {  # a later modem on the same box numbered ttyUSB10: sorts after ttyUSB2
    **EC20_TTY2,
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.3/1-1.3:1.3/ttyUSB10/tty/ttyUSB10",
    "DEVNAME": "/dev/ttyUSB10",
    "MINOR": "10",
    "ID_USB_INTERFACE_NUM": "03",
}

STICK = {  # SanDisk Cruzer Blade, the device itself
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb2/2-1",
    "DEVNAME": "/dev/bus/usb/002/003",
    "DEVTYPE": "usb_device",
    "DRIVER": "usb",
    "PRODUCT": "781/5567/100",
    "SUBSYSTEM": "usb",
    "ID_VENDOR_ID": "0781",
    "ID_MODEL_ID": "5567",
    "ID_VENDOR_FROM_DATABASE": "SanDisk Corp.",
    "ID_MODEL_FROM_DATABASE": "Cruzer Blade",
}
STICK_DISK = {  # its disk holds a partition table, no file system
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb",
    "DEVNAME": "/dev/sdb",
    "DEVTYPE": "disk",
    "DISKSEQ": "12",
    "MAJOR": "8",
    "MINOR": "16",
    "SUBSYSTEM": "block",
    "ID_VENDOR": "SanDisk",
    "ID_VENDOR_ENC": "SanDisk\\x20",
    "ID_VENDOR_ID": "0781",
    "ID_MODEL": "Cruzer_Blade",
    "ID_MODEL_ENC": "Cruzer\\x20Blade\\x20\\x20\\x20\\x20",
    "ID_MODEL_ID": "5567",
    "ID_REVISION": "1.00",
    "ID_SERIAL": "SanDisk_Cruzer_Blade_4C530001220528103214-0:0",
    "ID_SERIAL_SHORT": "4C530001220528103214",
    "ID_TYPE": "disk",
    "ID_INSTANCE": "0:0",
    "ID_BUS": "usb",
    "ID_USB_INTERFACES": ":080650:",
    "ID_USB_INTERFACE_NUM": "00",
    "ID_USB_DRIVER": "usb-storage",
    "ID_PATH": "pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0",
    "ID_PART_TABLE_UUID": "6e2b1f0a",
    "ID_PART_TABLE_TYPE": "dos",
}
STICK_PART = {
    **STICK_DISK,
    "DEVPATH": STICK_DISK["DEVPATH"] + "/sdb1",
    "DEVNAME": "/dev/sdb1",
    "DEVTYPE": "partition",
    "PARTN": "1",
    "MINOR": "17",
    "ID_FS_LABEL": "BACKUP",
    "ID_FS_LABEL_ENC": "BACKUP",
    "ID_FS_UUID": "1A2B-3C4D",
    "ID_FS_UUID_ENC": "1A2B-3C4D",
    "ID_FS_VERSION": "FAT32",
    "ID_FS_TYPE": "vfat",
    "ID_FS_USAGE": "filesystem",
    "ID_PART_ENTRY_SCHEME": "dos",
    "ID_PART_ENTRY_TYPE": "0xc",
    "ID_PART_ENTRY_NUMBER": "1",
    "ID_PART_ENTRY_OFFSET": "2048",
    "ID_PART_ENTRY_SIZE": "30529536",
    "ID_PART_ENTRY_DISK": "8:16",
}

# unrelated devices on the same box
KEYBOARD = {
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-3",
    "DEVNAME": "/dev/bus/usb/001/003",
    "DEVTYPE": "usb_device",
    "DRIVER": "usb",
    "PRODUCT": "413c/2113/110",
    "SUBSYSTEM": "usb",
    "ID_VENDOR": "Dell",
    "ID_VENDOR_ID": "413c",
    "ID_MODEL": "Dell_KB216_Wired_Keyboard",
    "ID_MODEL_ID": "2113",
    "ID_VENDOR_FROM_DATABASE": "Dell Computer Corp.",
    "ID_MODEL_FROM_DATABASE": "KB216 Wired Keyboard",
}
KEYBOARD_IF0 = {
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0",
    "DEVTYPE": "usb_interface",
    "DRIVER": "usbhid",
    "PRODUCT": "413c/2113/110",
    "INTERFACE": "3/1/1",
    "SUBSYSTEM": "usb",
}
NIC = {
    "DEVPATH": "/devices/pci0000:00/0000:00:1f.6",
    "DRIVER": "e1000e",
    "PCI_CLASS": "20000",
    "PCI_ID": "8086:15B8",
    "PCI_SUBSYS_ID": "8086:0000",
    "PCI_SLOT_NAME": "0000:00:1f.6",
    "SUBSYSTEM": "pci",
    "ID_VENDOR_FROM_DATABASE": "Intel Corporation",
    "ID_MODEL_FROM_DATABASE": "Ethernet Connection (2) I219-V",
}
SATA_PART = {
    "DEVPATH": "/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1",
    "DEVNAME": "/dev/sda1",
    "DEVTYPE": "partition",
    "PARTN": "1",
    "SUBSYSTEM": "block",
    "ID_ATA": "1",
    "ID_BUS": "ata",
    "ID_MODEL": "Samsung_SSD_860_EVO_250GB",
    "ID_TYPE": "disk",
    "ID_FS_TYPE": "ext4",
    "ID_FS_USAGE": "filesystem",
    "ID_PART_ENTRY_SIZE": "488394752",
}
LOOP = {
    "DEVPATH": "/devices/virtual/block/loop0",
    "DEVNAME": "/dev/loop0",
    "DEVTYPE": "disk",
    "SUBSYSTEM": "block",
    "ID_FS_TYPE": "squashfs",
    "ID_FS_USAGE": "filesystem",
}
MODEM_CDROM = {  # the driver CD of a Huawei stick before usb_modeswitch
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-5/1-5:1.0/host7/target7:0:0/7:0:0:0/block/sr0",
    "DEVNAME": "/dev/sr0",
    "DEVTYPE": "disk",
    "SUBSYSTEM": "block",
    "ID_BUS": "usb",
    "ID_CDROM": "1",
    "ID_TYPE": "cd",
    "ID_VENDOR_ID": "12d1",
    "ID_MODEL_ID": "1f01",
    "ID_FS_TYPE": "iso9660",
    "ID_FS_USAGE": "filesystem",
    "ID_FS_LABEL": "MobileBrServ",
}
SERIAL_CONSOLE = {
    "DEVPATH": "/devices/pnp0/00:00/00:00:0/00:00:0.0/tty/ttyS0",
    "DEVNAME": "/dev/ttyS0",
    "MAJOR": "4",
    "MINOR": "64",
    "SUBSYSTEM": "tty",
}

TE131_EVENT = HotplugEvent("voice_card", True, TE131["DEVPATH"], "Digium Wildcard TE131/TE133 (d161:800a)",
                           0xD161, 0x800A, driver="wcte13xp", module="wcte13xp")
E3372_ID = E3372["DEVPATH"]
E3372_DESCRIPTION = "Huawei Modem/Networkcard (12d1:1506)"
STICK_EVENT = HotplugEvent("usb_disk", True, STICK_PART["DEVPATH"], "SanDisk Cruzer Blade", 0x0781, 0x5567,
                           devnode="/dev/sdb1", label="BACKUP", fs_type="vfat", size_bytes=30529536 * 512)


def replace_present(event: HotplugEvent, present: bool) -> HotplugEvent:
    return replace(event, present=present)


def _modem(present: bool, ttys: tuple[str, ...] = (), part: str = "") -> HotplugEvent:
    return HotplugEvent("gsm_modem", present, E3372_ID, E3372_DESCRIPTION, 0x12D1, 0x1506, ttys=ttys, part=part)


# --- the classifier ------------------------------------------------------------------


def test_voice_cards_on_pci():
    assert classify("add", TE131) == TE131_EVENT
    assert classify("add", A1200P) == HotplugEvent(
        "voice_card", True, A1200P["DEVPATH"], "OpenVox A1200P/A800P (e159:0001)", 0xE159, 0x0001,
        driver="opvxa1200", module="opvxa1200")
    assert classify("add", SANGOMA_A500) == HotplugEvent(
        "voice_card", True, SANGOMA_A500["DEVPATH"], "Sangoma card (1923:0600)", 0x1923, 0x0600)
    assert classify("remove", TE131) == HotplugEvent(
        "voice_card", False, TE131["DEVPATH"], "Digium Wildcard TE131/TE133 (d161:800a)", 0xD161, 0x800A,
        driver="wcte13xp", module="wcte13xp")
    # the kernel sends unbind without DRIVER: the card is there, but nothing drives it
    unbound = {k: v for k, v in TE131.items() if k != "DRIVER"}
    assert classify("unbind", unbound) == HotplugEvent(
        "voice_card", True, TE131["DEVPATH"], "Digium Wildcard TE131/TE133 (d161:800a)", 0xD161, 0x800A,
        module="wcte13xp")


def test_astribank_on_usb():
    astribank = {"DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-4", "DEVTYPE": "usb_device",
                 "SUBSYSTEM": "usb", "PRODUCT": "e4e4/1152/110", "ID_VENDOR_ID": "e4e4", "ID_MODEL_ID": "1152"}
    assert classify("add", astribank) == HotplugEvent(
        "voice_card", True, astribank["DEVPATH"], "Xorcom Astribank multi (e4e4:1152)", 0xE4E4, 0x1152,
        module="xpp_usb")


def test_modem_device_its_interfaces_and_its_ttys():
    assert classify("add", E3372) == _modem(True)
    assert classify("bind", E3372) == _modem(True)
    assert classify("add", E3372_IF0) == _modem(True, part=E3372_IF0["DEVPATH"])
    assert classify("add", E3372_IF3) == _modem(True, part=E3372_IF3["DEVPATH"])
    assert [classify("add", tty) for tty in E3372_TTYS] == [
        _modem(True, (f"/dev/ttyUSB{n}",), part=tty["DEVPATH"]) for n, tty in enumerate(E3372_TTYS)]
    assert classify("remove", E3372_TTYS[1]) == _modem(False, ("/dev/ttyUSB1",), part=E3372_TTYS[1]["DEVPATH"])
    assert classify("remove", E3372) == _modem(False)


def test_quectel_behind_a_hub_is_named_from_the_hardware_database():
    ec20 = HotplugEvent("gsm_modem", True, EC20["DEVPATH"], "Quectel EC25 LTE modem (2c7c:0125)", 0x2C7C, 0x0125)
    assert classify("add", EC20) == ec20
    assert classify("add", EC20_TTY2) == HotplugEvent(
        "gsm_modem", True, EC20["DEVPATH"], "Quectel EC25 LTE modem (2c7c:0125)", 0x2C7C, 0x0125,
        ttys=("/dev/ttyUSB2",), part=EC20_TTY2["DEVPATH"])


def test_usb_stick_partition_with_a_file_system():
    assert classify("add", STICK) is None  # a storage device is reported by its file systems
    assert classify("add", STICK_DISK) is None  # a partition table is not mountable
    assert classify("add", STICK_PART) == STICK_EVENT
    # sysfs size wins: a whole-disk file system has no partition entry
    assert classify("add", STICK_PART, size_sectors=1000).size_bytes == 512_000
    assert classify("remove", STICK_PART) == HotplugEvent(
        "usb_disk", False, STICK_PART["DEVPATH"], "SanDisk Cruzer Blade", 0x0781, 0x5567, devnode="/dev/sdb1",
        label="BACKUP", fs_type="vfat", size_bytes=30529536 * 512)
    # reformatted without a file system: a change that takes it away
    wiped = {k: v for k, v in STICK_PART.items() if not k.startswith("ID_FS_")}
    assert classify("change", wiped) == HotplugEvent(
        "usb_disk", False, STICK_PART["DEVPATH"], "SanDisk Cruzer Blade", 0x0781, 0x5567, devnode="/dev/sdb1",
        size_bytes=30529536 * 512)


def test_chinese_label_written_in_gbk_is_decoded():
    # udev escapes bytes that are not UTF-8; Windows in China writes FAT labels in GBK
    stick = {**STICK_PART, "ID_FS_LABEL": "____", "ID_FS_LABEL_ENC": "\\xb1\\xb8\\xb7\\xdd"}
    assert classify("add", stick).label == "备份"
    utf8 = {**STICK_PART, "ID_FS_LABEL": "录音_2024", "ID_FS_LABEL_ENC": "录音\\x202024"}
    assert classify("add", utf8).label == "录音 2024"
    garbage = {**STICK_PART, "ID_FS_LABEL_ENC": "A\\xffB"}  # neither: marked, not dropped
    assert classify("add", garbage).label == "A\ufffdB"


@pytest.mark.parametrize("props", [
    TELES_ISDN, NIC, KEYBOARD, KEYBOARD_IF0, SATA_PART, LOOP, MODEM_CDROM, SERIAL_CONSOLE, STICK, STICK_DISK,
    {**TE131, "PCI_ID": "D161:3400", "PCI_SUBSYS_ID": "D161:3400"},  # a transcoder, no lines
    {**EC20, "ID_VENDOR_ID": "1546", "ID_MODEL_ID": "01a8"},  # a u-blox GPS, not a modem
], ids=["tiger-jet-isdn", "nic", "keyboard", "keyboard-if", "sata", "loop", "modem-cd", "ttyS0", "stick-usb",
        "stick-disk", "transcoder", "gps"])
def test_unrelated_devices_give_no_event(props):
    assert classify("add", props) is None


@pytest.mark.parametrize("action, props", [
    ("add", {k: v for k, v in TE131.items() if k != "PCI_ID"}),
    ("add", {**TE131, "PCI_ID": "D16G:800A"}),
    ("add", {**TE131, "PCI_ID": "D161800A"}),
    ("add", {**TE131, "PCI_SUBSYS_ID": "x:y"}),
    ("add", {**TE131, "PCI_ID": "1D161:800A"}),
    ("add", {k: v for k, v in TE131.items() if k != "SUBSYSTEM"}),
    ("add", {k: v for k, v in TE131.items() if k != "DEVPATH"}),
    ("add", {**E3372, "ID_VENDOR_ID": "huawei"}),
    ("add", {k: v for k, v in E3372_IF0.items() if k != "PRODUCT"}),
    ("add", {**E3372_IF0, "PRODUCT": "12d1/1506"}),
    ("add", {**E3372_IF0, "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-2/oops"}),
    ("add", {k: v for k, v in E3372_TTYS[0].items() if k != "ID_MODEL_ID"}),
    ("add", {**STICK_PART, "ID_VENDOR_ID": "-781"}),
    ("move", TE131),
    ("offline", E3372),
    ("", TE131),
    (None, TE131),
    ("add", None),
    ("add", {"SUBSYSTEM": 7, "DEVPATH": b"/devices/x"}),
])
def test_bad_input_gives_no_event_and_a_debug_line(action, props, caplog):
    with caplog.at_level(logging.DEBUG, logger="drivers.hotplug"):
        assert classify(action, props) is None
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]


# --- the inventory -------------------------------------------------------------------


def test_inventory_folds_a_plug_and_unplug_sequence():
    inv = Inventory()

    def feed(action, props):
        event = classify(action, props)
        return None if event is None else inv.apply(event)

    assert feed("add", TE131) == TE131_EVENT
    assert feed("add", E3372) == _modem(True)
    assert feed("bind", E3372) is None  # udev's add then bind of the same device
    assert feed("add", E3372_IF0) is None and feed("add", E3372_IF3) is None
    assert [feed("add", t) for t in E3372_TTYS] == [
        _modem(True, ("/dev/ttyUSB0",)), _modem(True, ("/dev/ttyUSB0", "/dev/ttyUSB1")),
        _modem(True, ("/dev/ttyUSB0", "/dev/ttyUSB1", "/dev/ttyUSB2"))]
    assert feed("add", E3372_TTYS[2]) is None
    for props in (KEYBOARD, KEYBOARD_IF0, NIC, SATA_PART, LOOP, STICK, STICK_DISK):
        assert feed("add", props) is None
    assert feed("add", STICK_PART) == STICK_EVENT
    assert inv.present() == [_modem(True, ("/dev/ttyUSB0", "/dev/ttyUSB1", "/dev/ttyUSB2")),
                             STICK_EVENT, TE131_EVENT]

    # the modem is pulled: ttys, interfaces, then the device, as the kernel reports them
    assert feed("remove", E3372_TTYS[0]) == _modem(True, ("/dev/ttyUSB1", "/dev/ttyUSB2"))
    assert feed("remove", E3372_TTYS[2]) == _modem(True, ("/dev/ttyUSB1",))
    assert feed("remove", E3372_TTYS[1]) == _modem(True)
    assert feed("remove", E3372_IF0) is None and feed("remove", E3372_IF3) is None
    assert feed("remove", E3372) == _modem(False)
    assert feed("remove", E3372) is None  # already gone
    assert feed("remove", EC20) is None  # never seen
    assert feed("remove", STICK_PART) == replace_present(STICK_EVENT, False)
    assert inv.present() == [TE131_EVENT]
    assert feed("remove", TE131) == replace_present(TE131_EVENT, False)
    assert inv.present() == []


def test_inventory_tracks_driver_binding_and_natural_tty_order():
    inv = Inventory()
    inv.apply(classify("add", TE131))
    unbound = inv.apply(classify("unbind", {k: v for k, v in TE131.items() if k != "DRIVER"}))
    assert unbound.present and unbound.driver == ""
    assert inv.apply(classify("bind", TE131)) == TE131_EVENT
    inv.apply(classify("add", EC20_TTY10))  # a tty seen before its device makes the entry
    assert inv.apply(classify("add", EC20_TTY2)).ttys == ("/dev/ttyUSB2", "/dev/ttyUSB10")
    assert inv.apply(classify("add", EC20)) is None  # the device's own add adds nothing new
    assert [e.ttys for e in inv.present() if e.kind == "gsm_modem"] == [("/dev/ttyUSB2", "/dev/ttyUSB10")]
    inv.apply(classify("remove", EC20_TTY10))
    assert inv.apply(classify("remove", EC20_TTY2)).ttys == ()  # the device itself is still there


def test_inventory_drops_an_entry_made_of_parts_when_its_last_part_goes():
    inv = Inventory()
    inv.apply(classify("add", EC20_TTY2))
    gone = inv.apply(classify("remove", EC20_TTY2))
    assert (gone.present, gone.ttys) == (False, ("/dev/ttyUSB2",))
    assert inv.present() == []


def test_inventory_forgets_devices_named_by_a_bare_remove():
    inv = Inventory()
    for props in (E3372, *E3372_TTYS, TE131):
        inv.apply(classify("add", props))
    assert inv.forget(E3372_TTYS[0]["DEVPATH"]) == _modem(True, ("/dev/ttyUSB1", "/dev/ttyUSB2"))
    assert inv.forget(TE131["DEVPATH"]) == replace_present(TE131_EVENT, False)
    assert inv.forget("/devices/unknown") is None
    assert [e.id for e in inv.present()] == [E3372_ID]


def test_inventory_reset_reports_the_difference():
    inv = Inventory()
    for props in (TE131, STICK_PART):
        inv.apply(classify("add", props))
    changes = inv.reset([classify("add", TE131), classify("add", E3372), classify("add", E3372_TTYS[0])])
    assert changes == [replace_present(STICK_EVENT, False), _modem(True, ("/dev/ttyUSB0",))]
    assert inv.present() == [_modem(True, ("/dev/ttyUSB0",)), TE131_EVENT]


# --- the asyncio glue, with fakes ----------------------------------------------------


class FakeDevice:
    def __init__(self, props, action=None, size=None):
        self.properties, self.action = dict(props), action
        self.attributes = self
        self._size = size

    def asint(self, name):
        if name != "size" or self._size is None:
            raise KeyError(name)
        return self._size


class FakeContext:
    def __init__(self, calls, devices):
        self.calls, self.devices = calls, devices

    def list_devices(self, subsystem):
        self.calls.append(("list", subsystem))
        return [d for d in self.devices if d.properties.get("SUBSYSTEM") == subsystem]


class FakeMonitor:
    """A monitor whose fd is a real pipe: one byte written per queued event makes it readable."""

    def __init__(self, calls):
        self.calls, self.queue = calls, []
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)

    def filter_by(self, subsystem):
        self.calls.append(("filter", subsystem))

    def start(self):
        self.calls.append(("start",))

    def fileno(self):
        return self.read_fd

    def push(self, item):
        self.queue.append(item)
        os.write(self.write_fd, b"x")

    def poll(self, timeout=None):
        assert timeout == 0  # the loop must never block
        try:
            os.read(self.read_fd, 1)
        except BlockingIOError:
            return None
        item = self.queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def close(self):
        os.close(self.read_fd)
        os.close(self.write_fd)


@pytest.fixture
def fakes():
    calls = []
    monitor = FakeMonitor(calls)
    yield calls, monitor
    monitor.close()


def test_start_enumerates_what_is_already_plugged(fakes):
    calls, monitor = fakes
    context = FakeContext(calls, [FakeDevice(TE131), FakeDevice(NIC), FakeDevice(E3372), FakeDevice(E3372_IF0),
                                  *[FakeDevice(t) for t in E3372_TTYS], FakeDevice(SERIAL_CONSOLE),
                                  FakeDevice(STICK_DISK, size=30531584), FakeDevice(STICK_PART, size=30529536)])
    seen = []
    loop = asyncio.new_event_loop()
    try:
        hotplug = Hotplug(context, monitor)
        hotplug.start(loop, seen.append)
        # filters, then listening, then enumerating: nothing plugged meanwhile is lost
        assert calls == [*[("filter", s) for s in SUBSYSTEMS], ("start",), *[("list", s) for s in SUBSYSTEMS]]
        full_modem = _modem(True, ("/dev/ttyUSB0", "/dev/ttyUSB1", "/dev/ttyUSB2"))
        assert seen == [full_modem, STICK_EVENT, TE131_EVENT]
        assert hotplug.present() == seen
        with pytest.raises(DriverError, match="twice"):
            hotplug.start(loop, seen.append)
        hotplug.stop()
        hotplug.stop()  # harmless
    finally:
        loop.close()


def test_monitor_events_reach_the_callback_through_a_real_loop(fakes):
    calls, monitor = fakes
    seen = []

    async def main():
        loop = asyncio.get_running_loop()
        hotplug = Hotplug(FakeContext(calls, [FakeDevice(TE131)]), monitor)
        got = asyncio.Event()
        hotplug.start(loop, lambda e: (seen.append(e), got.set()))
        got.clear()
        monitor.push(FakeDevice(E3372, "add"))
        monitor.push(FakeDevice(E3372_IF0, "add"))
        monitor.push(FakeDevice(E3372_TTYS[0], "add"))
        monitor.push(FakeDevice(KEYBOARD, "add"))
        monitor.push(FakeDevice(STICK_PART, "add", size=30529536))
        monitor.push(FakeDevice({"DEVPATH": TE131["DEVPATH"], "SUBSYSTEM": "pci"}, "remove"))  # no properties left
        while len(seen) < 5:
            await asyncio.wait_for(got.wait(), 2.0)
            got.clear()
        hotplug.stop()
        monitor.push(FakeDevice(EC20, "add"))  # after stop: never read
        await asyncio.sleep(0.05)
        return hotplug

    hotplug = asyncio.run(main())
    assert seen == [TE131_EVENT, _modem(True), _modem(True, ("/dev/ttyUSB0",)), STICK_EVENT,
                    replace_present(TE131_EVENT, False)]
    assert hotplug.present() == [_modem(True, ("/dev/ttyUSB0",)), STICK_EVENT]
    assert len(monitor.queue) == 1


def test_lost_events_make_it_enumerate_again(fakes):
    calls, monitor = fakes
    context = FakeContext(calls, [FakeDevice(TE131), FakeDevice(STICK_PART, size=30529536)])
    seen = []

    async def main():
        hotplug = Hotplug(context, monitor)
        got = asyncio.Event()
        hotplug.start(asyncio.get_running_loop(), lambda e: (seen.append(e), got.set()))
        got.clear()
        context.devices = [FakeDevice(TE131), FakeDevice(EC20)]  # the stick went, a modem came, unheard
        monitor.push(OSError(errno.ENOBUFS, "No buffer space available"))
        await asyncio.wait_for(got.wait(), 2.0)
        hotplug.stop()

    asyncio.run(main())
    ec20 = HotplugEvent("gsm_modem", True, EC20["DEVPATH"], "Quectel EC25 LTE modem (2c7c:0125)", 0x2C7C, 0x0125)
    assert seen == [STICK_EVENT, TE131_EVENT, replace_present(STICK_EVENT, False), ec20]


# --- the real machine ----------------------------------------------------------------


def _well_formed(event: HotplugEvent) -> None:
    assert event.kind in ("voice_card", "gsm_modem", "usb_disk") and event.present and event.part == ""
    assert event.id.startswith("/devices/") and event.description
    if event.kind == "voice_card":
        assert 0 < event.vendor_id <= 0xFFFF
    if event.kind == "gsm_modem":
        assert all(t.startswith("/dev/tty") for t in event.ttys)
    if event.kind == "usb_disk":
        assert event.devnode.startswith("/dev/") and event.fs_type


def test_enumerating_this_machine_gives_well_formed_events():
    pyudev = pytest.importorskip("pyudev")
    try:
        context = pyudev.Context()
        pci = list(context.list_devices(subsystem="pci"))
    except Exception as exc:  # no sysfs in this container
        pytest.skip(f"pyudev cannot enumerate here: {exc}")
    if not pci:
        pytest.skip("no PCI devices visible")
    events = scan(context)
    for event in events:
        _well_formed(event)
    try:
        monitor = pyudev.Monitor.from_netlink(context)
    except Exception as exc:
        pytest.skip(f"no udev netlink socket here: {exc}")
    seen = []
    loop = asyncio.new_event_loop()
    try:
        hotplug = Hotplug(context, monitor)
        hotplug.start(loop, seen.append)
        loop.run_until_complete(asyncio.sleep(0.01))
        hotplug.stop()
    finally:
        loop.close()
    for event in seen:
        _well_formed(event)
    assert {e.id for e in hotplug.present()} == {e.id for e in events}
