"""ITU-T T.4 code tables: modified Huffman run-length codes (Tables 2 and 3) and 2-D mode codes (Table 4).

Codes are written as strings of ``'0'``/``'1'`` in transmission order, exactly as
printed in the Recommendation, so they can be checked against it by eye. The
module also builds the look-up tables the decoder uses: for every 13-bit window
of the bit stream, the run (or mode) whose code starts the window and its length.
"""

from __future__ import annotations

import numpy as np

__all__ = ["WHITE_CODES", "BLACK_CODES", "MODE_CODES", "EOL", "WINDOW", "decode_table"]

EOL = "000000000001"
WINDOW = 13  # longest run-length code (black make-up) is 13 bits

_WHITE_TERM = (
    "00110101 000111 0111 1000 1011 1100 1110 1111 10011 10100 00111 01000 001000 000011 110100 110101 "
    "101010 101011 0100111 0001100 0001000 0010111 0000011 0000100 0101000 0101011 0010011 0100100 "
    "0011000 00000010 00000011 00011010 00011011 00010010 00010011 00010100 00010101 00010110 00010111 "
    "00101000 00101001 00101010 00101011 00101100 00101101 00000100 00000101 00001010 00001011 01010010 "
    "01010011 01010100 01010101 00100100 00100101 01011000 01011001 01011010 01011011 01001010 01001011 "
    "00110010 00110011 00110100"
).split()

_BLACK_TERM = (
    "0000110111 010 11 10 011 0011 0010 00011 000101 000100 0000100 0000101 0000111 00000100 00000111 "
    "000011000 0000010111 0000011000 0000001000 00001100111 00001101000 00001101100 00000110111 "
    "00000101000 00000010111 00000011000 000011001010 000011001011 000011001100 000011001101 "
    "000001101000 000001101001 000001101010 000001101011 000011010010 000011010011 000011010100 "
    "000011010101 000011010110 000011010111 000001101100 000001101101 000011011010 000011011011 "
    "000001010100 000001010101 000001010110 000001010111 000001100100 000001100101 000001010010 "
    "000001010011 000000100100 000000110111 000000111000 000000100111 000000101000 000001011000 "
    "000001011001 000000101011 000000101100 000001011010 000001100110 000001100111"
).split()

# make-up codes for 64, 128, ..., 1728
_WHITE_MAKEUP = (
    "11011 10010 010111 0110111 00110110 00110111 01100100 01100101 01101000 01100111 011001100 "
    "011001101 011010010 011010011 011010100 011010101 011010110 011010111 011011000 011011001 "
    "011011010 011011011 010011000 010011001 010011010 011000 010011011"
).split()

_BLACK_MAKEUP = (
    "0000001111 000011001000 000011001001 000001011011 000000110011 000000110100 000000110101 "
    "0000001101100 0000001101101 0000001001010 0000001001011 0000001001100 0000001001101 "
    "0000001110010 0000001110011 0000001110100 0000001110101 0000001110110 0000001110111 "
    "0000001010010 0000001010011 0000001010100 0000001010101 0000001011010 0000001011011 "
    "0000001100100 0000001100101"
).split()

# extended make-up codes, common to both colours: 1792, 1856, ..., 2560 (Table 3)
_EXT_MAKEUP = (
    "00000001000 00000001100 00000001101 000000010010 000000010011 000000010100 000000010101 "
    "000000010110 000000010111 000000011100 000000011101 000000011110 000000011111"
).split()


def _codes(term: list[str], makeup: list[str]) -> dict[int, str]:
    table = {run: code for run, code in enumerate(term)}
    table.update({64 * (i + 1): code for i, code in enumerate(makeup + _EXT_MAKEUP)})
    return table


#: run length -> code, for runs 0..63 (terminating) and 64..2560 in steps of 64 (make-up)
WHITE_CODES: dict[int, str] = _codes(_WHITE_TERM, _WHITE_MAKEUP)
BLACK_CODES: dict[int, str] = _codes(_BLACK_TERM, _BLACK_MAKEUP)

#: 2-D mode -> code: "P" pass, "H" horizontal, vertical offsets -3..3 (a1 - b1)
MODE_CODES: dict[object, str] = {
    "P": "0001", "H": "001", 0: "1", 1: "011", 2: "000011", 3: "0000011",
    -1: "010", -2: "000010", -3: "0000010",
}


def decode_table(codes: dict) -> tuple[list, list[int]]:
    """Look-up table from every 13-bit window to the code starting it.

    Parameters
    ----------
    codes : dict
        Symbol -> code string, a prefix-free set of codes of at most 13 bits.

    Returns
    -------
    symbols : list, length 8192
        The symbol whose code is the window's leading bits, or None.
    lengths : list of int, length 8192
        That code's length in bits, 0 where no code matches.
    """
    symbols: list = [None] * (1 << WINDOW)
    lengths = np.zeros(1 << WINDOW, dtype=np.int64)
    for symbol, code in codes.items():
        shift = WINDOW - len(code)
        start = int(code, 2) << shift
        if lengths[start:start + (1 << shift)].any():
            raise ValueError(f"code {code!r} for {symbol!r} is not prefix-free")
        lengths[start:start + (1 << shift)] = len(code)
        symbols[start:start + (1 << shift)] = [symbol] * (1 << shift)
    return symbols, lengths.tolist()
