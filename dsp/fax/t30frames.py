"""T.30 control frames: facsimile control fields, the DIS/DTC/DCS bit fields we use, identities.

A frame is ``0xFF`` (address), ``0x03`` or ``0x13`` (control: 0x13 marks
the final frame of a transmission, after which the other side may answer),
the FCF, then the FIF. Octets go on the line least significant bit first,
so T.30's "bit 1" of a field is the low bit of its first octet; the FCF
values below are the line patterns of T.30 §5.3.6 read that way. The X bit
(the first bit sent, the FCF's low bit) is set by the station that received
a valid DIS and cleared by the other; frames of the first group (DIS, CSI,
NSF, DTC, CIG, NSC) have no X bit. CSI, TSI and CIG carry 20 characters,
the last character first.

DIS/DTC/DCS bits (T.30 Table 2) that matter to an audio G3 terminal without
ECM: 9 ready to transmit (a document to be polled), 10 ready to receive,
11-14 modems and rate, 15 fine resolution, 16 2-D coding, 17-18 width,
19-20 length, 21-23 minimum scan line time, 24 extension (another octet
follows).
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import DspError

__all__ = [
    "FCF", "FCF_NAMES", "RATES", "Capabilities", "Dcs", "make_frame", "parse_frame", "fcf_name",
    "encode_ident", "decode_ident", "encode_dis", "decode_dis", "encode_dcs", "decode_dcs", "choose_dcs",
]

ADDRESS = 0xFF
CONTROL, CONTROL_FINAL = 0x03, 0x13
IDENT_LEN = 20

# the first group: no X bit
_FIXED = {"DIS": 0x80, "CSI": 0x40, "NSF": 0x20, "DTC": 0x81, "CIG": 0x41, "NSC": 0x21}
# the rest: the low bit is X
_WITH_X = {
    "DCS": 0x82, "TSI": 0x42, "NSS": 0x22, "CFR": 0x84, "FTT": 0x44,
    "EOM": 0x8E, "MPS": 0x4E, "EOP": 0x2E, "PRI-EOM": 0x9E, "PRI-MPS": 0x5E, "PRI-EOP": 0x3E,
    "MCF": 0x8C, "RTP": 0xCC, "RTN": 0x4C, "PIP": 0xAC, "PIN": 0x2C,
    "DCN": 0xFA, "CRP": 0x1A,
}
FCF = {**_FIXED, **_WITH_X}
FCF_NAMES = {v: k for k, v in _FIXED.items()} | {v: k for k, v in _WITH_X.items()}

# bit rate -> (modem, DCS code in bits 11..14 as bit 11 first)
RATES = {9600: ("v29", (1, 0, 0, 0)), 7200: ("v29", (1, 1, 0, 0)),
         4800: ("v27ter", (0, 1, 0, 0)), 2400: ("v27ter", (0, 0, 0, 0))}
FALLBACK = (9600, 7200, 4800, 2400)
# DIS/DTC bits 11..14 -> the modems offered
_DIS_MODEMS = {(0, 0, 0, 0): {"v27ter-fallback"}, (0, 1, 0, 0): {"v27ter"}, (1, 0, 0, 0): {"v29"},
               (1, 1, 0, 0): {"v27ter", "v29"}, (1, 1, 0, 1): {"v27ter", "v29", "v17"}}
# bits 21..23 -> minimum scan line time, ms, at standard resolution (T.30 Table 2)
_SCAN = {(0, 0, 0): 20, (0, 0, 1): 40, (0, 1, 0): 10, (1, 0, 0): 5, (1, 1, 1): 0,
         (0, 1, 1): 10, (1, 1, 0): 20, (1, 0, 1): 40}
_SCAN_DCS = {20: (0, 0, 0), 40: (0, 0, 1), 10: (0, 1, 0), 5: (1, 0, 0), 0: (1, 1, 1)}


def fcf_name(fcf: int) -> str:
    """The signal's name for a received FCF (X bit ignored where it has one), or ``FCF 0x..``."""
    if fcf in FCF_NAMES and fcf in _FIXED.values():
        return FCF_NAMES[fcf]
    return FCF_NAMES.get(fcf & 0xFE, f"FCF 0x{fcf:02X}")


