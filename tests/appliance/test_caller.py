"""Caller identification: normalising, area names, screening lists, the customer store."""

from __future__ import annotations

import dataclasses
import random
import sqlite3
import threading

import pytest

from appliance.caller import Customer, CustomerStore, Number, Screening, area, history, normalise
from appliance.errors import ConfigError


def fields(n: Number | None) -> tuple | None:
    return None if n is None else (n.e164, n.national, n.kind, n.country)


# --- normalise: exact values ---------------------------------------------------------------------

MOBILE = ("+8613912345678", "13912345678", "mobile", "CN")
WUHAN = ("+862788886666", "02788886666", "landline", "CN")


@pytest.mark.parametrize("raw, expected", [
    ("+8613912345678", MOBILE),
    ("8613912345678", MOBILE),
    ("008613912345678", MOBILE),
    ("013912345678", MOBILE),
    ("13912345678", MOBILE),
    ("139 1234 5678", MOBILE),
    ("139-1234-5678", MOBILE),
    ("+86 0139 1234 5678", MOBILE),
    ("02788886666", WUHAN),
    ("027-8888 6666", WUHAN),
    ("(027) 88886666", WUHAN),
    ("+862788886666", WUHAN),
    ("+8602788886666", WUHAN),
    ("00862788886666", WUHAN),
    ("862788886666", WUHAN),
    ("2788886666", WUHAN),  # PRI national-type number: area code without the trunk 0
    ("88886666", WUHAN),  # local number: the box's own area code
    ("01088886666", ("+861088886666", "01088886666", "landline", "CN")),
    ("02164881234", ("+862164881234", "02164881234", "landline", "CN")),
    ("075512345678", ("+8675512345678", "075512345678", "landline", "CN")),
    ("+86 571 8888 6666", ("+8657188886666", "057188886666", "landline", "CN")),
    ("4008001234", ("+864008001234", "4008001234", "service", "CN")),
    ("400-800-1234", ("+864008001234", "4008001234", "service", "CN")),
    ("8008101234", ("+868008101234", "8008101234", "service", "CN")),
    ("95555", (None, "95555", "service", "CN")),
    ("95588", (None, "95588", "service", "CN")),
    ("10086", (None, "10086", "service", "CN")),
    ("10010", (None, "10010", "service", "CN")),
    ("12315", (None, "12315", "service", "CN")),
    ("12345", (None, "12345", "service", "CN")),
    ("110", (None, "110", "service", "CN")),
    ("116114", (None, "116114", "service", "CN")),
    ("96110", (None, "96110", "service", "CN")),
    ("+8695555", (None, "95555", "service", "CN")),
    ("+12025550123", ("+12025550123", "0012025550123", "international", "US")),
    ("0012025550123", ("+12025550123", "0012025550123", "international", "US")),
    ("+44 20 7123 4567", ("+442071234567", "00442071234567", "international", "GB")),
    ("+85221234567", ("+85221234567", "0085221234567", "international", "HK")),
    ("+886 2 2312 3456", ("+886223123456", "00886223123456", "international", "TW")),
    ("8888666", (None, "8888666", "unknown", "")),  # 7 digits: not a valid Wuhan number
    ("12012345678", (None, "12012345678", "unknown", "")),  # no such mobile range
    ("123456789", (None, "123456789", "unknown", "")),
    ("+999123", (None, "999123", "unknown", "")),
    ("+86", (None, "86", "unknown", "")),
    ("+862", (None, "862", "unknown", "")),
    ("+86 8888666", (None, "868888666", "unknown", "")),
    ("sip:1391234", (None, "1391234", "unknown", "")),
])
def test_normalise_exact(raw, expected):
    n = normalise(raw)
    assert fields(n) == expected
    assert n.raw == raw


@pytest.mark.parametrize("raw", [None, "", "   ", "anonymous", "Anonymous", "unavailable", "--"])
def test_withheld_or_empty_is_none(raw):
    assert normalise(raw) is None


def test_home_area_decides_local_numbers():
    assert fields(normalise("88886666", home_area="10")) == ("+861088886666", "01088886666", "landline", "CN")
    assert fields(normalise("88886666", home_area="755")) == ("+8675588886666", "075588886666", "landline", "CN")
    # a full number does not depend on home_area
    assert fields(normalise("02188886666", home_area="10")) == ("+862188886666", "02188886666", "landline", "CN")
    for bad in ("027", "0", "", "2", "1234", "ab"):
        with pytest.raises(ConfigError, match="home_area"):
            normalise("88886666", home_area=bad)


