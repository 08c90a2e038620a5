"""``python -m dsp.tones FILE.wav``: real subprocesses on WAV files made by sox and espeak-ng, and on bad files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dsp.tones import main
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]


def tones_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dsp.tones", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def sox(*args) -> None:
    subprocess.run([require_tool("sox"), *map(str, args)], check=True, capture_output=True, timeout=60)


def test_busy_made_by_sox(tmp_path):
    wav = tmp_path / "busy.wav"
    sox("-n", "-r", 8000, "-b", 16, "-c", 1, wav, "synth", 0.35, "sine", 450, "pad", 0, 0.35, "repeat", 4)
    res = tones_cli(wav)
    assert (res.returncode, res.stdout, res.stderr) == (0, "busy 0.00 3.50\noutcome: busy\n", "")


def test_us_busy_in_alaw_needs_the_us_plan(tmp_path):
    wav = tmp_path / "us-busy.wav"
    # two chained synth effects give 480 + 620 Hz at equal levels (one synth with 'mix' would twist them)
    sox("-n", "-r", 8000, "-e", "a-law", "-c", 1, wav, "synth", 0.5, "sine", 480, "synth", 0.5, "sine", "mix", 620,
        "pad", 0, 0.5, "repeat", 3)
    res = tones_cli(wav, "--plan", "us")
    assert (res.returncode, res.stdout) == (0, "busy 0.00 4.00\noutcome: busy\n")
    res = tones_cli(wav)  # 480 + 620 Hz is no China tone
    assert (res.returncode, res.stdout) == (0, "outcome: silence\n")


def test_sit_made_by_sox(tmp_path):
    steps = []
    for f in (950, 1400, 1800):
        steps.append(tmp_path / f"{f}.wav")
        sox("-n", "-r", 8000, "-b", 16, "-c", 1, steps[-1], "synth", 0.33, "sine", f, "vol", 0.1)
    wav = tmp_path / "sit.wav"
    sox(*steps, wav, "pad", 0, 1, "repeat", 1)
    res = tones_cli(wav)
    assert (res.returncode, res.stdout) == (0, "sit 0.00 3.98\noutcome: special_information\n")


def test_ringback_then_espeak_speech_is_answered(tmp_path):
    espeak = require_tool("espeak-ng")
    speech = tmp_path / "speech.wav"
    subprocess.run([espeak, "-v", "cmn", "-w", str(speech), "喂，你好，我是张经理。请问你找哪位？"],
                   check=True, timeout=60)
    speech8 = tmp_path / "speech8.wav"
    sox(speech, "-r", 8000, "-b", 16, "-c", 1, speech8)
    ring = tmp_path / "ring.wav"
    sox("-n", "-r", 8000, "-b", 16, "-c", 1, ring, "synth", 1, "sine", 450, "vol", 0.3, "pad", 0, 4, "repeat", 1)
    call = tmp_path / "call.wav"
    sox(ring, speech8, call)
    res = tones_cli(call)
    assert (res.returncode, res.stdout) == (0, "ringback 0.00 10.00\noutcome: answered\n")
    res = tones_cli(speech)  # espeak-ng's own 22,050 Hz file
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == f"error: {speech}: sample rate is 22050 Hz; 8000 Hz needed (convert with: sox {speech} " \
                         f"-r 8000 -b 16 out.wav)\n"


def test_non_audio_and_missing_files_exit_2_with_the_reason(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n")
    res = tones_cli(text)
    assert (res.returncode, res.stdout, res.stderr) == (2, "", f"error: {text}: not a RIFF file\n")
    res = tones_cli(tmp_path / "missing.wav")
    assert res.returncode == 2 and res.stdout == "" and "missing.wav" in res.stderr


def test_main_in_process(tmp_path, capsys):
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"RIFF\x04\x00\x00\x00WAVE")
    assert main([str(wav)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {wav}: ")
    with pytest.raises(SystemExit) as e:
        main([str(wav), "--plan", "uk"])
    assert e.value.code == 2 and "invalid choice: 'uk'" in capsys.readouterr().err