def make_frame(name: str, fif: bytes = b"", *, final: bool = True, x: int = 0) -> bytes:
    """Address, control, FCF and FIF of one frame (the HDLC layer adds the FCS).

    Parameters
    ----------
    name : str, a key of ``FCF``
    fif : bytes, the information field
    final : bool, the last frame of the transmission
    x : int, 0 or 1, the X bit (ignored for DIS, CSI, NSF, DTC, CIG, NSC)
    """
    if name not in FCF:
        raise DspError(f"unknown T.30 signal {name!r}")
    fcf = FCF[name] if name in _FIXED else FCF[name] | (1 if x else 0)
    return bytes((ADDRESS, CONTROL_FINAL if final else CONTROL, fcf)) + bytes(fif)


def parse_frame(data: bytes) -> tuple[str, bool, bytes]:
    """``(name, final, fif)`` of a received frame's octets (after the FCS check)."""
    if len(data) < 3 or data[0] != ADDRESS or data[1] not in (CONTROL, CONTROL_FINAL):
        raise DspError(f"not a T.30 frame: {bytes(data[:3]).hex()}")
    return fcf_name(data[2]), data[1] == CONTROL_FINAL, bytes(data[3:])


def encode_ident(ident: str) -> bytes:
    """CSI/TSI/CIG information field: 20 characters (digits, +, space), last character first."""
    if len(ident) > IDENT_LEN or not all(c.isdigit() or c in "+ " for c in ident):
        raise DspError(f"fax identity must be up to {IDENT_LEN} digits, '+' or spaces, got {ident!r}")
    return ident.ljust(IDENT_LEN).encode("ascii")[::-1]


def decode_ident(fif: bytes) -> str:
    """The identity in a CSI/TSI/CIG field (any printable ASCII kept; trimmed)."""
    text = bytes(fif[:IDENT_LEN])[::-1].decode("latin-1")
    return "".join(c for c in text if 32 <= ord(c) < 127).strip()