def test_number_is_frozen():
    n = normalise("13912345678")
    with pytest.raises(dataclasses.FrozenInstanceError):
        n.kind = "landline"


# --- normalise: property-style loops over generated numbers ------------------------------------

MOBILE_PREFIXES = ["130", "131", "134", "135", "136", "137", "138", "139", "150", "151", "158", "159",
                   "176", "177", "180", "181", "186", "187", "188", "189", "198"]
AREAS = ["10", "20", "21", "22", "23", "24", "25", "27", "28", "29", "311", "371", "431", "571", "591", "755"]


def spaced(rng: random.Random, s: str) -> str:
    out = []
    for ch in s:
        out.append(ch)
        if rng.random() < 0.15:
            out.append(rng.choice(" -"))
    return "".join(out)


def test_every_form_of_a_mobile_gives_the_same_number():
    rng = random.Random(20240611)
    for _ in range(300):
        nat = rng.choice(MOBILE_PREFIXES) + "".join(rng.choice("0123456789") for _ in range(8))
        want = ("+86" + nat, nat, "mobile", "CN")
        for form in (nat, "0" + nat, "86" + nat, "+86" + nat, "0086" + nat, "+86 " + nat, spaced(rng, nat)):
            assert fields(normalise(form)) == want, form
        assert fields(normalise(normalise(nat).national)) == want


def test_every_form_of_a_landline_gives_the_same_number():
    rng = random.Random(7)
    for _ in range(300):
        code = rng.choice(AREAS)
        sub = rng.choice("2345678") + "".join(rng.choice("0123456789") for _ in range(7))
        want = ("+86" + code + sub, "0" + code + sub, "landline", "CN")
        for form in ("0" + code + sub, "+86" + code + sub, "0086" + code + sub, "86" + code + sub,
                     code + sub, spaced(rng, "0" + code + "-" + sub)):
            assert fields(normalise(form)) == want, form
        assert fields(normalise(sub, home_area=code)) == want


def test_generated_service_numbers():
    rng = random.Random(3)
    for _ in range(200):
        short = rng.choice(["95", "96", "100", "123", "1"]) + "".join(rng.choice("0123456789") for _ in range(3))
        assert fields(normalise(short)) == (None, short, "service", "CN"), short
        toll = rng.choice(["400", "800"]) + rng.choice("123456789") + "".join(
            rng.choice("0123456789") for _ in range(6))
        assert normalise(toll).kind == "service" and normalise(toll).national == toll


def test_generated_numbers_are_stable_under_renormalising():
    """national (the form to dial from China) normalises back to the same number, for every known kind."""
    rng = random.Random(99)
    for _ in range(500):
        raw = rng.choice(["+", "", "0", "00", "86"]) + "".join(rng.choice("0123456789")
                                                             for _ in range(rng.randint(3, 14)))
        n = normalise(raw)
        if n is None:
            continue
        assert n.kind in ("mobile", "landline", "service", "international", "unknown")
        assert n.national.isdigit()
        if n.kind == "unknown":  # the digits as given; they may mean something else without the "+"
            assert (n.e164, n.national, n.country) == (None, raw.lstrip("+"), "")
            continue
        again = normalise(n.national)
        assert (again.e164, again.national, again.kind) == (n.e164, n.national, n.kind), raw
        if n.kind in ("mobile", "landline", "international"):
            assert n.e164.startswith("+") and n.e164[1:].isdigit()
        if n.kind == "international":
            assert n.national == "00" + n.e164[1:] and n.country not in ("", "CN")


# --- area ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("01088886666", "北京市"),
    ("02788886666", "湖北省武汉市"),
    ("88886666", "湖北省武汉市"),
    ("02164881234", "上海市"),
    ("075512345678", "广东省深圳市"),
    ("13912345678", "江苏省常州市"),  # phonenumbers' geocoder for 1391234
    ("13807125678", "湖北省武汉市"),  # a Wuhan mobile prefix, 1380712
    ("+8613807125678", "湖北省武汉市"),
    ("+12025550123", "美国"),
    ("+442071234567", "英国"),
    ("+85221234567", "香港"),
])
def test_area_exact(raw, expected):
    assert area(normalise(raw)) == expected


def test_area_in_english():
    assert area(normalise("02788886666"), lang="en") == "Wuhan, Hubei"
    assert area(normalise("+12025550123"), lang="en") == "United States"


