"""SMS templates (短信模板) with fields, and opt-out (退订) replies.

Fields are written with Chinese names in ASCII braces: ``尊敬的{客户姓名}，您的{产品}已于{日期}发货。``
Chinese names because the people who write and approve these templates (and
the carriers' template registration, 模板报备) read Chinese: ``{客户姓名}`` says
what it is to them where ``{customer_name}`` does not. The code fills them by
English keys (``FIELDS`` maps one to the other), so callers never type Chinese.
Braces are only for fields: a template has no literal ``{`` or ``}`` (SMS
practice does not need them, and a stray one is nearly always a typo).

Opt-out: ``is_opt_out(reply)`` is True when the whole reply, after NFKC
(full-width letters and spaces to ASCII), case folding, dropping spaces and
trimming punctuation at both ends, is exactly one keyword (TD, T, N, STOP,
退订, 退订短信, 取消, ...). Anything more ("TDD", "我不想退订了吗") is for a
person to read: a sentence that mentions 退订 may mean the opposite.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from appliance.errors import ConfigError
from appliance.sms import pdu

__all__ = ["FIELDS", "MAX_PARTS", "Template", "validate_template", "render", "format_date", "part_count",
           "is_opt_out", "opt_out_footer", "OPT_OUT_KEYWORDS"]

# Field name in the template -> key of the value the code passes to ``render``.
FIELDS = {"客户姓名": "customer_name", "产品": "product", "日期": "date", "号码": "number",
          "坐席": "agent", "公司": "company"}
# The longest value we expect for each key, in characters, used to bound the length at save time.
PLAUSIBLE_LENGTH = {"customer_name": 20, "product": 30, "date": 11, "number": 20, "agent": 10, "company": 30}
MAX_PARTS = 5  # carriers bill per part; longer than this is nearly always a mistake
_FIELD = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Template:
    """A named template, validated at construction (ConfigError saying what is wrong).

    Parameters
    ----------
    name : str
        What the template is called in the admin UI.
    text : str
        The text with ``{字段}`` fields from ``FIELDS``.
    """

    name: str
    text: str
    fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("SMS template name is empty")
        try:
            used = validate_template(self.text, FIELDS)
        except ConfigError as exc:
            raise ConfigError(f"SMS template {self.name!r}: {exc}") from None
        object.__setattr__(self, "fields", used)


def _check_braces(text: str) -> None:
    depth, opened = 0, 0
    for i, ch in enumerate(text):
        if ch in "｛｝":
            raise ConfigError(f"full-width brace {ch!r} at character {i + 1}; write fields with ASCII braces {{ }}")
        if ch == "{":
            if depth:
                raise ConfigError(f"unbalanced braces: '{{' at character {i + 1} inside the field opened at "
                                  f"character {opened + 1}")
            depth, opened = 1, i
        elif ch == "}":
            if not depth:
                raise ConfigError(f"unbalanced braces: '}}' at character {i + 1} closes no field")
            depth = 0
    if depth:
        raise ConfigError(f"unbalanced braces: '{{' at character {opened + 1} is never closed")


def validate_template(text: str, allowed_fields=FIELDS, max_parts: int = MAX_PARTS) -> tuple[str, ...]:
    """Check a template at save time; return the field names it uses, in order of first use.

    Parameters
    ----------
    text : str
        The template text.
    allowed_fields : collection of str
        Field names allowed (default: every name in ``FIELDS``).
    max_parts : int
        Most SMS parts the message may take with every field at its plausible longest.

    Raises
    ------
    ConfigError
        Empty text, unbalanced or full-width braces, an unknown field, or too long.
    """
    if not text.strip():
        raise ConfigError("template text is empty")
    _check_braces(text)
    used: list[str] = []
    for name in _FIELD.findall(text):
        if name not in allowed_fields:
            raise ConfigError(f"unknown field {{{name}}}; allowed: {', '.join('{' + f + '}' for f in allowed_fields)}")
        if name not in used:
            used.append(name)
    # Longest plausible substitution: non-GSM characters, so the count is UCS-2 (the worst case).
    longest = _FIELD.sub(lambda m: "中" * PLAUSIBLE_LENGTH.get(FIELDS.get(m.group(1), ""), 30), text)
    parts = part_count(longest)
    if parts > max_parts:
        raise ConfigError(f"template too long: up to {parts} SMS parts with long field values "
                          f"({len(longest)} characters), at most {max_parts} allowed")
    return tuple(used)


def format_date(value: date, style: str = "zh") -> str:
    """``2026年11月28日`` (style ``zh``, no leading zeros, as written in Chinese) or ``2026-11-28`` (``iso``)."""
    if style == "zh":
        return f"{value.year}年{value.month}月{value.day}日"
    if style == "iso":
        return value.isoformat()
    raise ConfigError(f"date style {style!r} must be 'zh' or 'iso'")


def render(template: Template, values: dict, date_style: str = "zh") -> str:
    """The text of ``template`` with its fields filled from ``values`` (keyed by ``FIELDS``' English keys).

    A ``date`` (or ``datetime``) value is written with ``format_date``; anything else with ``str``.
    ConfigError names the field (both names) whose value is missing or empty.
    """
    def fill(match: re.Match) -> str:
        name = match.group(1)
        key = FIELDS[name]
        value = values.get(key)
        if value is None or value == "":
            raise ConfigError(f"SMS template {template.name!r} needs a value for {{{name}}} ({key!r})")
        if isinstance(value, date):
            return format_date(value, date_style)
        return str(value)
    return _FIELD.sub(fill, template.text)


def part_count(text: str) -> int:
    """How many SMS parts ``text`` takes (GSM 7-bit or UCS-2, as ``pdu.split_text`` chooses)."""
    return len(pdu.split_text(text)[1])


OPT_OUT_KEYWORDS = frozenset({"td", "t", "n", "stop", "unsubscribe", "退订", "退订短信", "退定", "取消",
                              "取消短信", "取消订阅", "退"})
_FOOTERS = {"zh": "回复TD退订", "en": "Reply STOP to opt out"}


def _trim(text: str) -> str:
    """NFKC, case-folded, without spaces, punctuation and symbols trimmed from both ends."""
    text = "".join(unicodedata.normalize("NFKC", text).casefold().split())
    keep = [unicodedata.category(ch)[0] not in "PSZC" for ch in text]
    if True not in keep:
        return ""
    start, end = keep.index(True), len(keep) - keep[::-1].index(True)
    return text[start:end]


def is_opt_out(reply: str) -> bool:
    """True when the whole reply is one opt-out keyword (see the module's docstring for the rule)."""
    return _trim(reply) in OPT_OUT_KEYWORDS


def opt_out_footer(lang: str = "zh") -> str:
    """The line carriers require at the end of marketing SMS, e.g. ``回复TD退订``; its keyword passes ``is_opt_out``."""
    try:
        return _FOOTERS[lang]
    except KeyError:
        raise ConfigError(f"opt-out footer language {lang!r} must be one of {', '.join(_FOOTERS)}") from None
