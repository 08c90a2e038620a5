"""The ids that tell a voice card or a GSM modem among the PCI and USB devices udev reports (see the sources below)."""

from __future__ import annotations

# --- what we recognise ---------------------------------------------------------------
# Voice cards, keyed (vendor, device, subvendor, subdevice) with None as a wildcard and
# looked up most specific first, as dahdi-tools does. Value: (name, DAHDI kernel module).
# Sources: dahdi-tools xpp/perl_modules/Dahdi/Hardware/PCI.pm and USB.pm (asterisk/dahdi-tools);
# the same PCI.pm in openvox-company/dahdi-linux-complete-3.0.0-3.0.0 (OpenVox D/A series,
# Digium B233/B234/B433/B434); that tree's opvxa1200/base.c wctdm_pci_tbl (A1200P/A800P:
# Tiger Jet 320 with OpenVox subvendors); pci.ids as shipped in udev's
# 20-pci-vendor-model.hwdb (Rhino, Sangoma, Allo CPx00P, Tormenta 3, OpenVox A400P).
_TJ = (0xE159, 0x0001)  # Tiger Jet 320: a generic chip, a voice card only by its subvendor
_CC4, _CC8 = (0x1397, 0x08B4), (0x1397, 0x16B8)  # Cologne Chip HFC-4S / HFC-8S (BRI)
VOICE_PCI: dict[tuple[int, int, int | None, int | None], tuple[str, str]] = {
    **{(0xD161, d, None, None): (f"Digium Wildcard {n}", m) for d, n, m in (
        (0x0120, "TE12xP", "wcte12xp"), (0x8000, "TE121", "wcte12xp"), (0x8001, "TE122", "wcte12xp"),
        (0x800A, "TE131/TE133", "wcte13xp"), (0x800B, "TE132/TE134", "wcte13xp"),
        (0x800E, "TE435/TE235", "wcte43x"), (0x8013, "TE436/TE236", "wcte43x"),
        (0x0205, "TE205P", "wct4xxp"), (0x0210, "TE210P", "wct4xxp"), (0x0220, "TE220", "wct4xxp"),
        (0x0405, "TE405P", "wct4xxp"), (0x0410, "TE410P", "wct4xxp"), (0x0420, "TE420", "wct4xxp"),
        (0x1205, "TE205P", "wct4xxp"), (0x1210, "TE210P", "wct4xxp"), (0x1220, "TE220", "wct4xxp"),
        (0x1405, "TE405P", "wct4xxp"), (0x1410, "TE410P", "wct4xxp"), (0x1420, "TE420", "wct4xxp"),
        (0x1820, "TE820", "wct4xxp"),
        (0x0800, "TDM800P", "wctdm24xxp"), (0x2400, "TDM2400P", "wctdm24xxp"),
        (0x8002, "AEX800", "wctdm24xxp"), (0x8003, "AEX2400", "wctdm24xxp"),
        (0x8005, "TDM410P", "wctdm24xxp"), (0x8006, "AEX410P", "wctdm24xxp"),
        (0x8007, "HA8", "wctdm24xxp"), (0x8008, "HB8", "wctdm24xxp"),
        (0x800C, "A8A", "wcaxx"), (0x800D, "A8B", "wcaxx"), (0x800F, "A4A", "wcaxx"), (0x8010, "A4B", "wcaxx"),
        (0xB410, "B410P", "wcb4xxp"), (0x8014, "B433", "wcb4xxp"), (0x8015, "B434", "wcb4xxp"),
        (0x8016, "B233", "wcb4xxp"), (0x8017, "B234", "wcb4xxp"))},
    **{(0x1B74, d, None, None): (f"OpenVox {n}", m) for d, n, m in (
        (0x0115, "D115P/D115E", "opvxd115"), (0xD130, "D130P/D130E", "opvxd115"),
        (0xD210, "D210E", "wct4xxp"), (0xD230, "D230E", "wct4xxp"), (0xD410, "D410E", "wct4xxp"),
        (0xD430, "D430E", "wct4xxp"), (0x1420, "D420P", "wct4xxp"),
        (0x0810, "A810P", "opvxa24xx"), (0x1610, "A1610P", "opvxa24xx"), (0x2410, "A2410P", "opvxa24xx"))},
    **{(*_TJ, sv, None): ("OpenVox A1200P/A800P", "opvxa1200")
       for sv in (0x9100, 0x9519, 0x95D9, 0x9500, 0x9532, 0x8519, 0x9559, 0x9599)},
    **{(*_TJ, sv, None): ("Digium Wildcard X101P (or clone)", "wcfxo") for sv in (0x8084, 0x8085, 0x8086, 0x8087)},
    **{(*_TJ, sv, None): ("Digium Wildcard TE110P", "wcte11xp") for sv in (0x71FE, 0x79FE, 0x795E, 0x79DE, 0x797E)},
    **{(*_TJ, sv, None): ("Digium Wildcard TDM400P", "wctdm")
       for sv in (0xA159, 0xE159, 0xB118, 0xB119, 0xA9FD, 0xA8FD, 0xA800, 0xA801, 0xA908, 0xA901)},
    (*_TJ, 0xB100, None): ("Digium Wildcard TDM400P / OpenVox A400P", "wctdm"),
    (*_TJ, 0xB1D9, None): ("Digium Wildcard TDM400P / ATCOM AX400P", "wctdm"),
    (*_TJ, 0x6159, None): ("Digium Wildcard T100P/E100P", "wct1xxp"),
    (*_TJ, 0x2151, None): ("Yeastar YSTDM8xx", "ystdm8xx"),
    (0x1057, 0x5608, None, None): ("Digium Wildcard X100P", "wcfxo"),
    (0x10EE, 0x0314, None, None): ("Digium Wildcard TE405P/TE410P (1st gen)", "wct4xxp"),
    (0x10EE, 0x1004, None, None): ("Aligera AP40X/APE40X", "ap400"),
    (0x10B5, 0xD00D, None, None): ("Tormenta 2 quad T1/E1", "tor2"),
    (0x10B5, 0x4000, None, None): ("Tormenta 2 quad T1/E1 (clone)", "tor2"),
    (0x10B5, 0xD44D, 0x10B5, 0x9030): ("Tormenta 3 Varion V401PE quad E1", ""),
    (0x10B5, 0xD44D, 0x10B5, 0x17F6): ("Allo CP100P/E single E1/T1", ""),
    (0x10B5, 0xD44D, 0x10B5, 0x17F8): ("Allo CP200P/E dual E1/T1", ""),
    (0x10B5, 0xD44D, 0x10B5, 0x17F7): ("Allo CP400P/E quad E1/T1", ""),
    **{(*_CC4, 0x1397, sd): (n, "wcb4xxp") for sd, n in (
        (0xB540, "Swyx 4xS0 SX2 QuadBRI"), (0xB556, "Junghanns DuoBRI"), (0xB520, "Junghanns QuadBRI"),
        (0xB550, "Junghanns QuadBRI"), (0xB752, "Junghanns QuadBRI PCIe"), (0xE884, "OpenVox B200P"),
        (0xE888, "OpenVox B400P"), (0xB566, "beroNet BN2S0"), (0xB560, "beroNet BN4S0"),
        (0xB762, "beroNet BN4S0 PCIe"), (0xB51A, "Allo BRI card"))},
    **{(*_CC8, 0x1397, sd): (n, "wcb4xxp") for sd, n in (
        (0xB552, "Junghanns OctoBRI"), (0xB55B, "Junghanns OctoBRI"), (0xE998, "OpenVox B800P"),
        (0xB562, "beroNet BN8S0"))},
    (*_CC4, None, None): ("Cologne Chip HFC-4S BRI card", "qozap"),
    (*_CC8, None, None): ("Cologne Chip HFC-8S BRI card", "qozap"),
    (0x1397, 0x30B1, None, None): ("Cologne Chip HFC-E1 card", "cwain"),
    (0x1397, 0x2BD0, None, None): ("Cologne Chip HFC-S BRI card", "zaphfc"),
    (0x1397, 0xF001, None, None): ("Cologne Chip HFC-4GSM card", "ztgsm"),
    **{(0x0B0B, d, None, None): (f"Rhino {n}", m) for d, n, m in (
        (0x0105, "R1T1", "r1t1"), (0x0205, "R4FXO", "r4fxo"), (0x0206, "RCB4FXO", "rcbfx"),
        (0x0305, "R4T1", "rxt1"), (0x0405, "R8FXX", "rcbfx"), (0x0406, "RCB8FXX", "rcbfx"),
        (0x0505, "R24FXX", "rcbfx"), (0x0506, "RCB24FXS", "rcbfx"), (0x0605, "R2T1", "rxt1"),
        (0x0705, "R24FXS", "rcbfx"), (0x0706, "RCB24FXO", "rcbfx"), (0x0906, "RCB24FXX", "rcbfx"))},
    **{(0x1923, d, None, None): (f"Sangoma {n}", "wanpipe") for d, n in (
        (0x0040, "A200/Remora analog"), (0x0100, "A104d quad T1/E1"), (0x0300, "A101 single T1/E1"),
        (0x0400, "A104u quad T1/E1"))},
}
# Vendors that make telephony cards only: any other product of theirs is a voice card too.
VOICE_VENDORS = {0xD161: "Digium", 0x1B74: "OpenVox", 0x0B0B: "Rhino", 0x1923: "Sangoma",
                  0x1D21: "Allo", 0xE4E4: "Xorcom"}