@pytest.mark.parametrize("raw", [None, "95555", "10086", "4008001234", "8888666", "19912345678"])
def test_area_unknown_is_none(raw):
    # 199 mobiles: the geocoder knows only "中国", which is no province or city
    assert area(normalise(raw)) is None


# --- screening -----------------------------------------------------------------------------------

def test_screening_exact_entries_match_every_form():
    s = Screening(blacklist=["+86 139 1234 5678", "88886666", "95555"], vip=["0086-10-8888-6666"])
    for raw in ("13912345678", "013912345678", "8613912345678", "+8613912345678"):
        assert s.check(raw) == "blocked"
        assert s.check(normalise(raw)) == "blocked"
    for raw in ("02788886666", "+862788886666", "2788886666", "88886666"):
        assert s.check(raw) == "blocked"
    assert s.check("95555") == "blocked"
    assert s.check("+861088886666") == "vip"
    assert s.check("01088886666") == "vip"
    assert s.check("13912345679") == "normal"
    assert s.check("02188886666") == "normal"


def test_screening_home_area_applies_to_entries():
    s = Screening(blacklist=["88886666"], vip=[], home_area="10")
    assert s.check("01088886666") == "blocked"
    assert s.check("02788886666") == "normal"


def test_screening_prefixes():
    s = Screening(blacklist=["0755*", "1700*", "171*", "+1*"], vip=["0571 *", "138*"])
    assert s.check("075512345678") == "blocked"
    assert s.check("+8675512345678") == "blocked"
    assert s.check("17001234567") == "blocked"
    assert s.check("+8617101234567") == "blocked"
    assert s.check("17101234567") == "blocked"
    assert s.check("+12025550123") == "blocked"
    assert s.check("0012025550123") == "blocked"
    assert s.check("057188886666") == "vip"
    assert s.check("13807125678") == "vip"
    assert s.check("17201234567") == "normal"
    assert s.check("02788886666") == "normal"
    assert s.check("+442071234567") == "normal"


def test_screening_blacklist_wins_over_vip_prefix():
    s = Screening(blacklist=["13912345678"], vip=["139*"])
    assert s.check("13912345678") == "blocked"
    assert s.check("13912345670") == "vip"


def test_screening_withheld():
    assert Screening([], []).check(None) == "normal"
    assert Screening([], []).check("anonymous") == "normal"
    assert Screening([], [], block_withheld=True).check(None) == "blocked"
    assert Screening([], [], block_withheld=True).check("13912345678") == "normal"


@pytest.mark.parametrize("blacklist, vip, message", [
    (["13912345678", "0755**"], [], r"screening.blacklist\[1\] '0755\*\*'"),
    (["*"], [], r"screening.blacklist\[0\] '\*'"),
    (["07*55"], [], r"screening.blacklist\[0\] '07\*55'"),
    ([], ["abc"], r"screening.vip\[0\] 'abc'"),
    ([], ["1391234567x"], r"screening.vip\[0\] '1391234567x'"),
    ([], ["13912345678", ""], r"screening.vip\[1\] ''"),
    ([], [13912345678], r"screening.vip\[0\] 13912345678"),
    ("13912345678", [], r"screening.blacklist: a list"),
    (["+8613912345678"], ["013912345678"], r"'\+8613912345678' is in the blacklist and '013912345678'"),
])
def test_screening_bad_lists_name_the_entry(blacklist, vip, message):
    with pytest.raises(ConfigError, match=message):
        Screening(blacklist, vip)


def test_screening_bad_home_area():
    with pytest.raises(ConfigError, match="home_area"):
        Screening(["0755*"], [], home_area="027")


def test_screening_generated_prefix_agrees_with_startswith():
    rng = random.Random(5)
    s = Screening(blacklist=["170*", "0898*"], vip=["95*"])
    for _ in range(300):
        raw = rng.choice(["170", "171", "139", "0898", "0899", "95", "96"]) + "".join(
            rng.choice("0123456789") for _ in range(rng.choice([3, 7, 8])))
        n = normalise(raw)
        want = ("blocked" if n.national.startswith(("170", "0898")) else
                "vip" if n.national.startswith("95") else "normal")
        assert s.check(n) == want, raw


# --- history -------------------------------------------------------------------------------------

