"""Users (appliance.users: scrypt hashes in the config file) and the web process's login sessions."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time

import pytest

from appliance.errors import ConfigError
from appliance.storage import open_db
from appliance.users import (ALPHABET, check_password, ensure_admin, generate_password, hash_password,
                             verify_password)
from webui.auth import Sessions


def test_hash_format_and_value():
    salt = bytes(range(16))
    h = hash_password("座席 secret", salt=salt)
    want = hashlib.scrypt("座席 secret".encode(), salt=salt, n=16384, r=8, p=1, dklen=32)
    assert h == "scrypt$16384$8$1$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(want).decode()
    assert h.split("$")[4] == "AAECAwQFBgcICQoLDA0ODw=="
    assert verify_password("座席 secret", h) is True
    assert verify_password("座席 secreT", h) is False
    assert verify_password("", h) is False


def test_fresh_salts_differ():
    a, b = hash_password("pw"), hash_password("pw")
    assert a != b and re.fullmatch(r"scrypt\$16384\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=", a)
    assert verify_password("pw", a) and verify_password("pw", b)


@pytest.mark.parametrize("bad", ["plain", "scrypt$16384$8$1$AAAA", "bcrypt$1$2$3$AAAA$AAAA", "scrypt$x$8$1$AAAA$AAAA"])
def test_malformed_hash_is_a_config_error(bad):
    with pytest.raises(ConfigError, match=r"^users: a password hash is not in the form scrypt\$N\$r\$p"):
        verify_password("pw", bad)


def test_generated_passwords():
    pws = {generate_password() for _ in range(50)}
    assert len(pws) == 50
    for pw in pws:
        assert len(pw) == 14 and set(pw) <= set(ALPHABET)
        assert not set(pw) & set("0O1lIo")


def test_ensure_admin_once_and_no_plaintext(tmp_path):
    cfg = tmp_path / "config.json"
    db = open_db(cfg)
    db.table("settings").insert({"box": {"name": "呼叫中心"}, "web": {"port": 8080}})
    db.close()
    before = json.loads(cfg.read_text())["settings"]

    pw = ensure_admin(cfg)
    assert isinstance(pw, str) and len(pw) == 14
    assert ensure_admin(cfg) is None
    raw = cfg.read_text()
    assert pw not in raw
    data = json.loads(raw)
    assert data["settings"] == before
    [admin] = data["users"].values()
    assert admin["name"] == "admin" and admin["role"] == "admin" and admin["password"].startswith("scrypt$16384$8$1$")
    assert check_password(cfg, "admin", pw) is True
    assert check_password(cfg, "admin", pw + "x") is False
    assert check_password(cfg, "nobody", pw) is False

    new = ensure_admin(cfg, reset=True)
    assert new and new != pw
    assert check_password(cfg, "admin", new) and not check_password(cfg, "admin", pw)
    data = json.loads(cfg.read_text())
    assert len(data["users"]) == 1 and data["settings"] == before


def test_unknown_user_costs_a_hash_too(tmp_path):
    cfg = tmp_path / "config.json"
    pw = ensure_admin(cfg)

    def timed(user):
        t = time.perf_counter()
        assert check_password(cfg, user, "wrong-" + pw) is False
        return time.perf_counter() - t

    known = min(timed("admin") for _ in range(3))
    unknown = min(timed("ghost") for _ in range(3))
    assert unknown > 0.5 * known  # a skipped scrypt would be ~100x faster


def test_sessions_expire_when_idle():
    now = [1000.0]
    s = Sessions(lambda: now[0], idle_s=60)
    tok = s.create("admin")
    assert len(tok) >= 40 and s.user(tok) == "admin"
    now[0] += 59
    assert s.user(tok) == "admin"  # use renews the idle timer
    now[0] += 59
    assert s.user(tok) == "admin"
    assert s.user("forged") is None and s.user(None) is None
    now[0] += 61
    assert s.user(tok) is None
    tok2 = s.create("admin")
    s.drop(tok2)
    assert s.user(tok2) is None
