"""What the SMS worker costs the box: one idle pass (it runs ten a second for as long as the box is up), and the
outbox's write path per message (a campaign adds, claims, hands over and marks sent one message at a time, each
step a committed SQLite transaction with ``synchronous=FULL``).

The reference, measured in the same run, is one bare committed SQLite write (an ``INSERT`` in its own
transaction, WAL, ``synchronous=FULL``) on the same disk: the outbox's four steps for one message should cost
about four such writes, and the idle pass a small fraction of one (it only reads). Run with
``pytest benchmarks/test_sms_pass.py -s``; the ratios are in ``extra_info``.
"""

from __future__ import annotations

import itertools
import sqlite3

import pytest

from appliance.sms.modemlink import ModemLink
from appliance.sms.outbox import Outbox
from appliance.sms.service import SmsService
from appliance.sms.transport import Accepted, SmsTransport

WALL0 = 1_764_300_000.0


class Taker(SmsTransport):
    """Accepts every message at once: the outbox's cost alone, no I/O."""

    name = "http"

    def __init__(self) -> None:
        self.pending: list = []

    def submit(self, msg_id, number, text, now):
        self.pending.append(Accepted(msg_id, f"r{msg_id}"))

    def poll(self, now):
        out, self.pending = self.pending, []
        return out

    def next_deadline(self):
        return None

    def close(self):
        pass


@pytest.fixture(scope="module")
def bare_write(tmp_path_factory):
    """Seconds per committed one-row INSERT: the disk's price of durability, the reference."""
    import time
    con = sqlite3.connect(tmp_path_factory.mktemp("ref") / "ref.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    n, t0 = 300, time.perf_counter()
    for i in range(n):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO t (v) VALUES (?)", (f"row {i}",))
        con.execute("COMMIT")
    per = (time.perf_counter() - t0) / n
    con.close()
    return per


def test_idle_pass(benchmark, tmp_path, bare_write):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    service = SmsService(outbox, {"modem": ModemLink("auto"), "http": Taker()})
    clock = itertools.count()
    benchmark(lambda: service.step(float(next(clock)), WALL0))
    ratio = benchmark.stats.stats.mean / bare_write
    benchmark.extra_info.update(bare_write_ms=round(bare_write * 1e3, 3), ratio_to_one_write=round(ratio, 3),
                                cpu_share_at_10_per_s=round(benchmark.stats.stats.mean * 10, 5))
    print(f"\nidle pass {benchmark.stats.stats.mean * 1e6:.0f} us = {ratio:.2f} x one committed write "
          f"({bare_write * 1e3:.2f} ms); at 10 passes/s {benchmark.stats.stats.mean * 1e3:.2f}% of a core")
    outbox.close()


def test_one_message_through_the_outbox(benchmark, tmp_path, bare_write):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    service = SmsService(outbox, {"http": Taker()})
    ids = itertools.count()

    def one():
        n = next(ids)
        outbox.add("13800138000", f"message {n}", "http", WALL0 + n)
        service.step(float(n), WALL0 + n)  # claim, handed over, submit
        return service.step(float(n), WALL0 + n)  # accepted: sent

    benchmark.pedantic(one, rounds=200, iterations=1)
    assert outbox.counts()["sent"] == 200
    ratio = benchmark.stats.stats.mean / bare_write
    benchmark.extra_info.update(bare_write_ms=round(bare_write * 1e3, 3), ratio_to_one_write=round(ratio, 2),
                                messages_per_s=round(1 / benchmark.stats.stats.mean, 1))
    print(f"\none message {benchmark.stats.stats.mean * 1e3:.2f} ms = {ratio:.1f} x one committed write; "
          f"{1 / benchmark.stats.stats.mean:.0f} messages/s")
    outbox.close()