CALLS = [
    {"caller": "13912345678", "start_ts": 100.0, "disposition": "answered", "seat": 1, "talk_s": 30},
    {"caller": "+8613912345678", "start_ts": 300.0, "disposition": "abandoned", "seat": None, "talk_s": 0},
    {"caller": None, "start_ts": 350.0, "disposition": "answered", "seat": 2, "talk_s": 5},
    {"caller": "02788886666", "start_ts": 400.0, "disposition": "answered", "seat": 3, "talk_s": 12},
    {"caller": "013912345678", "start_ts": 200.0, "disposition": "answered", "seat": 2, "talk_s": 61},
    {"caller": "88886666", "start_ts": 500.0, "disposition": "answered", "seat": 4, "talk_s": 9},
    {"start_ts": 600.0, "disposition": "answered"},
]


def test_history_matches_all_forms_newest_first():
    got = history("8613912345678", CALLS)
    assert [c["start_ts"] for c in got] == [300.0, 200.0, 100.0]
    assert [c["start_ts"] for c in history(normalise("13912345678"), CALLS, limit=2)] == [300.0, 200.0]
    assert [c["start_ts"] for c in history("+862788886666", CALLS)] == [500.0, 400.0]
    # with home_area "10" the journal's "88886666" is Beijing's 01088886666, as is the number asked for
    assert [c["start_ts"] for c in history("88886666", CALLS, home_area="10")] == [500.0]
    assert [c["start_ts"] for c in history("02788886666", CALLS, home_area="10")] == [400.0]
    assert history("13800000000", CALLS) == []
    assert history("anonymous", CALLS) == []
    assert history("13912345678", CALLS, limit=0) == []


# --- customer store ------------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    return CustomerStore(tmp_path / "customers.db")


