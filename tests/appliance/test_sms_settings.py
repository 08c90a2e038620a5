"""The ``sms`` and ``sms_rules`` config sections (``appliance.sms.settings``): defaults, each refusal's exact line,
the checks that tie options together, and what the box builds from a validated config."""

from __future__ import annotations

import zoneinfo

import pytest

from appliance.config import DEFAULTS, validate
from appliance.errors import ConfigError
from appliance.sms.dispatch import DispatchRule
from appliance.sms.gateway import Credentials, GatewaySession
from appliance.sms.httpgw import HttpGateway, HttpGatewayConfig, ReportFields, parse_report
from appliance.sms.outbox import Outbox
from appliance.sms.settings import (allowed_hours, configured_vias, dispatcher, gateway_settings, http_config,
                                    outbox_options, report_fields, sms_rules)

SMGP = {"smgp_host": "10.1.1.1", "smgp_account": "12345678", "smgp_src_id": "1065900012345"}
CMPP = {"cmpp_host": "gw.cmpp.example", "cmpp_account": "901234", "cmpp_src_id": "106571234"}
HTTP = {"http_url": "http://gw.example/send?u={account}&to={number}&msg={text}", "http_success": "^OK:(?P<ref>\\d+)"}
RULE = {"event": "voicemail.left", "to": ["13900001111"], "text": "{号码}留言{时长}秒"}


def err(raw) -> str:
    with pytest.raises(ConfigError) as e:
        validate(raw)
    return str(e.value)


def test_a_fresh_box_sends_through_the_modem_and_has_no_rules():
    assert DEFAULTS["sms"] == {
        "via": "modem", "modem_port": "auto", "modem_rate_per_min": 6,
        "smgp_host": "", "smgp_port": 8890, "smgp_account": "", "smgp_secret": "", "smgp_src_id": "",
        "smgp_service_id": "", "smgp_rate_per_min": 600,
        "cmpp_host": "", "cmpp_port": 7890, "cmpp_account": "", "cmpp_secret": "", "cmpp_src_id": "",
        "cmpp_service_id": "", "cmpp_rate_per_min": 600,
        "http_url": "", "http_method": "GET", "http_body": "", "http_body_kind": "form", "http_success": "",
        "http_failure": "", "http_headers": "", "http_sender": "", "http_account": "", "http_password": "",
        "http_timeout_s": 10, "http_rate_per_min": 60, "http_report_token": "", "http_report_ref": "msgid",
        "http_report_status": "status", "http_report_delivered": "DELIVRD,0",
        "tries": 5, "retry_s": 30, "allowed_hours": "08:00-21:00", "opt_out_footer": True}
    assert DEFAULTS["sms_rules"] == []
    cfg = validate({})
    assert cfg["sms"] == DEFAULTS["sms"]
    assert configured_vias(cfg) == ["modem"]
    assert http_config(cfg) is None
    assert report_fields(cfg) is None  # pushed delivery reports are refused until a token is set
    assert gateway_settings(cfg, "smgp") is None and gateway_settings(cfg, "cmpp") is None
    assert sms_rules(cfg) == []


