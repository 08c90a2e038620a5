"""The GSM 7-bit default alphabet and septet packing (3GPP TS 23.038, 6.2.1 and 6.1.2.1).

Pure functions: text <-> septet values <-> packed octets.  Characters of the
extension table take two septets (the escape 0x1B, then the extension code).
"""

from __future__ import annotations

from appliance.errors import ProtocolError

ESCAPE = 0x1B

# Basic character set, indexed by septet value; 0x1B is the escape and holds a placeholder.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(_BASIC) == 128

# Extension table: septet after the escape -> character.
_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_ENCODE: dict[str, tuple[int, ...]] = {ch: (i,) for i, ch in enumerate(_BASIC) if i != ESCAPE}
_ENCODE.update({ch: (ESCAPE, code) for code, ch in _EXTENSION.items()})


def septet_count(ch: str) -> int:
    """Septets one character takes: 1 (basic), 2 (extension) or 0 (not encodable).

    Parameters
    ----------
    ch : str
        A single character.

    Returns
    -------
    int
        The number of septets, 0 when the character is not in the alphabet.
    """
    return len(_ENCODE.get(ch, ()))


def can_encode(text: str) -> bool:
    """Whether every character of ``text`` is in the default alphabet or its extension.

    Parameters
    ----------
    text : str
        The message text.

    Returns
    -------
    bool
        True when ``encode_septets(text)`` succeeds.
    """
    return all(ch in _ENCODE for ch in text)


def encode_septets(text: str) -> list[int]:
    """Map text to septet values.

    Parameters
    ----------
    text : str
        The message text; every character must be encodable.

    Returns
    -------
    list[int]
        Septet values 0..127; extension characters give two septets.

    Raises
    ------
    ProtocolError
        A character is not in the GSM 7-bit alphabet (names it and its index).
    """
    out: list[int] = []
    for i, ch in enumerate(text):
        try:
            out.extend(_ENCODE[ch])
        except KeyError:
            raise ProtocolError(
                f"character {ch!r} (U+{ord(ch):04X}) at index {i} is not in the GSM 7-bit alphabet"
            ) from None
    return out


def decode_septets(septets: list[int] | bytes) -> str:
    """Map septet values back to text.

    An escape followed by a code without an extension character shows the basic
    character of that code, as TS 23.038 asks of receivers; a trailing escape or
    escape-escape (reserved for a further table) shows a space.

    Parameters
    ----------
    septets : list[int] or bytes
        Septet values 0..127.

    Returns
    -------
    str
        The decoded text.

    Raises
    ------
    ProtocolError
        A value is outside 0..127 (names it and its index).
    """
    out: list[str] = []
    escaped = False
    for i, s in enumerate(septets):
        if not 0 <= s <= 0x7F:
            raise ProtocolError(f"septet value {s} at index {i} is outside 0..127")
        if escaped:
            escaped = False
            if s == ESCAPE:
                out.append(" ")
            else:
                out.append(_EXTENSION.get(s, _BASIC[s]))
        elif s == ESCAPE:
            escaped = True
        else:
            out.append(_BASIC[s])
    if escaped:
        out.append(" ")
    return "".join(out)


def header_septets(header_octets: int) -> tuple[int, int]:
    """Fill bits and septets a user data header takes at the start of 7-bit user data.

    Parameters
    ----------
    header_octets : int
        Length of the UDH including its length octet (0 for none).

    Returns
    -------
    tuple[int, int]
        ``(fill_bits, septets)``: the text starts on the septet boundary after the
        header, and TP-UDL counts the header as ``septets``.
    """
    fill = (7 - header_octets * 8 % 7) % 7
    return fill, (header_octets * 8 + fill) // 7


def pack(septets: list[int], fill_bits: int = 0) -> bytes:
    """Pack septets into octets, least significant bit first.

    Parameters
    ----------
    septets : list[int]
        Septet values 0..127.
    fill_bits : int, optional
        Zero bits in front of the first septet (0..6), so that 7-bit text after a
        user data header starts on a septet boundary.

    Returns
    -------
    bytes
        ``ceil((fill_bits + 7 * len(septets)) / 8)`` octets.

    Raises
    ------
    ProtocolError
        ``fill_bits`` is outside 0..6 or a septet outside 0..127.
    """
    if not 0 <= fill_bits <= 6:
        raise ProtocolError(f"fill_bits {fill_bits} is outside 0..6")
    acc = 0
    for i, s in enumerate(septets):
        if not 0 <= s <= 0x7F:
            raise ProtocolError(f"septet value {s} at index {i} is outside 0..127")
        acc |= s << (fill_bits + 7 * i)
    nbits = fill_bits + 7 * len(septets)
    return acc.to_bytes((nbits + 7) // 8, "little")


def unpack(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """Unpack ``count`` septets from octets packed by :func:`pack`.

    Parameters
    ----------
    data : bytes
        Packed octets.
    count : int
        Number of septets to take.
    fill_bits : int, optional
        Bits to skip before the first septet (0..6).

    Returns
    -------
    list[int]
        ``count`` septet values.

    Raises
    ------
    ProtocolError
        ``fill_bits`` is outside 0..6, ``count`` is negative, or ``data`` is too
        short for ``count`` septets.
    """
    if not 0 <= fill_bits <= 6:
        raise ProtocolError(f"fill_bits {fill_bits} is outside 0..6")
    if count < 0:
        raise ProtocolError(f"septet count {count} is negative")
    need = (fill_bits + 7 * count + 7) // 8
    if len(data) < need:
        raise ProtocolError(f"{count} septets need {need} octets, only {len(data)} given")
    acc = int.from_bytes(data[:need], "little") >> fill_bits
    return [(acc >> (7 * i)) & 0x7F for i in range(count)]
