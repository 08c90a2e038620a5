"""Acceptance: a writer SIGKILLed mid-write, hundreds of times, always leaves the old or the new config.

A warm "zygote" child imports the package once and forks a writer per round, so a
round costs a fork, not an interpreter start. The writer announces itself on stdout
and then saves configs A and B alternately as fast as it can; the test kills it
after a seeded random 0..30 ms, then checks what is on disk.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time

import pytest

from appliance.config import DEFAULTS, validate
from appliance.configfile import load_config, save_config
from appliance.storage import AtomicJSONStorage, open_db

ZYGOTE = r"""
import json, os, sys
from appliance.configfile import save_config
from appliance.storage import AtomicJSONStorage
mode, path, docs_file = sys.argv[1:4]
with open(docs_file, encoding="utf-8") as f:
    docs = json.load(f)
for _ in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            os.write(1, b"ready %d\n" % os.getpid())
            storage = AtomicJSONStorage(path)
            i = 0
            while True:
                if mode == "config":
                    save_config(path, docs[i % 2])
                else:
                    storage.write(docs[i % 2])
                i += 1
        finally:
            os._exit(70)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write("dead %d\n" % os.waitstatus_to_exitcode(status))
    sys.stdout.flush()
"""


def _readline(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"zygote silent for {timeout} s (exit code {proc.poll()})"
    return proc.stdout.readline().decode()


def _leftovers(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(".tmp-"))


def _kill_rounds(tmp_path, mode: str, path, docs: list, rounds: int, seed: int, check) -> dict:
    """Run ``rounds`` kill rounds; ``check(path)`` returns which content is on disk ('I', 'A' or 'B')."""
    docs_file = tmp_path / f"docs-{mode}.json"
    docs_file.write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE, mode, str(path), str(docs_file)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    rng = random.Random(seed)
    seen = {"I": 0, "A": 0, "B": 0, "tmp_left": 0}
    try:
        for _ in range(rounds):
            zygote.stdin.write(b"go\n")
            zygote.stdin.flush()
            word, pid = _readline(zygote).split()
            assert word == "ready"
            time.sleep(rng.uniform(0.0, 0.030))
            os.kill(int(pid), signal.SIGKILL)
            assert _readline(zygote) == f"dead {-signal.SIGKILL}\n"  # killed, not crashed on its own
            left = _leftovers(path.parent)
            assert len(left) <= 1, left  # one kill leaves at most its own temp file: older ones were swept
            seen["tmp_left"] += len(left)
            seen[check(path)] += 1
            assert _leftovers(path.parent) == []  # opening swept the dead writer's temp file
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=10)
    return seen


def _big_users(rng: random.Random, n: int) -> dict:
    return {str(i): {"user": f"user{i}", "hash": "%064x" % rng.getrandbits(256),
                     "note": "%025000x" % rng.getrandbits(100000)} for i in range(1, n + 1)}


def test_killed_config_writer_leaves_old_or_new_config(tmp_path):
    rng = random.Random(20240611)
    path = tmp_path / "config.json"
    users = _big_users(rng, 40)  # ~1 MB: every save rewrites this table too
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"users": users}, f)
    initial = save_config(path, {"system": {"name": "初始"}})
    a = {"system": {"name": "配置A" * 20, "language": "en"}, "card": {"seats": 24},
         "seats": [{"seat": i, "name": f"甲{i}" * 10, "extension": f"{7000 + i}"} for i in range(1, 25)],
         "ivr": {"welcome": "欢迎A" * 100, "menu": {"1": "queue", "0": "hangup", "*": "repeat"}},
         "queue": {"ring_timeout_s": 20}, "web": {"listen": "0.0.0.0", "port": 8081}}
    b = {"system": {"name": "配置B", "language": "zh"}, "card": {"seats": 3},
         "seats": [{"seat": i, "name": f"乙{i}", "extension": f"{600 + i}"} for i in range(1, 4)],
         "ivr": {"welcome": "欢迎B", "menu": {"9": "queue"}},
         "queue": {"ring_timeout_s": 60}, "web": {"listen": "::1", "port": 9090}}
    want = {"I": initial, "A": validate(a), "B": validate(b)}
    assert len({json.dumps(v, sort_keys=True) for v in want.values()}) == 3

    def check(p):
        cfg = load_config(p)  # must load: never a torn or empty file
        with open_db(p) as db:
            assert db.storage.read()["users"] == users  # the web UI's table survives every kill
        return next(k for k, v in want.items() if v == cfg)

    seen = _kill_rounds(tmp_path, "config", path, [a, b], rounds=110, seed=1, check=check)
    assert seen["I"] + seen["A"] + seen["B"] == 110
    assert seen["A"] > 0 and seen["B"] > 0, seen  # the writer really did get both written
    assert seen["tmp_left"] > 0, seen  # and some kills did land mid-write
    print("config rounds:", seen)


def test_killed_storage_writer_with_1mb_document_leaves_old_or_new(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "big.json"

    def doc(tag: str) -> dict:
        rows = {str(i): {"tag": tag, "n": i, "text": "%04000x" % rng.getrandbits(16000)} for i in range(1, 251)}
        return {"_default": rows}

    initial, a, b = doc("I"), doc("A"), doc("B")
    AtomicJSONStorage(path).write(initial)
    assert 0.9e6 < path.stat().st_size < 1.6e6
    want = {"I": initial, "A": a, "B": b}

    def check(p):
        data = AtomicJSONStorage(p).read()
        tag = data["_default"]["1"]["tag"]
        assert data == want[tag]  # whole, not a mix of two writes
        return tag

    seen = _kill_rounds(tmp_path, "storage", path, [a, b], rounds=110, seed=2, check=check)
    assert seen["A"] > 0 and seen["B"] > 0, seen
    assert seen["tmp_left"] > 0, seen
    print("storage rounds:", seen)


def test_open_sweeps_stale_temp_files_but_not_a_live_writers(tmp_path):
    path = tmp_path / "config.json"
    save_config(path, {})
    stale = tmp_path / ".tmp-config.json-0123456789abcdef.json"
    other = tmp_path / ".tmp-config.json-x-0123456789abcdef.json"  # belongs to a file named config.json-x
    holder = AtomicJSONStorage(path)
    with holder.locked():  # a writer is busy: its temp file is not stale
        stale.write_text("{half")
        other.write_text("{half")
        assert load_config(path) == DEFAULTS
        assert stale.exists()
    assert load_config(path) == DEFAULTS  # the lock is free now: opening sweeps
    assert not stale.exists() and other.exists()
    stale.write_text("{half")
    save_config(path, {"web": {"port": 8090}})  # a write sweeps too
    assert not stale.exists() and other.exists()


def test_write_keeps_the_file_mode(tmp_path):
    path = tmp_path / "config.json"
    save_config(path, {})
    assert os.stat(path).st_mode & 0o777 == 0o640
    os.chmod(path, 0o600)
    save_config(path, {"web": {"port": 8090}})
    assert os.stat(path).st_mode & 0o777 == 0o600


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q", "-s"]))
