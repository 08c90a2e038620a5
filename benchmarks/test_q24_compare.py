"""The side-by-side Q.24 table: runs ``benchmarks/q24_compare.py`` at a reduced size and checks what it wrote."""

from __future__ import annotations

from benchmarks.q24_compare import main
from tests.peers.spandsp import require_spandsp
from tests.tools import require_tool


def test_side_by_side_table_is_written(tmp_path, capsys):
    require_spandsp()
    require_tool("espeak-ng")
    out = tmp_path / "q24.md"
    assert main(["-o", str(out), "--minutes", "2", "--keys", "200"]) == 0
    text = out.read_text(encoding="utf-8")
    print(text)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert rows["twist accepted: normal (high weaker) / reverse"].split(" | ")[2] == "8 / 4 dB"
    assert rows["false keys in the noise sweep"].split(" | ")[2:] == ["0", "0 |"]
    assert rows["under dial tone 10 dB stronger: 450 / 350+440 Hz"].split(" | ")[2] == "1.00 / 1.00"
    assert "S/N for 99% of digits (white noise, A-law)" in rows
    assert sum(1 for r in rows if r.startswith("frequency accept band at")) == 8