@pytest.mark.parametrize("sms, message", [
    ({"via": "sms"}, "sms.via: 'sms' is not allowed; one of cmpp, http, modem, smgp"),
    ({"modem_port": "COM3"}, "sms.modem_port: 'COM3' is not allowed; auto (the USB modem the box finds) or a device "
                             "path starting with /dev/"),
    ({"modem_port": "/dev/"}, "sms.modem_port: '/dev/' is not allowed; auto (the USB modem the box finds) or a "
                              "device path starting with /dev/"),
    ({"modem_rate_per_min": 61}, "sms.modem_rate_per_min: 61 is out of range; allowed 1..60"),
    ({"smgp_account": "123456789"}, "sms.smgp_account: '123456789' must be 0..8 characters (has 9)"),
    ({"cmpp_account": "1234567"}, "sms.cmpp_account: '1234567' must be 0..6 characters (has 7)"),
    ({"smgp_src_id": "10659-01"}, "sms.smgp_src_id: '10659-01' must be 0..21 digits"),
    ({"cmpp_port": 0}, "sms.cmpp_port: 0 is out of range; allowed 1..65535"),
    ({"smgp_rate_per_min": 6001}, "sms.smgp_rate_per_min: 6001 is out of range; allowed 1..6000"),
    ({"http_method": "PUT"}, "sms.http_method: 'PUT' is not allowed; one of GET, POST"),
    ({"http_body_kind": "xml"}, "sms.http_body_kind: 'xml' is not allowed; one of form, json, text"),
    ({"tries": 0}, "sms.tries: 0 is out of range; allowed 1..20"),
    ({"retry_s": 3601}, "sms.retry_s: 3601 is out of range; allowed 1..3600 (seconds)"),
    ({"http_report_token": "x" * 65}, f"sms.http_report_token: '{'x' * 65}' must be 0..64 characters (has 65)"),
    ({"http_report_token": "abc123"},
     "sms.http_report_token: 'abc123' is not allowed; 16..64 characters of A-Z, a-z, 0-9, _ and - (the secret of "
     "the report URL), or empty (pushed reports refused)"),
    ({"http_report_token": "0123456789abcde/"},
     "sms.http_report_token: '0123456789abcde/' is not allowed; 16..64 characters of A-Z, a-z, 0-9, _ and - (the "
     "secret of the report URL), or empty (pushed reports refused)"),
    ({"http_report_ref": ""}, "sms.http_report_ref: '' must be 1..32 characters (has 0)"),
    ({"http_report_ref": "msg id "}, "sms.http_report_ref: 'msg id ' is not a field name; no spaces around it"),
    ({"http_report_status": "  "}, "sms.http_report_status: '  ' is not a field name; no spaces around it"),
    ({"http_report_status": "s" * 33}, f"sms.http_report_status: '{'s' * 33}' must be 1..32 characters (has 33)"),
    ({"http_report_status": "msgid"},
     "sms.http_report_status: 'msgid' is also sms.http_report_ref; the id and the status are different fields"),
    ({"http_report_delivered": ""}, "sms.http_report_delivered: '' must be 1..200 characters (has 0)"),
    ({"http_report_delivered": "DELIVRD,,0"},
     "sms.http_report_delivered: 'DELIVRD,,0' has an empty value; give status values separated by commas, "
     "e.g. DELIVRD,0"),
    ({"http_report_delivered": 0}, "sms.http_report_delivered: 0 is an integer; expected a string"),
    ({"opt_out_footer": "yes"}, "sms.opt_out_footer: 'yes' is a string; expected true or false"),
    ({"allowed_hours": "8-21"}, "sms.allowed_hours: '8-21' is not HH:MM-HH:MM (e.g. '08:00-21:00')"),
    ({"allowed_hours": "08:00-21:00 "}, "sms.allowed_hours: '08:00-21:00 ' must be 1..11 characters (has 12)"),
    ({"allowed_hours": "08.00-21.00"}, "sms.allowed_hours: '08.00-21.00' is not HH:MM-HH:MM (e.g. '08:00-21:00')"),
    ({"allowed_hours": "08:00-25:00"}, "sms.allowed_hours: '25:00' is not HH:MM (00:00 to 23:59)"),
    ({"allowed_hours": "08:60-21:00"}, "sms.allowed_hours: '08:60' is not HH:MM (00:00 to 23:59)"),
    ({"allowed_hours": "00:00-24:01"}, "sms.allowed_hours: '24:01' is not HH:MM (00:00 to 23:59)"),
    ({"allowed_hours": "21:00-08:00"}, "sms.allowed_hours: '21:00-08:00' ends before it starts; a window may not "
                                       "wrap midnight"),
    ({"allowed_hours": "09:00-09:00"}, "sms.allowed_hours: '09:00-09:00' is empty; use '00:00-24:00' for always"),
    ({"colour": "red"}, "sms.colour: unknown key; allowed keys: allowed_hours, cmpp_account, cmpp_host, cmpp_port, "
                        "cmpp_rate_per_min, cmpp_secret, cmpp_service_id, cmpp_src_id, http_account, http_body, "
                        "http_body_kind, http_failure, http_headers, http_method, http_password, http_rate_per_min, "
                        "http_report_delivered, http_report_ref, http_report_status, http_report_token, "
                        "http_sender, http_success, http_timeout_s, http_url, modem_port, modem_rate_per_min, "
                        "opt_out_footer, retry_s, smgp_account, smgp_host, smgp_port, smgp_rate_per_min, "
                        "smgp_secret, smgp_service_id, smgp_src_id, tries, via"),
])
def test_bad_values_name_the_key(sms, message):
    assert err({"sms": sms}) == message