def test_store_add_lookup_any_form(store, tmp_path):
    c = store.add("+86 139 1234 5678", " 张伟 ", "武汉光谷科技有限公司", "老客户", vip=True)
    assert c == Customer("13912345678", "张伟", "武汉光谷科技有限公司", "老客户", True)
    store.add("88886666", "李娜")
    for raw in ("13912345678", "013912345678", "8613912345678", "+8613912345678"):
        assert store.lookup(raw) == c
    assert store.lookup(normalise("13912345678")) == c
    assert store.lookup("02788886666").name == "李娜"
    assert store.lookup("+862788886666").number == "02788886666"
    assert store.lookup("13800000000") is None
    assert store.lookup(None) is None
    assert store.lookup("anonymous") is None
    assert store.lookup("12") is None
    # persisted, in WAL mode, one file
    again = CustomerStore(tmp_path / "customers.db")
    assert again.lookup("13912345678") == c
    with sqlite3.connect(tmp_path / "customers.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [x.number for x in again.all()] == ["02788886666", "13912345678"]


def test_store_add_update_errors(store):
    store.add("13912345678", "张伟")
    with pytest.raises(ValueError, match="13912345678 already exists"):
        store.add("+8613912345678", "王芳")
    with pytest.raises(ValueError, match="not a phone number"):
        store.add("8888666", "王芳")
    with pytest.raises(ValueError, match="name is empty"):
        store.add("13800001111", "  ")
    with pytest.raises(KeyError):
        store.update("13800001111", name="王芳")
    c = store.update("013912345678", note="投诉过两次", vip=True)
    assert c == Customer("13912345678", "张伟", "", "投诉过两次", True)
    assert store.update("13912345678", vip=False).vip is False
    assert store.lookup("13912345678") == Customer("13912345678", "张伟", "", "投诉过两次", False)
    with pytest.raises(ValueError, match="name is empty"):
        store.update("13912345678", name="")
    assert store.lookup("13912345678").name == "张伟"


def test_store_history_uses_its_home_area(tmp_path):
    s = CustomerStore(tmp_path / "c.db", home_area="10")
    calls = [{"caller": "88886666", "start_ts": 1.0}, {"caller": "02788886666", "start_ts": 2.0}]
    assert s.history("01088886666", calls) == [calls[0]]


GBK_CSV = ("号码,姓名,公司,备注,VIP\r\n"
           "13912345678,张伟,武汉光谷科技有限公司,老客户,是\r\n"
           "027-8888 6666,李娜,汉口批发市场,\"地址: 江汉路, 18号\",否\r\n"
           "+8613807125678,王芳,,,1\r\n"
           "\r\n"
           "010 8888 6666,赵敏,北京分公司,,\r\n")


def test_import_gbk_csv_with_chinese_names(store, tmp_path):
    path = tmp_path / "客户.csv"
    path.write_bytes(GBK_CSV.encode("gbk"))
    assert store.import_csv(path) == 4
    assert store.lookup("+8613912345678") == Customer("13912345678", "张伟", "武汉光谷科技有限公司", "老客户", True)
    assert store.lookup("88886666") == Customer("02788886666", "李娜", "汉口批发市场", "地址: 江汉路, 18号", False)
    assert store.lookup("13807125678").vip is True
    assert store.lookup("01088886666").name == "赵敏"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_import_other_encodings_and_english_header(store, encoding):
    text = "Name,Number,Note\n张伟,13912345678,客户\n"
    assert store.import_csv(text.encode(encoding)) == 1
    assert store.lookup("13912345678") == Customer("13912345678", "张伟", "", "客户", False)


def test_import_replaces_existing(store):
    store.add("13912345678", "张伟", note="旧")
    store.import_csv("号码,姓名,备注\n013912345678,张伟伟,新\n".encode("gbk"))
    assert store.lookup("13912345678") == Customer("13912345678", "张伟伟", "", "新", False)


@pytest.mark.parametrize("text, message", [
    ("号码,姓名\n13912345678,张伟\n8888666,李娜\n", "line 3: customer number '8888666'"),
    ("号码,姓名\n13912345678,张伟\n\n13800001111,\n", "line 4: customer 13800001111: the name is empty"),
    ("号码,姓名,VIP\n13912345678,张伟,也许\n", "line 2: vip '也许'"),
    ("号码,姓名\n13912345678,张伟\n+8613912345678,李娜\n", "line 3: number 13912345678 is also on line 2"),
    ("号码,姓名,备注\n13912345678,张伟,\"两行\n备注\"\n88886666x,李娜,\n", "line 4: customer number '88886666x'"),
    ("电话号码,公司\n13912345678,张伟\n", "line 1: the header"),
    ("", "line 1: the header"),
])
def test_bad_row_rejected_with_its_line_and_nothing_stored(store, text, message):
    store.add("13700001111", "原有客户")
    with pytest.raises(ConfigError, match=message):
        store.import_csv(text.encode("gbk"))
    assert [c.number for c in store.all()] == ["13700001111"]


def test_undecodable_file_names_its_line(store):
    data = "号码,姓名\n13912345678,张伟\n".encode("gbk") + b"13800001111,\x80\xff\n"
    with pytest.raises(ConfigError, match="line 3: the file is neither UTF-8 nor GBK"):
        store.import_csv(data)
    assert store.all() == []


@pytest.mark.parametrize("encoding, bom", [("utf-8", b"\xef\xbb\xbf"), ("gbk", b"")])
def test_export_round_trip(store, tmp_path, encoding, bom):
    store.import_csv(GBK_CSV.encode("gbk"))
    path = tmp_path / f"out-{encoding}.csv"
    assert store.export_csv(path, encoding=encoding) == 4
    data = path.read_bytes()
    assert data.startswith(bom + "号码,姓名,公司,备注,VIP".encode(encoding))
    other = CustomerStore(tmp_path / f"other-{encoding}.db")
    assert other.import_csv(path) == 4
    assert other.all() == store.all()


def test_export_gbk_refuses_characters_gbk_lacks(store, tmp_path):
    store.add("13912345678", "张伟😀")
    path = tmp_path / "out.csv"
    with pytest.raises(ValueError, match="cannot be written in gbk"):
        store.export_csv(path, encoding="gbk")
    assert not path.exists()
    with pytest.raises(ValueError, match="use 'utf-8' or 'gbk'"):
        store.export_csv(path, encoding="latin-1")
    store.export_csv(path)
    assert "张伟😀" in path.read_bytes().decode("utf-8-sig")


def test_concurrent_readers_while_a_writer_updates(tmp_path):
    path = tmp_path / "customers.db"
    writer = CustomerStore(path)
    numbers = [f"139{i:08d}" for i in range(50)]
    for i, n in enumerate(numbers):
        writer.add(n, f"客户{i}", note="v0")
    errors: list[BaseException] = []
    stop = threading.Event()

    def read(seed: int) -> None:
        reader = CustomerStore(path)  # its own store on the same file, like another process would
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                n = rng.choice(numbers)
                c = reader.lookup("+86" + n)
                assert c is not None and c.number == n and c.note.startswith("v")
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=read, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    try:
        for round_ in range(1, 6):
            writer.import_csv(("号码,姓名,备注\n" + "".join(
                f"{n},客户{i},v{round_}\n" for i, n in enumerate(numbers))).encode("gbk"))
            # every import is atomic: all customers carry the same version
            assert {c.note for c in writer.all()} == {f"v{round_}"}
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert errors == []
    assert writer.lookup(numbers[0]).note == "v5"
