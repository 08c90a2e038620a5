"""Feature codes as an agent dials them: every code parsed to its exact meaning, every bad one refused by name."""

from __future__ import annotations

import pytest

from appliance.featurecodes import BUSY_REASONS, REASONS, Code, complete, parse


@pytest.mark.parametrize("digits, code", [
    ("*11001*1234#", Code("login", "1001", "1234")),
    ("*11001#", Code("login", "1001", "")),  # an agent without a PIN
    ("*11001*#", Code("login", "1001", "")),
    ("*1#", Code("login", None, "")),  # a seat that is its own agent
    ("*1*1234#", Code("login", None, "1234")),
    ("*2#", Code("logout")),
    ("*3#", Code("available")),
    ("*4#", Code("busy", reason="other")),
    ("*41#", Code("busy", reason="rest")),
    ("*42#", Code("busy", reason="meal")),
    ("*43#", Code("busy", reason="meeting")),
    ("*44#", Code("busy", reason="training")),
    ("*45#", Code("busy", reason="paperwork")),
    ("*6123#", Code("play", number="123")),
    ("*60042#", Code("play", number="0042")),  # the number as dialled; its value is 42
])
def test_codes(digits, code):
    assert parse(digits) == code


def not_a_code(digits: str) -> str:
    return f"{digits!r} is not a feature code (*1 ID * PIN #, *2#, *3#, *4 R #, *6 N #)"


@pytest.mark.parametrize("digits, message", [
    ("*46#", "'*46#': busy reason 6 is not one of 1, 2, 3, 4, 5"),
    ("*40#", "'*40#': busy reason 0 is not one of 1, 2, 3, 4, 5"),
    ("*412#", "'*412#': busy reason 12 is not one of 1, 2, 3, 4, 5"),
    ("*21#", "'*21#': *2 takes no number"),
    ("*31#", "'*31#': *3 takes no number"),
    ("*3*1#", "'*3*1#': *3 takes no number"),
    ("*4*2#", "'*4*2#': *4 takes no number"),
    ("*2*#", "'*2*#': *2 takes no number"),
    ("*6#", "'*6#': *6 takes one recording number (*6 N #)"),
    ("*61*2#", "'*61*2#': *6 takes one recording number (*6 N #)"),
    ("*5#", not_a_code("*5#")),
    ("*7#", not_a_code("*7#")),
    ("*0#", not_a_code("*0#")),
    ("**#", not_a_code("**#")),
    ("*#", not_a_code("*#")),
    ("#", not_a_code("#")),
    ("*1", not_a_code("*1")),  # no # at the end
    ("*12*3*4#", not_a_code("*12*3*4#")),
    ("*1A#", not_a_code("*1A#")),
    ("1001#", not_a_code("1001#")),
    ("", not_a_code("")),
])
def test_bad_codes_name_what_is_wrong(digits, message):
    with pytest.raises(ValueError) as err:
        parse(digits)
    assert str(err.value) == message


@pytest.mark.parametrize("digits, done", [
    ("*", False), ("*1", False), ("*11001*12", False), ("*4", False),
    ("*2#", True), ("*11001*1234#", True), ("#", True),
    ("1", True), ("9", True),  # a code never starts without *: refused at the first key
])
def test_complete(digits, done):
    assert complete(digits) is done


def test_every_busy_reason_is_a_reason_the_api_takes():
    assert REASONS == ("other", "rest", "meal", "meeting", "training", "paperwork", "no_answer", "supervisor")
    assert set(BUSY_REASONS.values()) < set(REASONS)
