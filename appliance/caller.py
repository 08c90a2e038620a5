"""Caller identification: normalise the calling number, its area, screening, customer records.

Pure: no clock, no I/O except ``CustomerStore``'s SQLite file and the CSV files it imports or exports.

Rules of ``normalise`` (the input is what a driver reports as ``Seized.calling``):

1. Spaces, dashes, dots and brackets are dropped. No digit left (None, "", SIP "anonymous") -> None.
2. "+" or "00" starts an international number. "+86"/"0086" is China: the rest is a national significant
   number (a stray trunk "0" after 86 is dropped). Other country codes are "international" when phonenumbers
   says the number is valid: e164 kept, ``national`` the form to dial from China ("00" + country code +
   number), ``country`` its region ("US", "HK"). An invalid foreign number is "unknown".
3. A bare "86" prefix is stripped when what follows (11+ digits in all) is a valid mobile or landline.
4. Domestic digits, first match wins:
   - service: 400/800 + 7 digits (e164 kept); short codes of 3-6 digits starting "1" (110, 10086, 12315,
     116114), 5-8 digits starting "95"/"96" (95555, 96110), or a CN short code phonenumbers knows;
     national is the digits as they are, e164 None;
   - mobile: 11 digits starting "1", or "0" + those (a mobile dialled with a trunk 0), phonenumbers type
     MOBILE (or FIXED_LINE_OR_MOBILE); national is the 11 digits;
   - landline: "0" + area + subscriber, or the same without the 0 (10-11 digits, a PRI national-type
     number), phonenumbers type FIXED_LINE; national "0" + area + subscriber;
   - local landline: 7-8 digits starting 2-9 get ``home_area`` (the box's own area code, "27" Wuhan,
     "10" Beijing) when the result is a valid landline;
   - anything else: "unknown", national = the digits, e164 None, country "".
"""

from __future__ import annotations

import csv
import functools
import io
import dataclasses
import os
import re
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

import phonenumbers
from phonenumbers import PhoneNumberType, shortnumberinfo

from appliance.atomicfile import write_bytes_atomically
from appliance.errors import ConfigError

