"""Tests of the config schema, validation, TinyDB load/save and the `appliance config` subcommands."""

from __future__ import annotations

import copy
import json

import pytest

from appliance import config as cfgmod
from appliance.config import DEFAULTS, SCHEMA, validate
from appliance.configfile import config_main, load_config, save_config, set_value
from appliance.datadir import DataDir
from appliance.errors import ConfigError
from appliance.storage import open_db


def err(raw) -> str:
    with pytest.raises(ConfigError) as e:
        validate(raw)
    return str(e.value)


# -- schema and defaults -------------------------------------------------------------------

def test_defaults_are_the_six_seat_box():
    assert DEFAULTS == {
        "system": {"name": "呼叫中心", "language": "zh", "box_number": "4008001234", "timezone": "Asia/Shanghai",
                   "area_code": "27"},
        "card": {"driver": "sim", "trunk_channels": 30, "seats": 6, "tone_plan": "cn", "echo_canceller": "oslec",
                 "line_rings": 2},
        "span": {"enabled": True, "signalling": "pri_cpe", "framing": "ccs", "coding": "hdb3", "crc4": True,
                 "timing": 1, "lbo": 0, "dchan": 16, "channels": "1-15,17-31",
                 "calling_number": ""},
        "analog": [{"channel": c, "kind": "fxs"} for c in range(32, 38)],
        "seats": [{"seat": i, "name": f"坐席{i}", "extension": f"80{i}", "sip_password": "", "skill": 5, "queues": {}}
                  for i in range(1, 7)],
        "queue": {"name": "default", "strategy": "longest-idle", "ring_timeout_s": 15.0, "max_wait_s": 300.0,
                  "max_length": 0, "overflow": "", "wrap_up_s": 0.0, "missed_offers": 3, "announce_s": 30.0,
                  "hold": "music", "callback_key": ""},
        "queues": [],
        "agents": [],
        "departments": [],
        "ivr": {"welcome": "您好，欢迎致电。咨询请按1。", "voice": "cmn", "menu": {"1": "queue"},
                "digit_timeout_s": 5.0, "retries": 2, "prompt_level_dbm0": -16.0, "flow": None},
        "prompts": {"transfer": "", "queue_busy": "", "queue_callback": "", "callback": "", "voicemail": "",
                    "invalid": "", "goodbye": "", "blocked": ""},
        "recording": {"enabled": True, "policy": "all", "queues": [], "agents": [], "seats": [], "mode": "mono",
                      "keep_days": 0, "voicemail_keep_days": 0, "max_mb": 0, "min_free_mb": 100},
        "sip": {"address": "127.0.0.1", "port": 5060, "rtp_min": 10000, "rtp_max": 20000, "phones": False,
                "auth": "md5", "trunk_host": "", "trunk_port": 5060, "trunk_transport": "udp", "trunk_domain": "",
                "trunk_username": "", "trunk_password": "", "trunk_register": True},
        "screening": {"blacklist": [], "vip": [], "block_withheld": False},
        "fax": {"numbers": [], "detect": True, "tries": 3, "retry_interval_s": 120, "worker": "process"},
        "sms": DEFAULTS["sms"],  # its own defaults: tests/appliance/test_sms_settings.py
        "sms_rules": [],
        "web": {"listen": "127.0.0.1", "port": 8080},
    }
    assert validate({}) == DEFAULTS
    assert validate(copy.deepcopy(DEFAULTS)) == DEFAULTS
    assert json.loads(json.dumps(DEFAULTS)) == DEFAULTS


def test_every_option_default_passes_its_own_check_and_has_help():
    for section, options in SCHEMA.items():
        for key, opt in options.items():
            assert opt.help, f"{section}.{key}"
            assert cfgmod._check(f"{section}.{key}", opt, copy.deepcopy(opt.default)) == opt.default


def test_validate_returns_a_copy_merged_with_defaults():
    out = validate({"queue": {"ring_timeout_s": 20}, "card": {"seats": 2}})
    assert out["queue"] == {"name": "default", "strategy": "longest-idle", "ring_timeout_s": 20.0, "max_wait_s": 300.0,
                            "max_length": 0, "overflow": "", "wrap_up_s": 0.0, "missed_offers": 3, "announce_s": 30.0,
                            "hold": "music", "callback_key": ""}
    assert isinstance(out["queue"]["ring_timeout_s"], float)
    assert out["seats"] == [{"seat": 1, "name": "坐席1", "extension": "801", "sip_password": "", "skill": 5, "queues": {}},
                            {"seat": 2, "name": "坐席2", "extension": "802", "sip_password": "", "skill": 5, "queues": {}}]
    out["ivr"]["menu"]["2"] = "hangup"
    assert DEFAULTS["ivr"]["menu"] == {"1": "queue"}


