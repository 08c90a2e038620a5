"""``python -m dsp.dtmf`` as a real subprocess, on files made by sox, espeak-ng and itself."""

from __future__ import annotations

import subprocess
import sys

from tests.tools import require_tool


def dtmf_cli(*args, check=True):
    run = subprocess.run([sys.executable, "-m", "dsp.dtmf", *map(str, args)],
                         capture_output=True, text=True, timeout=60)
    if check:
        assert run.returncode == 0, run.stderr
    return run


def test_keys_in_a_sox_file_16_bit_and_alaw(tmp_path):
    sox = require_tool("sox")
    one, pound, both = tmp_path / "1.wav", tmp_path / "pound.wav", tmp_path / "both.wav"
    # two chained synth effects make one key: the second mixes its sine into the first
    subprocess.run([sox, "-n", "-r", "8000", "-b", "16", "-c", "1", one, "synth", "0.1", "sine", "697",
                    "synth", "0.1", "sine", "mix", "1209", "vol", "0.4", "pad", "0.1", "0.1"], check=True)
    subprocess.run([sox, "-n", "-r", "8000", "-e", "a-law", "-c", "1", pound, "synth", "0.06", "sine", "941",
                    "synth", "0.06", "sine", "mix", "1477", "vol", "0.2", "pad", "0.05", "0.1"], check=True)
    subprocess.run([sox, one, pound, one, both], check=True)
    assert dtmf_cli(pound).stdout == "# 0.05 0.11\n"
    assert dtmf_cli(both).stdout == "1 0.10 0.20\n# 0.35 0.41\n1 0.61 0.71\n"


def test_generate_then_read_back(tmp_path):
    out = tmp_path / "keys.wav"
    assert dtmf_cli("--generate", "0123456789*#ABCD", "-o", out, "--level", "-20", "--on", "50",
                    "--off", "50").stdout == ""
    lines = dtmf_cli(out).stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == list("0123456789*#ABCD")
    assert lines[0] == "0 0.00 0.05" and lines[-1] == "D 1.50 1.55"


def test_speech_from_espeak_has_no_keys(tmp_path):
    espeak, sox = require_tool("espeak-ng"), require_tool("sox")
    raw, wav = tmp_path / "talk22k.wav", tmp_path / "talk.wav"
    subprocess.run([espeak, "-v", "cmn", "-w", raw, "请按一号键查询余额，按二号键转人工服务，按井号键返回上一级菜单。"],
                   check=True)
    subprocess.run([sox, raw, "-r", "8000", "-b", "16", "-c", "1", wav], check=True)
    assert dtmf_cli(wav).stdout == ""


def test_bad_files_name_the_problem(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n")
    run = dtmf_cli(text, check=False)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == f"error: {text}: not a RIFF file\n"
    run = dtmf_cli(tmp_path / "missing.wav", check=False)
    assert run.returncode == 2 and "missing.wav: cannot be read: No such file or directory" in run.stderr
    run = dtmf_cli("--generate", "12E", "-o", tmp_path / "x.wav", check=False)
    assert run.returncode == 2
    assert "DTMF string '12E' has 'E' at position 2" in run.stderr
    assert not (tmp_path / "x.wav").exists()