KINDS = ("mobile", "landline", "service", "international", "unknown")
_MOBILE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_FIXED = (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_DROP = re.compile(r"[\s\-.()\u3000]")
_SHORT = re.compile(r"1\d{2,5}|9[56]\d{3,6}")
_TOLL = re.compile(r"[48]00\d{7}")
_AREA = re.compile(r"[1-9]\d{1,2}")


@dataclass(frozen=True)
class Number:
    """A calling number in the forms the appliance needs; ``national`` is what to dial from China."""
    e164: str | None
    national: str
    kind: str  # one of KINDS
    country: str  # "CN", a foreign region code, or "" for unknown
    raw: str


def _parse(text: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None


def _cn_valid(nsn: str, types: tuple[int, ...]) -> bool:
    """Is the national significant number ``nsn`` a valid Chinese number of one of ``types``?"""
    num = _parse("+86" + nsn) if nsn else None
    return num is not None and phonenumbers.is_valid_number(num) and phonenumbers.number_type(num) in types


def _domestic(d: str, raw: str, home_area: str, nsn: bool) -> Number:
    """Classify Chinese digits ``d``; ``nsn`` when they came after +86 (no trunk prefix possible)."""
    if _TOLL.fullmatch(d):
        return Number("+86" + d, d, "service", "CN", raw)
    short = _parse(d) if len(d) <= 8 and not nsn else None
    if _SHORT.fullmatch(d) or (short and shortnumberinfo.is_valid_short_number_for_region(short, "CN")):
        return Number(None, d, "service", "CN", raw)
    mob = d[1:] if len(d) == 12 and d.startswith("01") else d
    if len(mob) == 11 and mob.startswith("1") and _cn_valid(mob, _MOBILE):
        return Number("+86" + mob, mob, "mobile", "CN", raw)
    if nsn or (len(d) in (10, 11) and not d.startswith("0")):
        sub = d
    elif d.startswith("0"):
        sub = d[1:]
    else:  # a local number gets the box's own area code
        sub = home_area + d if len(d) in (7, 8) and d[0] in "23456789" else ""
    if _cn_valid(sub, _FIXED):
        return Number("+86" + sub, "0" + sub, "landline", "CN", raw)
    return Number(None, d, "unknown", "", raw)


@functools.lru_cache(maxsize=4096)  # pure; history() and repeat callers hit the cache
def normalise(raw: str | None, *, home_area: str = "27") -> Number | None:
    """The ``Number`` for a calling number as a driver reports it, None when withheld (rules above)."""
    if raw is None:
        return None
    if not _AREA.fullmatch(home_area):
        raise ConfigError(f"home_area {home_area!r}: an area code without the leading 0, e.g. '27' or '10'")
    text = _DROP.sub("", raw)
    digits = re.sub(r"\D", "", text)
    if not digits:
        return None
    if not re.fullmatch(r"\+?\d+", text):
        return Number(None, digits, "unknown", "", raw)
    if text.startswith("+") or digits.startswith("00"):
        full = digits if text.startswith("+") else digits[2:]
        if full.startswith("86"):
            rest = full[3:] if full.startswith("860") else full[2:]
            n = _domestic(rest, raw, home_area, nsn=True) if rest else None
            return n if n and n.kind != "unknown" else Number(None, digits, "unknown", "", raw)
        num = _parse("+" + full)
        if num is not None and phonenumbers.is_valid_number(num):
            region = phonenumbers.region_code_for_number(num) or ""
            e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
            return Number(e164, "00" + e164[1:], "international", region, raw)
        return Number(None, digits, "unknown", "", raw)
    if digits.startswith("86") and len(digits) >= 11:
        stripped = _domestic(digits[2:], raw, home_area, nsn=True)
        if stripped.kind in ("mobile", "landline"):
            return stripped
    return _domestic(digits, raw, home_area, nsn=False)


def area(number: Number | None, lang: str = "zh") -> str | None:
    """Province and city ("湖北省武汉市") of a Chinese mobile or landline, the country ("美国") of a foreign one.

    phonenumbers' geocoder as seen from China; None for service and unknown numbers, and when it knows only
    the country of a Chinese number ("中国": a new mobile prefix, 400)."""
    if number is None or number.e164 is None or number.kind not in ("mobile", "landline", "international"):
        return None
    num = _parse(number.e164)
    from phonenumbers import geocoder  # its data takes a third of a second to load: only when an area is asked

    text = geocoder.description_for_number(num, lang, region="CN") if num is not None else ""
    if not text or (number.kind != "international" and text == geocoder.country_name_for_number(num, lang)):
        return None
    return text


def _key(number: Number) -> str:
    """The comparison key of a number: its e164 when it has one, else its national digits."""
    return number.e164 or number.national


class Screening:
    """Blacklist and VIP numbers from config: ``check`` says "blocked", "vip" or "normal".

    Entries are numbers in any form ``normalise`` takes (compared once normalised, so "+8613912345678"
    matches "013912345678") or prefixes ending in "*": "0755*" and "1700*" match the national form,
    "+1*" the E.164 form. The blacklist wins over the VIP list. A withheld number is "normal" unless
    ``block_withheld``.
    """

    def __init__(self, blacklist: Iterable[str] = (), vip: Iterable[str] = (), home_area: str = "27", *,
                 block_withheld: bool = False) -> None:
        normalise("", home_area=home_area)  # checks home_area
        self.home_area = home_area
        self.block_withheld = bool(block_withheld)
        self._blocked, self._blocked_prefixes = self._load("blacklist", blacklist)
        self._vip, self._vip_prefixes = self._load("vip", vip)
        for key in sorted(set(self._blocked) & set(self._vip))[:1]:
            raise ConfigError(f"screening: {self._blocked[key]!r} is in the blacklist and "
                              f"{self._vip[key]!r} in the vip list; a number may be in only one")

    def _load(self, name: str, entries: Iterable[str]) -> tuple[dict[str, str], tuple[str, ...]]:
        if isinstance(entries, str):
            raise ConfigError(f"screening.{name}: a list of numbers, not one string {entries!r}")
        exact: dict[str, str] = {}
        prefixes: list[str] = []
        for i, entry in enumerate(entries):
            text = _DROP.sub("", entry) if isinstance(entry, str) else ""
            if not re.fullmatch(r"\+?\d+\*?", text):
                raise ConfigError(f"screening.{name}[{i}] {entry!r}: not a number (digits, optionally after '+') "
                                  "nor a prefix ending in one '*' (\"0755*\")")
            number = normalise(text.rstrip("*"), home_area=self.home_area)
            assert number is not None  # it has digits
            if text.endswith("*"):
                prefixes.append(text[:-1])
            else:
                exact[_key(number)] = entry
        return exact, tuple(prefixes)

    def check(self, number: Number | str | None) -> str:
        """"blocked", "vip" or "normal" for a caller (a ``Number``, a raw string, or None when withheld)."""
        number = _as_number(number, self.home_area)
        if number is None:
            return "blocked" if self.block_withheld else "normal"
        if self._matches(number, self._blocked, self._blocked_prefixes):
            return "blocked"
        if self._matches(number, self._vip, self._vip_prefixes):
            return "vip"
        return "normal"

    @staticmethod
    def _matches(number: Number, exact: dict[str, str], prefixes: tuple[str, ...]) -> bool:
        return _key(number) in exact or any(
            ((number.e164 or "") if p.startswith("+") else number.national).startswith(p) for p in prefixes)


def _as_number(number: Number | str | None, home_area: str) -> Number | None:
    return normalise(number, home_area=home_area) if isinstance(number, str) else number


def history(number: Number | str, calls: list[dict], limit: int = 10, *, home_area: str = "27") -> list[dict]:
    """The journal's call records (dicts with "caller", "start_ts", ...) from ``number``, newest first."""
    target = _as_number(number, home_area)
    if target is None:
        return []
    out = [c for c in calls if isinstance(c.get("caller"), str)
           and (n := normalise(c["caller"], home_area=home_area)) is not None and _key(n) == _key(target)]
    out.sort(key=lambda c: c.get("start_ts") or 0, reverse=True)
    return out[:max(0, limit)]


@dataclass(frozen=True)
class Customer:
    """One customer record; ``number`` is the national form (the store's key)."""
    number: str
    name: str
    company: str = ""
    note: str = ""
    vip: bool = False


_COLUMNS = {"number": ("number", "phone", "号码", "电话", "电话号码", "手机", "手机号码", "联系电话"),
            "name": ("name", "姓名", "名称", "客户", "客户名称", "联系人"), "company": ("company", "公司", "单位"),
            "note": ("note", "备注", "说明"), "vip": ("vip", "贵宾", "重要客户")}
_TRUE = {"1", "true", "yes", "y", "是", "vip", "√"}
_FALSE = {"", "0", "false", "no", "n", "否"}


class CustomerStore:
    """Customers in one SQLite file (WAL), keyed by the national form of their number.

    Each call opens its own connection, so threads may share the store; every write is one transaction.
    """

    def __init__(self, path: str | os.PathLike, *, home_area: str = "27") -> None:
        normalise("", home_area=home_area)  # checks home_area
        self.path = os.fspath(path)
        self.home_area = home_area
        with closing(sqlite3.connect(self.path, timeout=10.0, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")  # outside any transaction, where it would be ignored
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS customers (number TEXT PRIMARY KEY, name TEXT NOT NULL,"
                       " company TEXT NOT NULL DEFAULT '', note TEXT NOT NULL DEFAULT '',"
                       " vip INTEGER NOT NULL DEFAULT 0)")

    @contextmanager
    def _connect(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A fresh connection; for writes one IMMEDIATE transaction, committed or rolled back."""
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:  # reads get a consistent snapshot, writes the write lock up front
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def _number(self, number: Number | str) -> str:
        n = _as_number(number, self.home_area)
        if n is None or n.kind == "unknown":
            raise ValueError(f"customer number {number!r} is not a phone number we can normalise")
        return n.national

    def add(self, number: Number | str, name: str, company: str = "", note: str = "", vip: bool = False) -> Customer:
        """Store a new customer; ValueError when the number is already stored or not a number."""
        c = self._validate(Customer(self._number(number), name, company, note, bool(vip)))
        with self._connect() as db:
            try:
                db.execute("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", _row(c))
            except sqlite3.IntegrityError:
                raise ValueError(f"customer {c.number} already exists; use update") from None
        return c

    def update(self, number: Number | str, *, name: str | None = None, company: str | None = None,
               note: str | None = None, vip: bool | None = None) -> Customer:
        """Change the given fields of a stored customer; KeyError when there is none."""
        key = self._number(number)
        with self._connect() as db:
            old = _fetch(db, key)
            if old is None:
                raise KeyError(key)
            changes = {k: v for k, v in dict(name=name, company=company, note=note, vip=vip).items() if v is not None}
            c = self._validate(dataclasses.replace(old, **changes))
            db.execute("UPDATE customers SET name=?, company=?, note=?, vip=? WHERE number=?", _row(c)[1:] + (key,))
        return c

    def lookup(self, number: Number | str | None) -> Customer | None:
        """The customer calling from ``number`` (any form), None when unknown or withheld."""
        n = _as_number(number, self.home_area)
        if n is None or n.kind == "unknown":
            return None
        with self._connect(write=False) as db:
            return _fetch(db, n.national)

    def all(self) -> list[Customer]:
        with self._connect(write=False) as db:
            rows = db.execute("SELECT * FROM customers ORDER BY number").fetchall()
        return [Customer(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def history(self, number: Number | str, calls: list[dict], limit: int = 10) -> list[dict]:
        return history(number, calls, limit, home_area=self.home_area)

    @staticmethod
    def _validate(c: Customer) -> Customer:
        if not all(isinstance(v, str) for v in (c.name, c.company, c.note)):
            raise ValueError(f"customer {c.number}: name, company and note must be text")
        if not c.name.strip():
            raise ValueError(f"customer {c.number}: the name is empty")
        return Customer(c.number, c.name.strip(), c.company.strip(), c.note.strip(), bool(c.vip))

    def import_csv(self, source: str | os.PathLike | bytes) -> int:
        """Add or replace customers from a CSV file (GBK/GB18030, or UTF-8 with or without BOM); returns the count.

        The first row names the columns (English or Chinese: 号码, 姓名, 公司, 备注, VIP). Every row is checked
        before one transaction writes them all: a bad row raises ConfigError naming its line, nothing is written."""
        if not isinstance(source, bytes):
            with open(source, "rb") as f:
                source = f.read()
        reader = csv.reader(io.StringIO(_decode(source), newline=""))
        header = next(reader, None)
        cols: dict[str, int] = {}
        for i, title in reversed(list(enumerate(header or []))):  # the first of two same columns wins
            cols.update({field: i for field, names in _COLUMNS.items() if title.strip().lower() in names})
        if "number" not in cols or "name" not in cols:
            raise ConfigError(f"customer CSV line 1: the header {header!r} needs number/号码 and name/姓名 columns")
        customers: dict[str, tuple[int, Customer]] = {}
        line = reader.line_num + 1
        for row in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            v = {f: row[i].strip() if i < len(row) else "" for f, i in cols.items()}
            try:  # ValueError from the number, the name or the VIP flag
                if v.get("vip", "").lower() not in _TRUE | _FALSE:
                    raise ValueError(f"vip {v['vip']!r} is not one of 1/0, yes/no, 是/否")
                c = self._validate(Customer(self._number(v["number"]), v["name"], v.get("company", ""),
                                            v.get("note", ""), v.get("vip", "").lower() in _TRUE))
            except ValueError as e:
                raise ConfigError(f"customer CSV line {start}: {e}") from None
            if c.number in customers:
                raise ConfigError(f"customer CSV line {start}: number {c.number} is also on line "
                                  f"{customers[c.number][0]}")
            customers[c.number] = (start, c)
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO customers VALUES (?, ?, ?, ?, ?)",
                           [_row(c) for _, c in customers.values()])
        return len(customers)

    def export_csv(self, path: str | os.PathLike, encoding: str = "utf-8") -> int:
        """Write every customer to ``path`` atomically, as UTF-8 with a BOM (Excel reads it) or "gbk"."""
        enc = {"utf8": "utf-8-sig", "utf8sig": "utf-8-sig", "gbk": "gbk", "gb18030": "gb18030"}.get(
            encoding.lower().replace("-", "").replace("_", ""))
        if enc is None:
            raise ValueError(f"export encoding {encoding!r}: use 'utf-8' or 'gbk'")
        out, rows = io.StringIO(newline=""), self.all()
        csv.writer(out).writerows([["号码", "姓名", "公司", "备注", "VIP"]] + [
            [c.number, c.name, c.company, c.note, "1" if c.vip else "0"] for c in rows])
        try:
            data = out.getvalue().encode(enc)
        except UnicodeEncodeError as e:
            bad = out.getvalue()[e.start:e.end]
            raise ValueError(f"export: {bad!r} cannot be written in {encoding}; export as utf-8") from None
        write_bytes_atomically(path, data)
        return len(rows)


def _row(c: Customer) -> tuple:
    return (c.number, c.name, c.company, c.note, int(c.vip))


def _customer(r: tuple | None) -> Customer | None:
    return None if r is None else Customer(r[0], r[1], r[2], r[3], bool(r[4]))


def _fetch(db: sqlite3.Connection, key: str) -> Customer | None:
    return _customer(db.execute("SELECT * FROM customers WHERE number=?", (key,)).fetchone())


def _decode(data: bytes) -> str:
    """CSV bytes as text: a BOM decides; else strict UTF-8; else GB18030 (a superset of GBK)."""
    for enc in ["utf-8-sig"] if data.startswith(b"\xef\xbb\xbf") else ["utf-8", "gb18030"]:
        try:
            return data.decode(enc)
        except UnicodeDecodeError as e:
            err = e
    line = data[:err.start].count(b"\n") + 1
    raise ConfigError(f"customer CSV line {line}: the file is neither UTF-8 nor GBK text ({err.reason})")