NOT_VOICE = {(0xD161, 0x3400), (0xD161, 0x8004)}  # Digium TC400P/TCE400P: transcoders, no lines
VOICE_USB: dict[tuple[int, int], tuple[str, str]] = {
    **{(0xE4E4, p): (f"Xorcom Astribank {n}", "xpp_usb") for p, n in (
        (0x1130, "8/16 (no firmware)"), (0x1131, "8/16 (USB firmware)"), (0x1132, "8/16"),
        (0x1140, "BRI (no firmware)"), (0x1141, "BRI (USB firmware)"), (0x1142, "BRI"),
        (0x1150, "multi (no firmware)"), (0x1151, "multi (USB firmware)"), (0x1152, "multi"),
        (0x1160, "modular (no firmware)"), (0x1161, "modular (USB firmware)"), (0x1162, "modular"),
        (0x1163, "TwinStar monitor"), (0x1164, "EEPROM burner"))},
    (0x06E6, 0x831C): ("Digium Wildcard S100U", "wcusb"),
    (0x06E6, 0x831E): ("Digium Wildcard S110U", "wcusb2"),
    (0x10C4, 0x8461): ("Sangoma USB-FXO", "wanpipe"),
}
# USB GSM modem vendors, from the vendor ids of drivers/usb/serial/option.c in Linux
# (Huawei, ZTE, Quectel, Telit, Cinterion, Longcheer, u-blox, Qualcomm; SIMCom's modules
# use ALINK_VENDOR_ID 0x1e0e) and usb.ids (Sierra Wireless 0x1199, Fibocom 0x2cb7).
# A product set narrows vendors that also sell other USB things: u-blox GNSS receivers
# (0x01a4-0x01a8), phones on Qualcomm's id.
MODEM_VENDORS: dict[int, tuple[str, frozenset[int] | None]] = {
    0x12D1: ("Huawei", None), 0x19D2: ("ZTE", None), 0x2C7C: ("Quectel", None),
    0x1E0E: ("SIMCom", None), 0x1199: ("Sierra Wireless", None), 0x1BC7: ("Telit", None),
    0x2CB7: ("Fibocom", None), 0x1E2D: ("Cinterion", None), 0x1C9E: ("Longcheer", None),
    0x1546: ("u-blox", frozenset({0x1102, 0x1311, 0x1312, 0x1313, 0x1341, 0x1342, 0x1343})),
    # SIMCom SIM5218/SIM5360, Quectel UC20, UC15, EC20 (first id), u-blox R410M and LARA-R6
    0x05C6: ("Qualcomm", frozenset({0x9000, 0x9003, 0x9090, 0x9215, 0x90B2, 0x908B, 0x90FA})),
}
