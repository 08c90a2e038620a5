"""The DAHDI binding compiled at install time: every constant against the header, computed independently.

ioctl numbers are recomputed in Python from the macro text (``_IOWR(DAHDI_CODE, 5,
struct dahdi_params)``), the ioctl bit layout of this architecture and the
compiled struct size; plain constants are evaluated from ``cc -E -dM`` output.
Also checked against REFERENCE.md's x86-64 numbers.
"""

from __future__ import annotations

import ast
import operator
import os
import platform
import re
import subprocess
import sys

import pytest

from drivers.dahdi import binding, names
from tests.tools import require_dahdi_binding, require_tool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# REFERENCE.md, "DAHDI user-space ABI", x86-64
X86_64 = {
    "DAHDI_SPECIFY": 0x4004DA26,
    "DAHDI_SET_BLOCKSIZE": 0x4004DA01,
    "DAHDI_GET_PARAMS": 0xC088DA05,
    "DAHDI_HOOK": 0x4004DA07,
    "DAHDI_GETEVENT": 0x8004DA08,
    "DAHDI_SPANSTAT": 0xC13ADA0A,
    "DAHDI_DIAL": 0x4104DA1F,
}


@pytest.fixture(scope="module")
def compiled():
    return require_dahdi_binding()


@pytest.fixture(scope="module")
def macros(compiled) -> dict[str, str]:
    """Every macro the preprocessor knows after ``#include <dahdi/user.h>``: name -> body text."""
    cc = require_tool("cc")
    out = subprocess.run([cc, "-E", "-dM", "-x", "c", "-"], input="#include <dahdi/user.h>\n",
                         capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"#define (\w+) (.*)$", line)  # object-like macros only ("NAME(" has no space)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


