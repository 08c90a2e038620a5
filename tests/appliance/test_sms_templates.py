"""SMS templates: validation, rendering, Chinese dates, part counts, opt-out replies."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from appliance.errors import ConfigError
from appliance.sms.templates import (FIELDS, Template, format_date, is_opt_out, opt_out_footer, part_count, render,
                                     validate_template)

SHIPPED = Template("发货通知", "尊敬的{客户姓名}，您订购的{产品}已于{日期}发货，如有疑问请联系{坐席}（{号码}）。【{公司}】")
VALUES = {"customer_name": "张三", "product": "空气净化器", "date": date(2026, 11, 28), "number": "4008001234",
          "agent": "李四", "company": "华为商城"}


def test_render_every_field():
    assert SHIPPED.fields == ("客户姓名", "产品", "日期", "坐席", "号码", "公司")
    assert render(SHIPPED, VALUES) == ("尊敬的张三，您订购的空气净化器已于2026年11月28日发货，"
                                       "如有疑问请联系李四（4008001234）。【华为商城】")


def test_render_iso_date_and_datetime():
    t = Template("d", "{日期}")
    assert render(t, {"date": date(2026, 1, 5)}, date_style="iso") == "2026-01-05"
    assert render(t, {"date": datetime(2026, 1, 5, 9, 30)}) == "2026年1月5日"


def test_format_date():
    assert format_date(date(2026, 11, 28)) == "2026年11月28日"
    assert format_date(date(2026, 3, 1)) == "2026年3月1日"  # no leading zeros in Chinese style
    assert format_date(date(2026, 3, 1), "iso") == "2026-03-01"
    with pytest.raises(ConfigError, match="date style 'us'"):
        format_date(date(2026, 3, 1), "us")


@pytest.mark.parametrize("values", [{}, {"customer_name": ""}, {"customer_name": None}])
def test_render_missing_value_names_the_field(values):
    with pytest.raises(ConfigError, match=r"'问候' needs a value for \{客户姓名\} \('customer_name'\)"):
        render(Template("问候", "{客户姓名}您好"), values)


def test_repeated_field_listed_once():
    assert validate_template("{客户姓名}，{客户姓名}") == ("客户姓名",)


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("  \n ", "empty"),
    ("您好{客户}", r"unknown field \{客户\}; allowed: \{客户姓名\}"),
    ("您好{customer_name}", r"unknown field \{customer_name\}"),
    ("您好{}", r"unknown field \{\}"),
    ("您好{客户姓名", "'{' at character 3 is never closed"),
    ("您好客户姓名}", "'}' at character 7 closes no field"),
    ("{客户{姓名}}", "'{' at character 4 inside the field opened at character 1"),
    ("您好｛客户姓名｝", "full-width brace '｛' at character 3"),
    ("退" * 340, "template too long: up to 6 SMS parts"),
    ("{公司}" + "好" * 310, "too long"),
])
def test_validation_errors(text, words):
    with pytest.raises(ConfigError, match=words):
        validate_template(text)


def test_validation_limits_fields_and_template_names_itself():
    with pytest.raises(ConfigError, match=r"unknown field \{坐席\}"):
        validate_template("{坐席}", allowed_fields=("客户姓名",))
    with pytest.raises(ConfigError, match="SMS template '催款': unknown field"):
        Template("催款", "{金额}")
    with pytest.raises(ConfigError, match="name is empty"):
        Template(" ", "您好")


def test_length_bound_uses_plausible_values():
    validate_template("好" * 335)  # 5 parts of 67
    with pytest.raises(ConfigError, match="up to 6 SMS parts"):
        validate_template("好" * 336)
    with pytest.raises(ConfigError, match="up to 6"):  # fits as written, not with a 30-character company name
        validate_template("好" * 310 + "{公司}")
    validate_template("a" * 765)  # plain GSM text: 5 parts of 153
    with pytest.raises(ConfigError, match="up to 6"):
        validate_template("a" * 766)
    validate_template("好" * 200, max_parts=3)
    with pytest.raises(ConfigError, match="at most 2"):
        validate_template("好" * 200, max_parts=2)


def test_part_count():
    assert part_count("hello") == 1
    assert part_count("a" * 160) == 1 and part_count("a" * 161) == 2
    assert part_count("好" * 70) == 1 and part_count("好" * 71) == 2
    assert part_count(render(SHIPPED, VALUES)) == 1


@pytest.mark.parametrize("reply", [
    "TD", "td", "Td", " TD ", "TD。", "【TD】", "ＴＤ", "ｔｄ", "T", "t", "N", "n", "STOP", "stop", "Stop!",
    "退订", "退订！", " 退订 ", "“退订”", "退订短信", "取消", "T D", "\u3000退订\u3000", "退定", "取消订阅", "TD~",
])
def test_opt_out_yes(reply):
    assert is_opt_out(reply)


@pytest.mark.parametrize("reply", [
    "TDD", "TDT", "TD1", "好的", "我不想退订了吗", "请不要退订", "退订？不是", "NO", "yes", "", "  ", "。。",
    "回复TD退订", "STOPPED", "取消订单", "N1", "T-D",
])
def test_opt_out_no(reply):
    assert not is_opt_out(reply)


def test_footer_keyword_is_recognised():
    assert opt_out_footer() == "回复TD退订"
    assert is_opt_out("TD") and is_opt_out(opt_out_footer("en").split()[1])
    with pytest.raises(ConfigError, match="language 'fr'"):
        opt_out_footer("fr")


def test_fields_cover_the_required_six():
    assert set(FIELDS.values()) == {"customer_name", "product", "date", "number", "agent", "company"}