def _bits_to_bytes(bits: dict[int, int], octets: int) -> bytes:
    out = bytearray(octets)
    for n, v in bits.items():
        if v:
            out[(n - 1) // 8] |= 1 << ((n - 1) % 8)
    return bytes(out)


def _bit(fif: bytes, n: int) -> int:
    i = (n - 1) // 8
    return (fif[i] >> ((n - 1) % 8)) & 1 if i < len(fif) else 0


@dataclass(frozen=True)
class Capabilities:
    """What a DIS or DTC offers.

    Attributes
    ----------
    modems : frozenset of str, from "v27ter", "v27ter-fallback" (2400 only), "v29", "v17"
    fine : bool, 7.7 lines/mm
    two_d : bool, modified READ
    min_scan_ms : int, minimum scan line time at standard resolution
    can_receive : bool, bit 10
    has_document : bool, bit 9 (a document ready to be polled)
    """

    modems: frozenset
    fine: bool = True
    two_d: bool = True
    min_scan_ms: int = 0
    can_receive: bool = True
    has_document: bool = False

    def rates(self) -> list[int]:
        """The bit rates these modems allow, fastest first."""
        out = []
        for r in FALLBACK:
            m = RATES[r][0]
            if m in self.modems or (r == 2400 and self.modems & {"v27ter", "v27ter-fallback"}):
                out.append(r)
        return out


def encode_dis(caps: Capabilities) -> bytes:
    """The FIF of a DIS or DTC offering ``caps`` (3 octets, no extension)."""
    code = {frozenset({"v27ter"}): (0, 1, 0, 0), frozenset({"v29"}): (1, 0, 0, 0),
            frozenset({"v27ter", "v29"}): (1, 1, 0, 0), frozenset({"v27ter-fallback"}): (0, 0, 0, 0)}
    key = frozenset(caps.modems)
    if key not in code:
        raise DspError(f"cannot offer modems {sorted(caps.modems)}: choose from v27ter and v29")
    bits = {9: caps.has_document, 10: caps.can_receive, 15: caps.fine, 16: caps.two_d,
            20: 1}  # bit 20: unlimited length (we take long pages)
    bits.update(zip((11, 12, 13, 14), code[key]))
    scan = _SCAN_DCS.get(caps.min_scan_ms)
    if scan is None:
        raise DspError(f"minimum scan line time must be one of {sorted(_SCAN_DCS)} ms, got {caps.min_scan_ms!r}")
    bits.update(zip((21, 22, 23), scan))
    return _bits_to_bytes(bits, 3)


def decode_dis(fif: bytes) -> Capabilities:
    """The capabilities in a received DIS or DTC FIF."""
    if len(fif) < 2:
        raise DspError(f"DIS/DTC too short: {len(fif)} octets, need at least 2")
    code = tuple(_bit(fif, n) for n in (11, 12, 13, 14))
    modems = _DIS_MODEMS.get(code, {"v27ter", "v29"} if code[0] and code[1] else set())
    scan = _SCAN[tuple(_bit(fif, n) for n in (21, 22, 23))] if len(fif) >= 3 else 20
    return Capabilities(frozenset(modems), bool(_bit(fif, 15)), bool(_bit(fif, 16)), scan,
                        bool(_bit(fif, 10)), bool(_bit(fif, 9)))


@dataclass(frozen=True)
class Dcs:
    """What a DCS commands.

    Attributes
    ----------
    bit_rate : int, 9600, 7200, 4800 or 2400
    fine : bool
    two_d : bool
    min_scan_ms : int
    """

    bit_rate: int
    fine: bool = False
    two_d: bool = False
    min_scan_ms: int = 0

    @property
    def modem(self) -> str:
        return RATES[self.bit_rate][0]

    def min_row_bits(self) -> int:
        """Bits a coded row must at least take for the receiver's scan line time."""
        return self.bit_rate * self.min_scan_ms // 1000


def encode_dcs(dcs: Dcs) -> bytes:
    """The FIF of a DCS (3 octets)."""
    if dcs.bit_rate not in RATES:
        raise DspError(f"DCS bit rate must be one of {sorted(RATES)}, got {dcs.bit_rate!r}")
    bits = {10: 1, 15: dcs.fine, 16: dcs.two_d}
    bits.update(zip((11, 12, 13, 14), RATES[dcs.bit_rate][1]))
    bits.update(zip((21, 22, 23), _SCAN_DCS[dcs.min_scan_ms]))
    return _bits_to_bytes(bits, 3)


def decode_dcs(fif: bytes) -> Dcs:
    """The settings in a received DCS FIF."""
    if len(fif) < 2:
        raise DspError(f"DCS too short: {len(fif)} octets, need at least 2")
    code = tuple(_bit(fif, n) for n in (11, 12, 13, 14))
    rate = next((r for r, (_, c) in RATES.items() if c == code), None)
    if rate is None:
        raise DspError(f"DCS asks for an unsupported modem (bits 11-14 = {code})")
    scan = _SCAN[tuple(_bit(fif, n) for n in (21, 22, 23))] if len(fif) >= 3 else 20
    return Dcs(rate, bool(_bit(fif, 15)), bool(_bit(fif, 16)), scan)


def choose_dcs(remote: Capabilities, ours: Capabilities, fine: bool, two_d: bool,
               below: int | None = None) -> Dcs | None:
    """The DCS a sender picks: the fastest rate both sides have (below ``below`` after a failure).

    ``fine`` and ``two_d`` are what the document and our settings want; each is
    used only if the remote offers it. None when no rate is left.
    """
    common = [r for r in remote.rates() if r in ours.rates() and (below is None or r < below)]
    if not common:
        return None
    return Dcs(common[0], fine and remote.fine, two_d and remote.two_d and ours.two_d, remote.min_scan_ms)