def test_seat_items_default_from_their_number():
    out = validate({"card": {"seats": 2}, "seats": [{"seat": 12}, {"name": "王芳", "extension": "8888"}]})
    assert out["seats"] == [{"seat": 12, "name": "坐席12", "extension": "8012", "sip_password": "", "skill": 5, "queues": {}},
                            {"seat": 2, "name": "王芳", "extension": "8888", "sip_password": "", "skill": 5, "queues": {}}]


# -- the first problem, one exact line -----------------------------------------------------

@pytest.mark.parametrize("raw, message", [
    ({"queue": {"ring_timeout_s": 500}}, "queue.ring_timeout_s: 500 is out of range; allowed 5..120 (seconds)"),
    ({"queue": {"ring_timeout_s": 4.5}}, "queue.ring_timeout_s: 4.5 is out of range; allowed 5..120 (seconds)"),
    ({"queue": {"ring_timout_s": 20}},
     "queue.ring_timout_s: unknown key; allowed keys: announce_s, callback_key, hold, max_length, "
     "max_wait_s, missed_offers, name, overflow, ring_timeout_s, strategy, wrap_up_s"),
    ({"queue": {"ring_timeout_s": "15"}}, "queue.ring_timeout_s: '15' is a string; expected a number"),
    ({"queue": {"max_wait_s": float("nan")}}, "queue.max_wait_s: nan is not a finite number"),
    ({"queue": {"strategy": "busiest"}}, "queue.strategy: 'busiest' is not allowed; one of fewest-calls, fixed-order, "
     "least-talk-time, longest-idle, random, ring-all, round-robin, skill-level"),
    ({"queue": {"strategy": "fewest_calls"}}, "queue.strategy: 'fewest_calls' is not allowed; one of fewest-calls, "
     "fixed-order, least-talk-time, longest-idle, random, ring-all, round-robin, skill-level"),
    ({"seats": [{"skill": 0}] + [{}] * 5}, "seats[0].skill: 0 is out of range; allowed 1..10"),
    ({"queue": 5}, "queue: 5 is an integer; expected an object of keys"),
    ({"ivr": {"menu": {"1": "queue", "7": "dance"}}}, "ivr.menu.7: 'dance' is not allowed; one of hangup, queue, repeat"),
    ({"ivr": {"menu": {"12": "queue"}}}, "ivr.menu.12: not a DTMF key; one of 0-9, *, #"),
    ({"ivr": {"menu": {"0": "hangup", "*": "repeat"}}},
     "ivr.menu: {'0': 'hangup', '*': 'repeat'} has no key leading to 'queue'; at least one is required"),
    ({"ivr": {"menu": ["queue"]}}, "ivr.menu: ['queue'] is a list; expected an object mapping DTMF keys to actions"),
    ({"ivr": {"welcome": ""}}, "ivr.welcome: '' must be 1..500 characters (has 0)"),
    ({"ivr": {"retries": 6}}, "ivr.retries: 6 is out of range; allowed 0..5"),
    ({"ivr": {"retries": 2.0}}, "ivr.retries: 2.0 is a number; expected an integer"),
    ({"ivr": {"voice": "yue"}}, "ivr.voice: 'yue' is not allowed; one of cmn, en"),
    ({"ivr": {"prompt_level_dbm0": -3}}, "ivr.prompt_level_dbm0: -3 is out of range; allowed -30..-6 (dBm0)"),
    ({"ivr": {"prompt_level_dbm0": "loud"}}, "ivr.prompt_level_dbm0: 'loud' is a string; expected a number"),
    ({"card": {"seats": True}}, "card.seats: True is a boolean; expected an integer"),
    ({"card": {"seats": 25}}, "card.seats: 25 is out of range; allowed 1..24"),
    ({"card": {"trunk_channels": 0}}, "card.trunk_channels: 0 is out of range; allowed 1..31"),
    ({"card": {"driver": "zap"}}, "card.driver: 'zap' is not allowed; one of dahdi, sim, sip"),
    ({"card": {"tone_plan": "uk"}}, "card.tone_plan: 'uk' is not allowed; one of cn, us"),
    ({"system": {"name": "x" * 65}}, f"system.name: '{'x' * 65}' must be 1..64 characters (has 65)"),
    ({"system": {"language": "fr"}}, "system.language: 'fr' is not allowed; one of en, zh"),
    ({"system": {"box_number": "400-800"}}, "system.box_number: '400-800' must be 3..20 digits"),
    ({"system": {"box_number": 4008001234}}, "system.box_number: 4008001234 is an integer; expected a string"),
    ({"system": {"timezone": "Mars/Olympus"}},
     "system.timezone: 'Mars/Olympus' is not a known time zone; use an IANA name such as Asia/Shanghai"),
    ({"system": {"timezone": "../etc/passwd"}},
     "system.timezone: '../etc/passwd' is not a known time zone; use an IANA name such as Asia/Shanghai"),
    ({"recording": {"enabled": 1}}, "recording.enabled: 1 is an integer; expected true or false"),
    ({"recording": {"mode": "quad"}}, "recording.mode: 'quad' is not allowed; one of mono, stereo"),
    ({"web": {"listen": "localhost"}}, "web.listen: 'localhost' is not an IP address; e.g. 127.0.0.1, 0.0.0.0 or ::1"),
    ({"web": {"port": 70000}}, "web.port: 70000 is out of range; allowed 1..65535"),
    ({"card": {"echo_canceller": "hwec"}}, "card.echo_canceller: 'hwec' is not allowed; one of mg2, none, oslec"),
    ({"span": {"enabled": 1}}, "span.enabled: 1 is an integer; expected true or false"),
    ({"span": {"signalling": "ss7"}}, "span.signalling: 'ss7' is not allowed; one of mfcr2, pri_cpe, pri_net"),
    ({"span": {"framing": "esf"}}, "span.framing: 'esf' is not allowed; one of cas, ccs"),
    ({"span": {"coding": "b8zs"}}, "span.coding: 'b8zs' is not allowed; one of ami, hdb3"),
    ({"span": {"crc4": "yes"}}, "span.crc4: 'yes' is a string; expected true or false"),
    ({"span": {"timing": 2}}, "span.timing: 2 is out of range; allowed 0..1"),
    ({"span": {"lbo": 8}}, "span.lbo: 8 is out of range; allowed 0..7"),
    ({"span": {"dchan": 32}}, "span.dchan: 32 is out of range; allowed 1..31"),
    ({"span": {"channels": "1-15;17-31"}},
     "span.channels: '1-15;17-31' is not a channel list; write numbers and ranges such as 1-15,17-31"),
    ({"span": {"channels": "1-40"}}, "span.channels: '1-40' includes 32; allowed channels 1..31"),
    ({"span": {"clock": 1}},
     "span.clock: unknown key; allowed keys: calling_number, channels, coding, crc4, dchan, enabled, framing, lbo, signalling, timing"),
    ({"analog": 6}, "analog: 6 is an integer; expected a list with one item per analog port"),
    ({"analog": ["fxs"]}, "analog[0]: 'fxs' is a string; expected an object of keys"),
    ({"analog": [{"kind": "fxs"}]}, "analog[0].channel: missing; give the port's DAHDI channel number"),
    ({"analog": [{"channel": 32}, {"channel": 0}]}, "analog[1].channel: 0 is out of range; allowed 1..1024"),
    ({"analog": [{"channel": "32"}]}, "analog[0].channel: '32' is a string; expected an integer"),
    ({"analog": [{"channel": 32, "kind": "phone"}]}, "analog[0].kind: 'phone' is not allowed; one of fxo, fxs"),
    ({"analog": [{"channel": 32, "port": 1}]}, "analog[0].port: unknown key; allowed keys: channel, kind"),
    ({"wbe": {}},
     "wbe: unknown section; allowed sections: agents, analog, card, departments, fax, ivr, "
     "prompts, queue, queues, recording, screening, seats, sip, sms, sms_rules, span, system, web"),
    ([1], "config: [1] is a list; expected an object of sections"),
])
def test_errors_name_key_value_and_what_is_allowed(raw, message):
    assert err(raw) == message


