"""How much white noise each pairing of fax terminals survives: a measurement, recorded, not a timed assertion.

One standard-resolution page (400 rows of text) per call, through the A-law
line of tests/peers/faxline.py with seeded white noise in both directions; both
terminals offer V.27ter and V.29, so a sender may fall back. For each pairing
the noise rises in steps until some seed fails; ``extra_info`` records the
loudest noise at which every seed completed, per pairing, and the whole table.
"""

from __future__ import annotations

import sys

from dsp.fax.tiff import STANDARD_LPI, X_DPI, FaxPage
from tests.dsp.faxpages import text_page, write_document
from tests.peers.faxline import run_line
from tests.peers.spandsp_fax import faxpeer_command

LEVELS_DBM0 = (-56, -53, -50, -49, -48, -47, -46, -45, -44, -42, -39, -36, -33, -30, -27, -24, -21, -18)
SEEDS = (1, 2)
LIMIT_S = 300


def ours(*args) -> list[str]:
    return [sys.executable, "-m", "dsp.fax.terminal", "--max-seconds", str(LIMIT_S - 10), *map(str, args)]


def spandsp(**kw) -> list[str]:
    return faxpeer_command(modems="v27ter,v29", compression="both", max_seconds=LIMIT_S - 10, **kw)


PAIRS = {
    "spandsp-spandsp": lambda s, r: (spandsp(send=s, calling=True), spandsp(receive=r, calling=False)),
    "ours-spandsp": lambda s, r: (ours("--send", s, "--calling"), spandsp(receive=r, calling=False)),
    "spandsp-ours": lambda s, r: (spandsp(send=s, calling=True), ours("--receive", r, "--answering")),
    "ours-ours": lambda s, r: (ours("--send", s, "--calling"), ours("--receive", r, "--answering")),
}


def completes(pair, sent, received, noise, seed) -> bool:
    got = run_line(*PAIRS[pair](sent, received), noise_dbm0=noise, seed=seed, max_seconds=LIMIT_S)
    a, b = got.parsed(0), got.parsed(1)
    return got.returncodes == (0, 0) and a.get("status") == b.get("status") == "ok" and a.get("pages") == "1"


def test_noise_each_pairing_survives(benchmark, tmp_path):
    sent = tmp_path / "sent.tif"
    write_document(sent, [FaxPage(text_page(11, False, rows=400), X_DPI, STANDARD_LPI)])

    def measure():
        table, limit = {}, {}
        for pair in PAIRS:
            limit[pair] = None
            for level in LEVELS_DBM0:
                ok = [completes(pair, sent, tmp_path / "received.tif", level, s) for s in SEEDS]
                table[f"{pair} {level}"] = sum(ok)
                if not all(ok):
                    break
                limit[pair] = level
        return table, limit

    table, limit = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update({f"{k}_limit_dbm0": v for k, v in limit.items()})
    benchmark.extra_info["seeds_passed"] = table
    print(f"\nnoise each pairing survives (every seed), dBm0: {limit}")
    # what the issue asks: with us on one end a page still gets through where spandsp alone does not
    assert limit["spandsp-ours"] > limit["spandsp-spandsp"]
    assert limit["ours-ours"] >= -30