_BINOPS = {ast.BitOr: operator.or_, ast.BitAnd: operator.and_, ast.LShift: operator.lshift,
           ast.RShift: operator.rshift, ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def evaluate(name: str, macros: dict[str, str]) -> int:
    """The integer value of macro ``name``: names expanded recursively, C suffixes dropped, arithmetic only."""
    text = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", macros[name])
    text = re.sub(r"\b[A-Za-z_]\w*\b", lambda m: f"({evaluate(m.group(0), macros)})", text)

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise ValueError(f"macro {name}: cannot evaluate {macros[name]!r}")

    return ev(ast.parse(text.strip(), mode="eval"))


def ioctl_number(name: str, macros: dict[str, str], ffi) -> int:
    """Encode ioctl ``name`` from its macro text, the _IOC layout of this architecture and the struct size."""
    m = re.fullmatch(r"_IO(|R|W|WR)\(\s*DAHDI_CODE\s*,\s*(\d+)\s*(?:,\s*(.+?)\s*)?\)", macros[name])
    assert m, f"{name} is not an _IO* macro: {macros[name]!r}"
    kind, nr, ctype = m.group(1), int(m.group(2)), m.group(3)
    direction = {"": "_IOC_NONE", "R": "_IOC_READ", "W": "_IOC_WRITE", "WR": "(_IOC_READ|_IOC_WRITE)"}[kind]
    layout = dict(macros, _DIR=direction)
    size = ffi.sizeof(ctype) if ctype else 0
    assert size < 1 << evaluate("_IOC_SIZEBITS", macros)
    return (evaluate("_DIR", layout) << evaluate("_IOC_DIRSHIFT", macros)
            | evaluate("DAHDI_CODE", macros) << evaluate("_IOC_TYPESHIFT", macros)
            | nr << evaluate("_IOC_NRSHIFT", macros)
            | size << evaluate("_IOC_SIZESHIFT", macros))


def test_the_binding_declares_exactly_the_names_we_use(compiled):
    ffi, lib = compiled
    assert sorted(dir(lib)) == sorted(names.ALL)
    assert len(set(names.ALL)) == len(names.ALL)


def test_ioctl_magic_is_0xda(macros):
    assert evaluate("DAHDI_CODE", macros) == 0xDA


def test_every_ioctl_equals_its_encoding_from_magic_number_and_struct_size(compiled, macros):
    ffi, lib = compiled
    for name in names.IOCTLS:
        assert getattr(lib, name) == ioctl_number(name, macros, ffi), name


def test_every_plain_constant_equals_the_header_value(compiled, macros):
    ffi, lib = compiled
    plain = [n for n in names.ALL if n not in names.IOCTLS]
    assert len(plain) == len(names.ALL) - len(names.IOCTLS) == 94
    for name in plain:
        assert getattr(lib, name) == evaluate(name, macros), name


def test_reference_values_on_x86_64(compiled):
    if platform.machine() != "x86_64":
        pytest.skip(f"REFERENCE.md's numbers are for x86-64, this is {platform.machine()}")
    ffi, lib = compiled
    assert {n: getattr(lib, n) for n in X86_64} == X86_64
    assert ffi.sizeof("struct dahdi_params") == 136
    assert ffi.sizeof("struct dahdi_spaninfo") == 314  # packed
    # the asm-generic layout, spelled out: dir << 30 | size << 16 | 0xDA << 8 | nr
    assert lib.DAHDI_GET_PARAMS == (3 << 30) | (136 << 16) | (0xDA << 8) | 5


def test_reference_values_of_hooks_events_and_alarms(compiled):
    ffi, lib = compiled
    assert [getattr(lib, f"DAHDI_{h}") for h in ("ONHOOK", "OFFHOOK", "WINK", "FLASH", "START", "RING",
                                                  "RINGOFF")] == [0, 1, 2, 3, 4, 5, 6]
    events = {"ONHOOK": 1, "RINGOFFHOOK": 2, "WINKFLASH": 3, "ALARM": 4, "NOALARM": 5, "DIALCOMPLETE": 9,
              "RINGERON": 10, "RINGEROFF": 11, "HOOKCOMPLETE": 12, "BITSCHANGED": 13, "POLARITY": 17,
              "RINGBEGIN": 18, "REMOVED": 20, "DTMFDOWN": 0x20000, "DTMFUP": 0x40000}
    assert {e: getattr(lib, f"DAHDI_EVENT_{e}") for e in events} == events
    alarms = {"RECOVER": 1, "LOOPBACK": 2, "YELLOW": 4, "RED": 8, "BLUE": 16, "NOTOPEN": 32, "LOS": 0x100}
    assert {a: getattr(lib, f"DAHDI_ALARM_{a}") for a in alarms} == alarms
    assert lib.ELAST == 500
    assert lib.DAHDI_SIG_FXOKS != lib.DAHDI_SIG_FXSKS


def test_struct_fields_sit_where_the_compiler_puts_them(compiled):
    ffi, lib = compiled
    # packed: the counters follow the three ints after desc[40] without padding
    assert ffi.offsetof("struct dahdi_spaninfo", "alarms") == 4 + 20 + 40
    assert ffi.offsetof("struct dahdi_spaninfo", "spantype") == ffi.sizeof("struct dahdi_spaninfo") - 6
    assert ffi.sizeof(ffi.typeof("struct dahdi_dialoperation").fields[1][1].type) == lib.DAHDI_MAX_DTMF_BUF
    assert ffi.sizeof("struct dahdi_ring_cadence") == lib.DAHDI_MAX_CADENCE * ffi.sizeof("int")


def _abi(extra_code: str = "") -> subprocess.CompletedProcess:
    code = f"{extra_code}import runpy; runpy.run_module('drivers.dahdi', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code, "abi"], capture_output=True, text=True, cwd=ROOT)


def test_abi_command_prints_every_constant_from_the_compiled_module(compiled):
    ffi, lib = compiled
    run = _abi()
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == len(names.ALL)
    printed = {}
    for line in lines:
        name, value = line.split(" ")
        assert re.fullmatch(r"0x[0-9A-F]+", value), line
        printed[name] = int(value, 16)
    assert printed == {n: getattr(lib, n) for n in names.ALL}
    assert "DAHDI_GET_PARAMS 0x%X" % lib.DAHDI_GET_PARAMS in lines
    assert lines[: len(names.IOCTLS)] == [f"{n} 0x{getattr(lib, n):X}" for n in names.IOCTLS]


# --- without the compiled module (runs everywhere) ---------------------------------------

_HIDE_BINDING = "import sys; sys.modules['drivers.dahdi._dahdi'] = None; "


def test_abi_command_without_the_binding_exits_2_with_the_reason():
    run = _abi(_HIDE_BINDING)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.startswith("error: DAHDI binding not built: ")
    assert "reinstall" in run.stderr


def test_package_imports_without_the_binding_and_says_why_when_used():
    code = _HIDE_BINDING + """
import drivers.dahdi
from drivers.dahdi import binding, channel, kernel
from appliance.errors import DriverError
assert not binding.available()
try:
    channel.DahdiChannel(kernel.OsKernel(), 1)
except DriverError as exc:
    print(exc)
else:
    raise SystemExit("no DriverError")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("DAHDI binding not built: ")


def test_missing_binding_messages_name_what_to_install():
    assert binding.explain_missing(False, True, True) == (
        "DAHDI binding not built: /usr/include/dahdi/user.h was not found at install time; "
        "install dahdi-source and reinstall (pip install -e .)")
    assert "a C compiler (build-essential) is missing" in binding.explain_missing(True, False, True)
    both = binding.explain_missing(True, False, False)
    assert "a C compiler (build-essential) and Python headers (python3-dev) are missing; install them" in both
    assert "APPLIANCE_NO_DAHDI" in binding.explain_missing(True, True, True)
