"""``python -m dsp.callerid``: generate a WAV, decode it back field by field, and the exit codes for failures."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from dsp.callerid.__main__ import main
from dsp.levels import rms_dbm0
from dsp.wavio import read_wav_8k, write_wav

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_mdmf_with_a_chinese_name_round_trips_through_a_file(tmp_path, capsys):
    wav = tmp_path / "cid.wav"
    assert run(capsys, "--generate", "--number", "01062345678", "--name", "张三", "--datetime", "11-28 10:30",
               "-o", wav) == (0, "", "")
    x = read_wav_8k(wav)
    assert x.dtype == np.int16 and not x[:1600].any() and not x[-1600:].any()  # 0.2 s of silence each side
    assert rms_dbm0(x[1600:-1600])[0] == pytest.approx(-13.5, abs=0.05)
    assert run(capsys, wav) == (0, "format: mdmf\nnumber: 01062345678\nname: 张三\ndatetime: 11-28 10:30\n", "")


@pytest.mark.parametrize("fmt,extra,expected", [
    ("sdmf", [], "format: sdmf\nnumber: 13812345678\ndatetime: 02-29 23:59\n"),
    ("dtmf", [], "format: dtmf\nnumber: 13812345678\n"),
    ("mdmf", ["--level", "-30"], "format: mdmf\nnumber: 13812345678\ndatetime: 02-29 23:59\n"),
])
def test_other_formats_and_levels(tmp_path, capsys, fmt, extra, expected):
    wav = tmp_path / "cid.wav"
    assert run(capsys, "--generate", "--number", "13812345678", "--format", fmt, "--datetime", "02-29 23:59",
               *extra, "-o", wav)[0] == 0
    assert run(capsys, wav) == (0, expected, "")


@pytest.mark.parametrize("flag,word", [("--private", "private"), ("--unavailable", "unavailable")])
def test_withheld_numbers(tmp_path, capsys, flag, word):
    wav = tmp_path / "cid.wav"
    assert run(capsys, "--generate", flag, "--datetime", "01-01 00:00", "-o", wav)[0] == 0
    assert run(capsys, wav) == (0, f"format: mdmf\nnumber_absent: {word}\nname_absent: {word}\n"
                                   f"datetime: 01-01 00:00\n", "")
    assert run(capsys, "--generate", flag, "--format", "dtmf", "-o", wav)[0] == 0
    assert run(capsys, wav) == (0, f"format: dtmf\nnumber_absent: {word}\n", "")


def test_nothing_decoded_exits_1_with_the_reason(tmp_path, capsys):
    wav = tmp_path / "silence.wav"
    write_wav(wav, np.zeros(8000, np.int16))
    code, out, err = run(capsys, wav)
    assert (code, out) == (1, "")
    assert err == (f"no caller ID in {wav}: no carrier: no Bell 202 signal (1200/2200 Hz) above -43 dBm0 "
                   f"and no DTMF caller ID\n")


def test_bad_or_missing_files_exit_2(tmp_path, capsys):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not a RIFF file at all")
    code, out, err = run(capsys, junk)
    assert (code, out) == (2, "") and err.startswith("error: ") and "junk.wav" in err
    code, out, err = run(capsys, tmp_path / "missing.wav")
    assert (code, out) == (2, "") and "missing.wav" in err
    stereo = tmp_path / "stereo.wav"
    write_wav(stereo, np.zeros((2, 800), np.int16))
    assert run(capsys, stereo)[:2] == (2, "")


def test_generate_argument_errors(tmp_path, capsys):
    wav = tmp_path / "x.wav"
    for argv in (["--generate", "-o", wav], ["--generate", "--number", "1", "--private", "-o", wav],
                 ["--generate", "--number", "1"], []):
        with pytest.raises(SystemExit) as info:
            main([str(a) for a in argv])
        assert info.value.code == 2
    capsys.readouterr()
    code, _, err = run(capsys, "--generate", "--number", "1", "--name", "张三", "--format", "sdmf", "-o", wav)
    assert code == 2 and "SDMF carries no name" in err and not wav.exists()
    code, _, err = run(capsys, "--generate", "--number", "1", "--datetime", "11/28 10:30", "-o", wav)
    assert code == 2 and "--datetime must look like 'MM-DD HH:MM', got '11/28 10:30'" in err


def test_runs_as_a_module(tmp_path):
    wav = tmp_path / "cid.wav"
    assert main(["--generate", "--number", "4008123123", "--name", "Li Si", "--datetime", "12-31 23:59",
                 "-o", str(wav)]) == 0
    done = subprocess.run([sys.executable, "-m", "dsp.callerid", str(wav)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONUTF8="1"))
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "format: mdmf\nnumber: 4008123123\nname: Li Si\ndatetime: 12-31 23:59\n", "")


def test_files_through_sox_and_from_espeak(tmp_path):
    """Our burst after sox takes it to 44.1 kHz and back into A-law, 6 dB quieter; espeak-ng speech has none."""
    from tests.tools import require_tool

    sox, espeak = require_tool("sox"), require_tool("espeak-ng")
    wav, wide, alaw = tmp_path / "cid.wav", tmp_path / "wide.wav", tmp_path / "alaw.wav"
    assert main(["--generate", "--number", "075512345678", "--name", "王五", "--datetime", "03-08 09:05",
                 "-o", str(wav)]) == 0
    subprocess.run([sox, wav, "-r", "44100", "-b", "24", wide], check=True)
    subprocess.run([sox, wide, "-r", "8000", "-e", "a-law", alaw, "vol", "0.5"], check=True)
    done = subprocess.run([sys.executable, "-m", "dsp.callerid", str(alaw)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONUTF8="1"))
    assert (done.returncode, done.stdout) == (0, "format: mdmf\nnumber: 075512345678\nname: 王五\n"
                                                 "datetime: 03-08 09:05\n")
    talk22, talk = tmp_path / "talk22.wav", tmp_path / "talk.wav"
    subprocess.run([espeak, "-v", "cmn", "-w", talk22, "您好，这里是客服中心，请问有什么可以帮您？"], check=True)
    subprocess.run([sox, talk22, "-r", "8000", "-b", "16", talk], check=True)
    done = subprocess.run([sys.executable, "-m", "dsp.callerid", str(talk)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"no caller ID in {talk}: ")