def test_ip_phone_seats_need_passwords_and_a_trunk_its_account():
    with pytest.raises(ConfigError, match=r"seats\[0\]\.sip_password: needed when the seats are IP phones"):
        validate({"card": {"driver": "sip"}})
    seats = [{"sip_password": f"secret-{i}"} for i in range(6)]
    assert validate({"sip": {"phones": True}, "seats": seats})["seats"][5]["sip_password"] == "secret-5"
    with pytest.raises(ConfigError, match="sip.trunk_username: needed with sip.trunk_host"):
        validate({"card": {"driver": "sip"}, "seats": seats, "sip": {"trunk_host": "ims.example.cn"}})
    with pytest.raises(ConfigError, match="sip.rtp_min: 20000 leaves no RTP port pair"):
        validate({"sip": {"rtp_min": 20000, "rtp_max": 20001}})


def test_seat_errors():
    seats = copy.deepcopy(DEFAULTS["seats"])
    bad = copy.deepcopy(seats)
    bad[3]["extension"] = "80a"
    assert err({"seats": bad}) == "seats[3].extension: '80a' must be 2..8 digits"
    bad = copy.deepcopy(seats)
    bad[5]["extension"] = "802"
    assert err({"seats": bad}) == "seats[5].extension: '802' is already used by seats[1]; extensions must be unique"
    bad = copy.deepcopy(seats)
    bad[4]["seat"] = 1
    assert err({"seats": bad}) == "seats[4].seat: 1 is already used by seats[0]; seats must be unique"
    bad = copy.deepcopy(seats)
    bad[0]["seat"] = 0
    assert err({"seats": bad}) == "seats[0].seat: 0 is out of range; allowed 1..24"
    bad = copy.deepcopy(seats)
    bad[2]["desk"] = 3
    assert err({"seats": bad}) == "seats[2].desk: unknown key; allowed keys: extension, name, queues, seat, sip_password, skill"
    assert err({"seats": seats[:5]}) == "seats: has 5 items but card.seats is 6; give one item per seat"
    assert len(validate({"card": {"seats": 8}})["seats"]) == 8
    assert err({"card": {"seats": 8}, "seats": seats}) == "seats: has 6 items but card.seats is 8; give one item per seat"
    assert err({"seats": {"1": {}}}) == "seats: {'1': {}} is an object; expected a list with one item per seat"
    assert err({"seats": ["801"] * 6}) == "seats[0]: '801' is a string; expected an object of keys"


