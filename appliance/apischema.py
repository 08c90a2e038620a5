"""The control API's declared argument schemas: each command names its arguments' types and bounds, and a bad
argument is answered with an error that names it, its value and what is allowed."""

from __future__ import annotations

import json
from typing import Any

from .errors import ApplianceError

_MISSING = object()


class CommandError(ApplianceError):
    """Raised by a handler to answer ``ok: false`` with ``code`` (not_found, conflict, bad_argument...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def show(value: Any) -> str:
    """A value as JSON, cut short so an error message stays one readable line."""
    try:
        s = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


# ---------------------------------------------------------------- argument schema


class Arg:
    """One declared argument: ``check(name, value)`` returns the value or raises bad_argument."""

    kind = "any"

    def __init__(self, required: bool = True, default: Any = None) -> None:
        self.required = required
        self.default = default

    def fail(self, name: str, value: Any, problem: str) -> CommandError:
        return CommandError("bad_argument", f"{name}: {show(value)} {problem}; allowed {self.allowed()}")

    def allowed(self) -> str:
        return self.kind

    def check(self, name: str, value: Any) -> Any:
        return value

    def describe(self) -> dict:
        d = {"type": self.kind, "required": self.required, "allowed": self.allowed()}
        if not self.required:
            d["default"] = self.default
        return d


class Int(Arg):
    kind = "int"

    def __init__(self, min: int | None = None, max: int | None = None, required: bool = True,
                 default: int | None = None) -> None:
        super().__init__(required, default)
        self.min, self.max = min, max

    def allowed(self) -> str:
        lo = "" if self.min is None else str(self.min)
        hi = "" if self.max is None else str(self.max)
        return f"{lo}..{hi}" if (lo or hi) else "any integer"

    def check(self, name: str, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(name, value, "is not an integer")
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise self.fail(name, value, "is out of range")
        return value


class Str(Arg):
    kind = "str"

    def __init__(self, max_len: int = 256, required: bool = True, default: str | None = None) -> None:
        super().__init__(required, default)
        self.max_len = max_len

    def allowed(self) -> str:
        return f"a string of at most {self.max_len} characters"

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(name, value, "is not a string")
        if len(value) > self.max_len:
            raise self.fail(name, value, f"is {len(value)} characters long")
        return value


class Enum(Arg):
    kind = "enum"

    def __init__(self, *values: str, required: bool = True, default: str | None = None) -> None:
        super().__init__(required, default)
        self.values = tuple(values)

    def allowed(self) -> str:
        return ", ".join(self.values)

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise self.fail(name, value, "is not one of them")
        return value

    def describe(self) -> dict:
        return {**super().describe(), "values": list(self.values)}


class Bool(Arg):
    kind = "bool"

    def allowed(self) -> str:
        return "true, false"

    def check(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(name, value, "is not a boolean")
        return value


class List(Arg):
    kind = "list"

    def __init__(self, of: Arg, max_len: int = 64, required: bool = True, default: list | None = None) -> None:
        super().__init__(required, default)
        self.of, self.max_len = of, max_len

    def allowed(self) -> str:
        return f"a list of at most {self.max_len} items, each {self.of.allowed()}"

    def check(self, name: str, value: Any) -> list:
        if not isinstance(value, list):
            raise self.fail(name, value, "is not a list")
        if len(value) > self.max_len:
            raise self.fail(name, value, f"has {len(value)} items")
        return [self.of.check(f"{name}[{i}]", v) for i, v in enumerate(value)]

    def describe(self) -> dict:
        return {**super().describe(), "of": self.of.describe()}


class Obj(Arg):
    """A JSON object whose keys are checked by the handler (a campaign's recipients, its schedule)."""

    kind = "object"

    def __init__(self, max_keys: int = 32, required: bool = True, default: dict | None = None) -> None:
        super().__init__(required, default)
        self.max_keys = max_keys

    def allowed(self) -> str:
        return f"an object of at most {self.max_keys} keys"

    def check(self, name: str, value: Any) -> dict:
        if not isinstance(value, dict):
            raise self.fail(name, value, "is not an object")
        if len(value) > self.max_keys:
            raise self.fail(name, value, f"has {len(value)} keys")
        return value


def validate(schema: dict[str, Arg], args: dict[str, Any]) -> dict[str, Any]:
    """Check ``args`` against ``schema``: unknown names rejected, required ones present, optional ones defaulted."""
    for name in args:
        if name not in schema:
            allowed = ", ".join(schema) or "none"
            raise CommandError("bad_argument", f"{name}: unknown argument; allowed {allowed}")
    out = {}
    for name, arg in schema.items():
        value = args.get(name, _MISSING)
        if value is _MISSING or (value is None and not arg.required):
            if arg.required:
                raise CommandError("bad_argument", f"{name}: required argument is missing; allowed {arg.allowed()}")
            out[name] = arg.default
        else:
            out[name] = arg.check(name, value)
    return out