def test_allowed_hours():
    assert (allowed_hours("08:00-21:00").start, allowed_hours("08:00-21:00").end) == (8 * 3600, 21 * 3600)
    assert (allowed_hours("00:00-24:00").start, allowed_hours("00:00-24:00").end) == (0, 86400)
    assert validate({"sms": {"allowed_hours": "00:00-24:00", "modem_port": "/dev/ttyUSB2"}})["sms"]["allowed_hours"] \
        == "00:00-24:00"


@pytest.mark.parametrize("sms, message", [
    ({"via": "smgp"}, "sms.smgp_host: needed with sms.via 'smgp'; give the gateway's host or address"),
    ({"via": "smgp", "smgp_host": "10.1.1.1"},
     "sms.smgp_account: needed with sms.via 'smgp'; give the account the carrier gave"),
    ({"via": "cmpp", "cmpp_host": "gw", "cmpp_account": "901234"},
     "sms.cmpp_src_id: needed with sms.via 'cmpp'; give the enterprise number customers see"),
    # a gateway with a host is checked even when it is not the default transport
    ({"cmpp_host": "gw"}, "sms.cmpp_account: needed with sms.cmpp_host set; give the account the carrier gave"),
    ({**CMPP, "smgp_host": "gw", "smgp_account": "1"},
     "sms.smgp_src_id: needed with sms.smgp_host set; give the enterprise number customers see"),
    ({"via": "http"}, "sms.http_url: needed with sms.via 'http'; give the gateway's send URL"),
    ({"http_url": "http://gw/send"},
     "sms.http_success: needed with sms.http_url set; give a regex that the gateway's OK answer matches"),
    ({**HTTP, "http_url": "ftp://gw/send"}, "sms.http_url: 'ftp://gw/send' must start with http:// or https://"),
    ({**HTTP, "http_url": "http://gw/send?to={mobile}"},
     "sms.http_url: 'http://gw/send?to={mobile}' has unknown placeholder {mobile}; allowed: {number}, {text}, "
     "{msg_id}, {sender}, {account}, {password}"),
    ({**HTTP, "http_method": "POST", "http_body": "to={to}"},
     "sms.http_body: 'to={to}' has unknown placeholder {to}; allowed: {number}, {text}, {msg_id}, {sender}, "
     "{account}, {password}"),
    ({**HTTP, "http_body": "to={number}"}, "sms.http_body: 'to={number}' is only sent with method POST"),
    ({**HTTP, "http_success": "OK("}, "sms.http_success: 'OK(' is not a valid regex: missing ), unterminated "
                                      "subpattern at position 2"),
    ({**HTTP, "http_success": "OK:(?P<id>\\d+)"},
     "sms.http_success: 'OK:(?P<id>\\\\d+)' may only name the group 'ref', not ['id']"),
    ({**HTTP, "http_failure": "[ERR"}, "sms.http_failure: '[ERR' is not a valid regex: unterminated character set "
                                       "at position 0"),
    ({**HTTP, "http_headers": "X-Token: abc\nno colon here"},
     "sms.http_headers: line 2 'no colon here' is not 'Name: value'"),
])
def test_a_transport_in_use_must_be_complete(sms, message):
    assert err({"sms": sms}) == message


def test_half_filled_gateways_not_in_use_are_kept():
    cfg = validate({"sms": {"smgp_account": "1", "http_success": "OK", "cmpp_src_id": "106"}})
    assert configured_vias(cfg) == ["modem"]