# -- the TinyDB file -----------------------------------------------------------------------

def read_tables(path) -> dict:
    return json.loads(path.read_bytes())


def test_load_missing_file_gives_defaults_and_writes_nothing(tmp_path):
    path = tmp_path / "config.json"
    assert load_config(path) == DEFAULTS
    assert list(tmp_path.iterdir()) == []


def test_defaults_round_trip_through_the_file(tmp_path):
    path = tmp_path / "config.json"
    assert save_config(path, {}) == DEFAULTS
    stored = read_tables(path)["settings"]
    assert sorted(d["section"] for d in stored.values()) == sorted(DEFAULTS)
    assert {d["section"]: d["values"] for d in stored.values()} == DEFAULTS
    assert load_config(path) == DEFAULTS
    before = path.read_bytes()
    save_config(path, {"queue": {"ring_timeout_s": 15}})  # no change: the file is not rewritten
    assert path.read_bytes() == before


def test_save_merges_partial_sections_and_keeps_doc_ids(tmp_path):
    path = tmp_path / "config.json"
    save_config(path, {})
    ids = {d["section"]: i for i, d in read_tables(path)["settings"].items()}
    new = save_config(path, {"queue": {"ring_timeout_s": 20}, "ivr": {"menu": {"1": "queue", "0": "hangup"}}})
    assert new["queue"]["ring_timeout_s"] == 20.0 and new["queue"]["max_wait_s"] == 300.0
    assert new["ivr"]["menu"] == {"1": "queue", "0": "hangup"}
    assert load_config(path) == new
    assert {d["section"]: i for i, d in read_tables(path)["settings"].items()} == ids
    seats = [{"seat": 1, "name": "张三", "extension": "8001", "sip_password": "", "skill": 5, "queues": {}},
             {"seat": 2, "name": "李四", "extension": "8002", "sip_password": "", "skill": 5, "queues": {}}]
    new = save_config(path, {"card": {"seats": 2}, "seats": seats})
    assert new["seats"] == seats and load_config(path)["card"]["seats"] == 2


