"""The `rnnedge` command: every subcommand's success path, --help, and one-line user errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rnnedge.cli import build_parser, main
from rnnedge.examples import EXAMPLE_ONNX, load_test_set


@pytest.fixture(scope="module")
def blob(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cli") / "har.rne"
    assert main(["convert", str(EXAMPLE_ONNX), "-o", str(path)]) == 0
    return str(path)


@pytest.fixture(scope="module")
def x_npy(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cli") / "x.npy"
    np.save(path, load_test_set()[0][:4, :20])
    return str(path)


def test_convert_prints_layers_and_folded(tmp_path, capsys):
    out = tmp_path / "m.rne"
    assert main(["convert", str(EXAMPLE_ONNX), "-o", str(out), "--name", "har"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "LSTM" in text and "folded away" in text
    assert "model har:" in text


def test_info(blob, capsys):
    assert main(["info", blob]) == 0
    text = capsys.readouterr().out
    assert "checksum" in text and "ok" in text and "TAKE_LAST" in text


def test_info_reports_a_corrupt_blob(blob, tmp_path, capsys):
    data = bytearray(open(blob, "rb").read())
    data[-100] ^= 0xFF
    bad = tmp_path / "bad.rne"
    bad.write_bytes(bytes(data))
    assert main(["info", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "MISMATCH" in captured.out
    assert captured.err.strip().endswith("checksum mismatch: the blob is corrupt")


def test_run_sequence_and_stream_agree(blob, x_npy, tmp_path, capsys):
    y_seq, y_stream = tmp_path / "seq.npy", tmp_path / "stream.npy"
    assert main(["run", blob, "--input", x_npy, "-o", str(y_seq)]) == 0
    assert main(["run", blob, "--input", x_npy, "-o", str(y_stream), "--stream"]) == 0
    seq, stream = np.load(y_seq), np.load(y_stream)
    assert seq.shape == (4, 4) and stream.shape == (20, 4, 4)  # many-to-one: one output per step
    np.testing.assert_array_equal(stream[-1], seq)


def test_verify(blob, x_npy, capsys):
    assert main(["verify", blob, str(EXAMPLE_ONNX), "--input", x_npy, "--long-steps", "200"]) == 0
    text = capsys.readouterr().out
    assert "| sequence |" in text and "drift" in text and "100.00%" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["info", "/nonexistent.rne"], "/nonexistent.rne: cannot read"),
        (["convert", "/nonexistent.onnx", "-o", "/tmp/x.rne"], "/nonexistent.onnx"),
        (["convert", str(EXAMPLE_ONNX), "--quant", "int4"], "quant='int4' is not a number format"),
        (["run", "BLOB", "--input", "/nonexistent.npy"], "/nonexistent.npy: no such input file"),
    ],
)
def test_user_errors_are_one_line(argv, message, blob, capsys):
    argv = [blob if a == "BLOB" else a for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_debug_shows_the_traceback():
    with pytest.raises(Exception, match="cannot read"):
        main(["--debug", "info", "/nonexistent.rne"])


def test_every_subcommand_has_help(capsys):
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert f"usage: rnnedge {name}" in capsys.readouterr().out


def test_module_entry_point(tmp_path):
    done = subprocess.run(  # away from the source tree, whose rnnedge/ has no compiled module
        [sys.executable, "-m", "rnnedge", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert done.stdout.startswith("rnnedge ")