@pytest.mark.parametrize("rule, message", [
    ({"to": ["13900001111"], "text": "x"}, "sms_rules[0].event: missing; every rule needs an event and a text"),
    ({"event": "voicemail.left", "to": ["13900001111"]},
     "sms_rules[0].text: missing; every rule needs an event and a text"),
    ({**RULE, "event": "call.missed"},
     "sms_rules[0].event: 'call.missed' is not allowed; one of complaint.assigned, missed.unreturned, voicemail.left"),
    ({**RULE, "via": "fax"}, "sms_rules[0].via: 'fax' is not allowed; one of modem, smgp, cmpp, http, or empty "
                             "(sms.via)"),
    ({**RULE, "to": ["02788886666"]},
     "sms_rules[0].to[0]: '02788886666' is not a mobile number; SMS reach mobiles only"),
    ({**RULE, "to": ["13900001111", "139*"]},
     "sms_rules[0].to[1]: '139*' is not a mobile number; SMS reach mobiles only"),
    ({**RULE, "to": "13900001111"}, "sms_rules[0].to: '13900001111' is a string; expected a list of numbers such as "
                                    "[\"13912345678\", \"1700*\"]"),
    ({**RULE, "to": []}, "sms_rules[0].to: [] texts nobody; give mobile numbers"),
    ({"event": "complaint.assigned", "to": [], "text": "{工单}"},
     "sms_rules[0].to: [] texts nobody; give mobile numbers or to_department true"),
    ({**RULE, "to_department": True},
     "sms_rules[0].to_department: true only with event complaint.assigned, not 'voicemail.left'"),
    ({**RULE, "event": "missed.unreturned", "after_min": 0},
     "sms_rules[0].after_min: 0 is out of range; allowed 1..1440 (minutes)"),
    ({**RULE, "text": ""}, "sms_rules[0].text: '' must be 1..300 characters (has 0)"),
    ({**RULE, "text": "  "}, "sms_rules[0].text: template text is empty"),
    ({**RULE, "text": "{客户姓名}留言"},
     "sms_rules[0].text: unknown field {客户姓名}; allowed: {号码}, {时间}, {日期}, {部门}, {工单}, {次数}, {信箱}, {时长}"),
    ({**RULE, "text": "{号码 留言"}, "sms_rules[0].text: unbalanced braces: '{' at character 1 is never closed"),
    ({**RULE, "text": "{号码}留言，工单{工单}"},
     "sms_rules[0].text: {工单} is not given by event voicemail.left; it gives {号码}, {时间}, {日期}, {信箱}, {时长}"),
    ({"event": "missed.unreturned", "to": ["13900001111"], "text": "{号码}留言{时长}秒"},
     "sms_rules[0].text: {时长} is not given by event missed.unreturned; it gives {号码}, {时间}, {日期}, {次数}"),
    ({"event": "complaint.assigned", "to_department": True, "text": "{次数}"},
     "sms_rules[0].text: {次数} is not given by event complaint.assigned; it gives {号码}, {时间}, {日期}, {部门}, "
     "{工单}"),
    ({**RULE, "colour": "red"}, "sms_rules[0].colour: unknown key; allowed keys: after_min, event, text, to, "
                                "to_department, via"),
])
def test_rule_refusals_name_the_rule_and_key(rule, message):
    assert err({"sms_rules": [rule]}) == message


def test_rule_list_shape_and_transport():
    assert err({"sms_rules": {"event": "voicemail.left"}}) == \
        "sms_rules: {'event': 'voicemail.left'} is an object; expected a list of rules"
    assert err({"sms_rules": [RULE, "x"]}) == "sms_rules[1]: 'x' is a string; expected an object of keys"
    assert err({"sms_rules": [RULE, {**RULE, "via": "cmpp"}]}) == \
        "sms_rules[1].via: 'cmpp' is not set up (sms.cmpp_host is empty); set up: modem"
    assert err({"sms": SMGP, "sms_rules": [{**RULE, "via": "http"}]}) == \
        "sms_rules[0].via: 'http' is not set up (sms.http_url is empty); set up: modem, smgp"


def test_rules_validate_with_defaults_and_become_dispatch_rules():
    cfg = validate({
        "sms": {**SMGP, **HTTP, "via": "smgp"},
        "departments": [{"name": "售后", "number": "02788886666", "mobile": "13600136000"},
                        {"name": "财务", "number": "02788887777"}],
        "sms_rules": [{"event": "complaint.assigned", "to_department": True, "text": "工单{工单}派{部门}", "via": "http"},
                      {"event": "missed.unreturned", "to": ["+86 139-0000-1111", "+14155552671"],
                       "after_min": 10, "text": "{号码}来电{次数}次未回"},
                      RULE]})
    assert cfg["sms_rules"] == [
        {"event": "complaint.assigned", "to": [], "to_department": True, "after_min": 30, "text": "工单{工单}派{部门}",
         "via": "http"},
        {"event": "missed.unreturned", "to": ["+86 139-0000-1111", "+14155552671"], "to_department": False,
         "after_min": 10, "text": "{号码}来电{次数}次未回", "via": ""},
        {**RULE, "to_department": False, "after_min": 30, "via": ""}]
    assert sms_rules(cfg) == [
        DispatchRule("complaint.assigned", "工单{工单}派{部门}", (), True, 30, "http"),
        DispatchRule("missed.unreturned", "{号码}来电{次数}次未回", ("13900001111", "0014155552671"), False, 10, None),
        DispatchRule("voicemail.left", "{号码}留言{时长}秒", ("13900001111",), False, 30, None)]
    assert [r.id for r in sms_rules(cfg)] == ["complaint.assigned>department",
                                              "missed.unreturned>0014155552671,13900001111",
                                              "voicemail.left>13900001111"]
    assert cfg["departments"][1]["mobile"] == ""
    d = dispatcher(cfg)
    assert d.departments == {"售后": "13600136000", "财务": ""}
    assert d.rules == sms_rules(cfg)
    assert d.tz == zoneinfo.ZoneInfo("Asia/Shanghai")