def test_saving_a_bad_value_leaves_the_file_byte_identical(tmp_path):
    path = tmp_path / "config.json"
    save_config(path, {"system": {"name": "客服中心"}})
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"^queue\.ring_timeout_s: 500 is out of range; allowed 5\.\.120"):
        save_config(path, {"system": {"name": "新名字"}, "queue": {"ring_timeout_s": 500}})
    with pytest.raises(ConfigError, match=r"^seats: has 6 items but card.seats is 7"):
        save_config(path, {"card": {"seats": 7}})
    with pytest.raises(ConfigError, match=r"^config update: 3 is an integer"):
        save_config(path, 3)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "config.json.lock"]


def test_other_tables_survive_save_and_are_ignored_by_validation(tmp_path):
    path = tmp_path / "config.json"
    with open_db(path) as db:
        db.table("users").insert_multiple([{"user": "admin", "hash": "x" * 60, "roles": ["installer"]},
                                           {"user": "王芳", "hash": "y", "roles": []}])
    users_before = read_tables(path)["users"]
    save_config(path, {"web": {"port": 8443}})
    save_config(path, {"recording": {"mode": "stereo"}})
    tables = read_tables(path)
    assert tables["users"] == users_before
    assert load_config(path)["web"]["port"] == 8443
    with open_db(path) as db:  # the web UI's own view of its table still works
        assert [u["user"] for u in db.table("users").all()] == ["admin", "王芳"]
        assert len(db.table("settings")) == len(DEFAULTS)


