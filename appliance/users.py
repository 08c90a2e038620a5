"""The box's users: scrypt password hashes in the config file's ``users`` table.

The core's commands (the demo) and the web process both manage them, so they live here
rather than in ``webui`` (dependencies point from webui to appliance, never back).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from tinydb import Query

from .errors import ConfigError
from .storage import open_db

N, R, P = 2**14, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
# no 0/O/o, 1/l/I: the password is read off a console and typed by hand
ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PASSWORD_LENGTH = 14  # log2(56) * 14 = 81 bits
# a well-formed hash no password produces, so an unknown user costs one scrypt too
_DUMMY = "scrypt$16384$8$1$" + base64.b64encode(bytes(SALT_BYTES)).decode() + "$" + base64.b64encode(bytes(HASH_BYTES)).decode()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Return ``scrypt$16384$8$1$<salt b64>$<hash b64>`` for ``password`` (a fresh random salt by default)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    h = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, dklen=HASH_BYTES)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(h)}"


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches the ``stored`` hash; constant-time compare."""
    parts = stored.split("$")
    try:
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, want = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
        if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16 and want):
            raise ValueError
    except ValueError:
        raise ConfigError("users: a password hash is not in the form scrypt$N$r$p$<salt b64>$<hash b64>") from None
    got = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=len(want), maxmem=256 * 1024 * 1024)
    return hmac.compare_digest(got, want)


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password from an alphabet without look-alike characters, with a digit and both cases."""
    while True:
        pw = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if any(c.isdigit() for c in pw) and any(c.islower() for c in pw) and any(c.isupper() for c in pw):
            return pw


def ensure_admin(config_path: str | os.PathLike, reset: bool = False) -> str | None:
    """Create user ``admin`` with a random password (or give it a new one if ``reset``).

    Returns the plaintext once, to be shown to the installer; returns None when
    the admin already exists and ``reset`` is false. Only the hash is stored.
    """
    db = open_db(config_path)
    try:
        users = db.table("users")
        with db.storage.locked():
            exists = users.contains(Query().name == "admin")
            if exists and not reset:
                return None
            password = generate_password()
            doc = {"name": "admin", "role": "admin", "password": hash_password(password)}
            if exists:
                users.update(doc, Query().name == "admin")
            else:
                users.insert(doc)
        return password
    finally:
        db.close()


def check_password(config_path: str | os.PathLike, user: str, password: str) -> bool:
    """True if ``user`` exists with this ``password``; unknown users take the same time."""
    db = open_db(config_path)
    try:
        doc = db.table("users").get(Query().name == user)
    finally:
        db.close()
    stored = doc.get("password") if doc else None
    if not isinstance(stored, str):
        verify_password(password, _DUMMY)
        return False
    return verify_password(password, stored)