def test_department_mobile():
    dept = {"name": "售后", "number": "02788886666"}
    assert err({"departments": [{**dept, "mobile": "02788886666"}]}) == \
        "departments[0].mobile: '02788886666' is not a mobile number; SMS reach mobiles only (empty: none)"
    assert err({"departments": [{**dept, "mobile": "+8613600136000"}]}) == \
        "departments[0].mobile: '+8613600136000' must be 0..20 digits"
    assert validate({"departments": [{**dept, "mobile": "8613600136000"}]})["departments"] == \
        [{**dept, "mobile": "8613600136000"}]
    cfg = validate({"departments": [{**dept, "mobile": "8613600136000"}]})
    assert dispatcher(cfg).departments == {"售后": "13600136000"}


def test_outbox_options_build_an_outbox(tmp_path):
    cfg = validate({"sms": {"tries": 7, "retry_s": 60, "cmpp_rate_per_min": 300}})
    opts = outbox_options(cfg)
    assert opts == {"rates": {"modem": 6, "smgp": 600, "cmpp": 300, "http": 60}, "backoff_s": 60.0,
                    "backoff_cap_s": 3600.0, "max_tries": 7}
    with Outbox(tmp_path / "outbox.sqlite", **opts) as box:
        assert (box.rates["cmpp"], box.backoff_s, box.max_tries) == (300.0, 60.0, 7)
    opts = outbox_options(validate({"sms": {"retry_s": 3600}}))
    Outbox(tmp_path / "cap.sqlite", **opts).close()  # the first wait may be the cap itself


def test_http_config_builds_a_gateway():
    cfg = validate({"sms": {**HTTP, "via": "http", "http_method": "POST", "http_body": '{"to": "{number}"}',
                            "http_body_kind": "json", "http_headers": "X-Token: abc \n\nX-App:7",
                            "http_account": "acme", "http_timeout_s": 20}})
    config = http_config(cfg)
    assert config == HttpGatewayConfig(url=HTTP["http_url"], success=HTTP["http_success"], method="POST",
                                       body='{"to": "{number}"}', body_kind="json",
                                       headers={"X-Token": "abc", "X-App": "7"}, timeout_s=20.0, account="acme")
    assert configured_vias(cfg) == ["modem", "http"]
    HttpGateway(config, threads=0).close()


def test_gateway_settings_build_sessions():
    cfg = validate({"sms": {**SMGP, **CMPP, "smgp_secret": "s3cret", "cmpp_service_id": "MCS0010", "via": "cmpp"}})
    assert gateway_settings(cfg, "smgp") == ("10.1.1.1", 8890, Credentials("12345678", "s3cret", "1065900012345", ""))
    host, port, cred = gateway_settings(cfg, "cmpp")
    assert (host, port, cred) == ("gw.cmpp.example", 7890, Credentials("901234", "", "106571234", "MCS0010"))
    assert GatewaySession("cmpp", cred).state == "closed"
    assert configured_vias(cfg) == ["modem", "smgp", "cmpp"]
    with pytest.raises(ValueError, match="protocol 'http' must be smgp or cmpp"):
        gateway_settings(cfg, "http")


def test_report_fields_read_a_pushed_report():
    token = "Ab-_0123456789xyZ"  # every allowed kind of character, 17 long
    cfg = validate({"sms": {"http_report_token": token, "http_report_ref": "mid", "http_report_status": "stat",
                            "http_report_delivered": "DELIVRD, success"}})
    assert cfg["sms"]["http_report_token"] == token
    fields = report_fields(cfg)
    assert fields == ReportFields("mid", "stat", ("DELIVRD", "success"))
    reports = parse_report('[{"mid": "9", "stat": "SUCCESS"}, {"mid": 10, "stat": "UNDELIV"}]', fields)
    assert [(r.ref, r.status, r.delivered) for r in reports] == [("9", "SUCCESS", True), ("10", "UNDELIV", False)]
    assert report_fields(validate({"sms": {"http_report_token": "x" * 16}})) == \
        ReportFields("msgid", "status", ("DELIVRD", "0"))