def test_load_errors_name_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"settings": {"1": {"section": "queue", "values": ', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^config file '{path}' is not valid JSON: "):
        load_config(path)
    path.write_text('{"settings": {"1": {"section": "queue", "values": {"ring_timeout_s": 500}}}}')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == f"config file {path}: queue.ring_timeout_s: 500 is out of range; allowed 5..120 (seconds)"
    path.write_text('{"settings": {"1": {"section": "queue", "values": {}}, "2": {"section": "queue", "values": {}}}}')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == f"config file {path}: section 'queue' is stored twice (documents 1, 2)"
    path.write_text('{"settings": {"1": {"name": "queue"}}}')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == (f"config file {path}: document 1 is {{'name': 'queue'}}; "
                            'expected {"section": name, "values": ...}')
    path.write_text("[]")
    with pytest.raises(ConfigError, match="holds list, expected an object"):
        load_config(path)


def test_save_repairs_an_invalid_stored_value(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"settings": {"4": {"section": "queue", "values": {"ring_timeout_s": 500}}}}')
    new = set_value(path, "queue.ring_timeout_s", "30")
    assert new["queue"]["ring_timeout_s"] == 30.0
    assert load_config(path) == new
    assert read_tables(path)["settings"]["4"]["section"] == "queue"  # its document kept its id


def test_set_value_parses_json_else_takes_a_string(tmp_path):
    path = tmp_path / "config.json"
    assert set_value(path, "queue.ring_timeout_s", "20")["queue"]["ring_timeout_s"] == 20.0
    assert set_value(path, "recording.enabled", "false")["recording"]["enabled"] is False
    assert set_value(path, "system.name", "客服 中心")["system"]["name"] == "客服 中心"
    assert set_value(path, "system.box_number", '"95512"')["system"]["box_number"] == "95512"
    assert set_value(path, "ivr.menu.0", "hangup")["ivr"]["menu"] == {"1": "queue", "0": "hangup"}
    assert set_value(path, "ivr.menu.#", "repeat")["ivr"]["menu"] == {"1": "queue", "0": "hangup", "#": "repeat"}
    assert set_value(path, "seats[2].name", "王芳")["seats"][2] == {"seat": 3, "name": "王芳", "extension": "803", "sip_password": "", "skill": 5, "queues": {}}
    cfg = set_value(path, "ivr.menu", '{"9": "queue"}')
    assert cfg["ivr"]["menu"] == {"9": "queue"}
    assert load_config(path) == cfg


def test_set_value_on_the_span_and_the_analog_ports(tmp_path):
    path = tmp_path / "config.json"
    assert set_value(path, "analog[5].kind", "fxo")["analog"][5] == {"channel": 37, "kind": "fxo"}
    assert set_value(path, "span.channels", "17-31,1-15")["span"]["channels"] == "1-15,17-31"
    cfg = set_value(path, "span", '{"signalling": "mfcr2", "framing": "cas", "crc4": false}')  # both in one save
    assert (cfg["span"]["signalling"], cfg["span"]["framing"], cfg["span"]["crc4"]) == ("mfcr2", "cas", False)
    assert cfg["span"]["timing"] == 1 and cfg["analog"][5]["kind"] == "fxo"
    cfg = set_value(path, "analog", '[{"channel": 40}, {"channel": 41, "kind": "fxo"}]')
    assert cfg["analog"] == [{"channel": 40, "kind": "fxs"}, {"channel": 41, "kind": "fxo"}]
    assert load_config(path) == cfg


@pytest.mark.parametrize("key, text, message", [
    ("system.box_number", "4008001234", "system.box_number: 4008001234 is an integer; expected a string"),
    ("queue.ring_timout_s", "20",
     "queue.ring_timout_s: unknown key; allowed keys: announce_s, callback_key, hold, max_length, "
     "max_wait_s, missed_offers, name, overflow, ring_timeout_s, strategy, wrap_up_s"),
    ("ivr.menu.7", "dance", "ivr.menu.7: 'dance' is not allowed; one of hangup, queue, repeat"),
    ("seats[3].extension", "80a", "seats[3].extension: '80a' must be 2..8 digits"),
    ("seats[6].name", "x", "seats[6].name: seats[6] does not exist; the list has 6 items (0..5)"),
    ("queue.name.x", "1", "queue.name.x: queue.name is a string; it has no key 'x'"),
    ("queue..name", "1",
     "queue..name: not a config key; write section.key, e.g. queue.ring_timeout_s or seats[0].name"),
    ("queue.name[0]", "1", "queue.name[0]: queue.name is a string; it has no item [0]"),
    ("qeue.name", "1",
     "qeue: unknown section; allowed sections: agents, analog, card, departments, fax, ivr, "
     "prompts, queue, queues, recording, screening, seats, sip, sms, sms_rules, span, system, web"),
    ("span.signalling", "mfcr2",
     "span.signalling: 'mfcr2' needs span.framing 'cas', not 'ccs'; change both in one save"),
    ("analog[6].kind", "fxo", "analog[6].kind: analog[6] does not exist; the list has 6 items (0..5)"),
])
def test_set_value_errors_write_nothing(tmp_path, key, text, message):
    path = tmp_path / "config.json"
    save_config(path, {})
    before = path.read_bytes()
    with pytest.raises(ConfigError) as e:
        set_value(path, key, text)
    assert str(e.value) == message
    assert path.read_bytes() == before


# -- `appliance config ...` ----------------------------------------------------------------

def run(capsysbinary, argv, data_dir):
    code = config_main(argv, data_dir)
    out, errb = capsysbinary.readouterr()
    return code, out.decode("utf-8"), errb.decode("utf-8")


def test_config_main_subcommands(tmp_path, capsysbinary):
    dd = DataDir.open(tmp_path / "data", create=True)
    code, out, errs = run(capsysbinary, ["defaults"], dd)
    assert (code, errs) == (0, "") and json.loads(out) == DEFAULTS and "呼叫中心" in out
    code, out, errs = run(capsysbinary, ["check"], dd)
    assert (code, out, errs) == (0, "ok\n", "")
    code, out, errs = run(capsysbinary, ["set", "queue.ring_timeout_s", "20"], dd)
    assert (code, out, errs) == (0, "queue.ring_timeout_s = 20.0\n", "")
    code, out, errs = run(capsysbinary, ["set", "system.name", "客服中心"], dd)
    assert (code, out, errs) == (0, 'system.name = "客服中心"\n', "")
    code, out, errs = run(capsysbinary, ["show"], dd)
    shown = json.loads(out)
    assert code == 0 and shown["queue"]["ring_timeout_s"] == 20.0 and shown["system"]["name"] == "客服中心"
    assert shown == load_config(dd.config)


def test_config_main_errors_are_one_line(tmp_path, capsysbinary):
    dd = DataDir.open(tmp_path / "data", create=True)
    code, out, errs = run(capsysbinary, ["set", "queue.ring_timeout_s", "500"], dd)
    assert (code, out) == (1, "")
    assert errs == "error: queue.ring_timeout_s: 500 is out of range; allowed 5..120 (seconds)\n"
    assert not dd.config.exists()
    usage = "usage: appliance config show | check | defaults | set KEY VALUE"
    assert run(capsysbinary, ["frobnicate"], dd) == (1, "", f"error: unknown subcommand 'frobnicate'; {usage}\n")
    assert run(capsysbinary, [], dd) == (1, "", f"error: unknown subcommand None; {usage}\n")
    assert run(capsysbinary, ["set", "queue.name"], dd) == (1, "", f"error: wrong arguments for 'set'; {usage}\n")
    dd.config.write_text('{"settings": {"1": {"section": "web", "values": {"port": 0}}}}')
    line = f"error: config file {dd.config}: web.port: 0 is out of range; allowed 1..65535\n"
    assert run(capsysbinary, ["check"], dd) == (1, "", line)
    assert run(capsysbinary, ["show"], dd) == (1, "", line)
    dd.config.write_text("{not json")
    code, out, errs = run(capsysbinary, ["check"], dd)
    assert code == 1 and errs.startswith(f"error: config file '{dd.config}' is not valid JSON") and errs.count("\n") == 1


def test_concurrent_savers_lose_no_update(tmp_path):
    import threading

    path = tmp_path / "config.json"
    save_config(path, {})

    def saver(key: str, values: list) -> None:
        for v in values:
            set_value(path, key, json.dumps(v))

    threads = [threading.Thread(target=saver, args=("queue.ring_timeout_s", list(range(5, 45)))),
               threading.Thread(target=saver, args=("web.port", list(range(9000, 9040))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cfg = load_config(path)
    assert (cfg["queue"]["ring_timeout_s"], cfg["web"]["port"]) == (44.0, 9039)


def test_every_strategy_is_a_queue_strategy_and_the_old_name_still_loads(tmp_path):
    from appliance.acd import STRATEGIES
    for name in STRATEGIES:
        assert validate({"queue": {"strategy": name}})["queue"]["strategy"] == name
    assert validate({"queue": {"strategy": "longest_idle"}})["queue"]["strategy"] == "longest-idle"
    old = tmp_path / "config.json"
    old.write_text(json.dumps({"settings": {"1": {"section": "queue", "values": {"strategy": "longest_idle"}}}}),
                   encoding="utf-8")  # a file saved by an older version
    assert load_config(old)["queue"]["strategy"] == "longest-idle"
    assert save_config(old, {"web": {"port": 8443}})["queue"]["strategy"] == "longest-idle"


def test_seat_skill_levels():
    seats = validate({"card": {"seats": 2}, "seats": [{"skill": 10}, {}]})["seats"]
    assert [s["skill"] for s in seats] == [10, 5]


def test_caller_prompts_take_only_their_own_fields():
    cfg = validate({"prompts": {"queue_busy": "请稍候，您是第{position}位，约{minutes}分钟。"}})
    assert cfg["prompts"]["queue_busy"] == "请稍候，您是第{position}位，约{minutes}分钟。"
    assert err({"prompts": {"queue_busy": "第{place}位"}}) == \
        "prompts.queue_busy: {place} is not a field it can say; allowed {minutes}, {position}"
    assert err({"prompts": {"goodbye": "再见{number}"}}) == \
        "prompts.goodbye: {number} is not a field it can say; allowed none"
    assert err({"prompts": {"callback": "回拨 {number"}}) == \
        "prompts.callback: '回拨 {number' has a brace that opens no field; fields: {number}"
    assert err({"prompts": {"transfer": 5}}) == "prompts.transfer: 5 is an integer; expected a string"


def test_departments_are_transfer_targets_by_name():
    flow = {"start": "t", "nodes": {"t": {"kind": "transfer", "to": "dept:售后"}}}
    cfg = validate({"departments": [{"name": "售后", "number": "02788886666"}], "ivr": {"flow": flow}})
    from appliance.config_acd import ivr_flow
    assert ivr_flow(cfg)["nodes"]["t"]["to"] == "number:02788886666"
    assert cfg["ivr"]["flow"]["nodes"]["t"]["to"] == "dept:售后"  # the saved flow keeps the name
    assert err({"ivr": {"flow": flow}}) == "ivr.flow: node 't' field 'to': 'dept:售后' names no department; " \
        "departments: none"
    assert err({"departments": [{"name": "a", "number": "12345"}, {"name": "a", "number": "54321"}]}) == \
        "departments[1].name: 'a' is already used by departments[0]; department names must be unique"
    assert err({"departments": [{"name": "a"}]}) == \
        "departments[0].number: missing; every department needs a name and a number"
