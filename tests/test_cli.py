"""The `rnnedge` command: every subcommand's success path, --help, and one-line user errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import rnnedge

from rnnedge.cli import build_parser, main
from rnnedge.examples import EXAMPLE_ONNX, load_test_set

C_VECTORS = Path(__file__).resolve().parent / "data" / "c"


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
    model = rnnedge.load(blob)  # the sizes docs/c-api.md says info prints: the C library's
    assert (f"state {model.state_bytes(1)} B, step scratch {model.scratch_bytes(1, 1)} B, "
            f"scratch of a 100-step rne_run {model.scratch_bytes(1, 100)} B") in text


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
    # many-to-one: one output per step, stacked on a time axis placed as in the batch-first
    # input [B, T, F]: [B, T, C] (issue 14, item 8)
    assert seq.shape == (4, 4) and stream.shape == (4, 20, 4)
    np.testing.assert_array_equal(stream[:, -1], seq)


def test_run_writes_the_final_state_by_name_when_asked(blob, x_npy, tmp_path, capsys):
    """Issue 14, item 8: the graph's other outputs (its final states), in sequence mode and
    stepped, equal to what the API gives."""
    model, x = rnnedge.load(blob), np.load(x_npy)
    _, want = model.run(x, return_state=True)
    for extra in ([], ["--stream"]):
        out = tmp_path / f"state{len(extra)}.data"  # any suffix: the file is written as named
        assert main(["run", blob, "--input", x_npy, "--state-out", str(out), *extra, "-o",
                     str(tmp_path / "y.npy")]) == 0  # fmt: skip
        got = np.load(out)
        assert sorted(got.files) == sorted(want) and want
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
        assert f"wrote {out}: the final state (" in capsys.readouterr().out


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


# -- issue #12: `rnnedge bench` times Stream.step, small, without onnxruntime or a compiler -------
def test_bench_prints_median_p90_and_steps_per_second(blob, capsys):
    assert main(["bench", blob, "--steps", "20"]) == 0
    text = capsys.readouterr().out
    assert f"{blob}: har_lstm, f32, 6 inputs per step" in text
    assert "20 steps timed one by one after 200 untimed" in text
    lines = {l.split()[0]: l for l in text.splitlines() if l.startswith("  ")}
    assert set(lines) == {"median", "p90", "steps/s"} and "us per step" in lines["median"]


def test_bench_json_holds_the_figures(blob, capsys):
    assert main(["bench", blob, "--steps", "30", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["format"] == "f32" and r["steps"] == 30 and r["warmup"] == 200
    assert 0 < r["median_us"] <= r["p90_us"] and r["steps_per_s"] > 0
    assert r["weight_bytes"] > 0 and r["machine"]["cores"] >= 1


def test_bench_plot_draws_a_png_and_says_where(blob, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "steps.png"
    assert main(["bench", blob, "--steps", "50", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert out.rstrip().endswith(f"plot: {png}")
    assert "floor" not in out and "target" not in out and "met" not in out.split()
    png.unlink()
    assert main(["bench", blob, "--steps", "50", "--plot", str(png), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plot"] == str(png) and png.exists()


def test_bench_plot_without_matplotlib_names_the_extra_before_measuring(blob, tmp_path, monkeypatch, capsys):
    import rnnedge.measure

    monkeypatch.setattr(rnnedge.measure, "module_available", lambda name: name != "matplotlib")
    monkeypatch.setattr(rnnedge.measure, "step_times", lambda *a: pytest.fail("measured first"))
    assert main(["bench", blob, "--plot", str(tmp_path / "p.png")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and not (tmp_path / "p.png").exists()
    assert err == "rnnedge bench: error: --plot needs matplotlib, an optional extra: pip install 'rnnedge[plot]'\n"


def test_bench_needs_neither_onnxruntime_nor_a_compiler(blob, monkeypatch, capsys):
    for name in ("onnx", "onnxruntime", "torch"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it raises ImportError

    def no_process(*args, **kwargs):
        raise AssertionError(f"rnnedge bench started a process: {args}")

    monkeypatch.setattr(subprocess, "run", no_process)
    monkeypatch.setattr(subprocess, "Popen", no_process)
    assert main(["bench", blob, "--steps", "10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 10


def test_the_runtime_imports_no_benchmark():
    code = (
        "import sys, rnnedge.cli, rnnedge.demo; rnnedge.cli.build_parser(); "
        "print(sorted(m for m in sys.modules if 'bench' in m or m.split('.')[0] in "
        "('onnx', 'onnxruntime', 'torch')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_bench_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.rne"
    os.mkfifo(fifo)
    done = _cli_in_subprocess(["bench", str(fifo)], tmp_path)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done
    assert "pipe.rne is a FIFO (named pipe), not a regular file" in done.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bench", "BLOB", "--steps", "5"], "--steps 5: give at least 10"),
        (["bench", "/nonexistent.rne"], "/nonexistent.rne: cannot read"),
        (
            ["bench", str(C_VECTORS / "bigru_yh_dense.rne")],
            "bigru_yh_dense.rne: a layer reads the sequence backwards",
        ),
    ],
)
def test_bench_user_errors_are_one_line(argv, message, blob, capsys):
    argv = [blob if a == "BLOB" else a for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


# -- issue #11 item 7: the output over the model, FIFOs, names with escapes, killed writes -------
@pytest.fixture
def model_copy(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(EXAMPLE_ONNX.read_bytes())
    return path


def _one_line_error(argv, capsys) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("how", ["same path", "symlink", "hardlink", "default output"])
def test_convert_refuses_to_write_over_its_model(model_copy, tmp_path, capsys, how):
    original = model_copy.read_bytes()
    model, out = model_copy, model_copy
    if how == "symlink":
        out = tmp_path / "link.rne"
        out.symlink_to(model_copy)
    elif how == "hardlink":
        out = tmp_path / "hard.rne"
        out.hardlink_to(model_copy)
    elif how == "default output":  # a model named m.rne: the default output is the model itself
        model = tmp_path / "m.rne"
        model_copy.rename(model)
        model_copy = model
    argv = ["convert", str(model)] + ([] if how == "default output" else ["-o", str(out)])
    err = _one_line_error(argv, capsys)
    assert "is the model" in err and "would replace the model; give another output path" in err
    assert model_copy.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def _cli_in_subprocess(args: list[str], cwd) -> subprocess.CompletedProcess:
    # a subprocess, so that a regression (a read that blocks on the FIFO) fails instead of hanging
    return subprocess.run([sys.executable, "-m", "rnnedge", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)  # fmt: skip


@pytest.mark.parametrize("command", ["info", "convert", "run --input"])
def test_a_fifo_is_refused_without_blocking(tmp_path, blob, command):
    fifo = tmp_path / "pipe.rne"
    os.mkfifo(fifo)
    args = {"info": ["info", str(fifo)], "convert": ["convert", str(fifo), "-o", str(tmp_path / "out.rne")],
            "run --input": ["run", blob, "--input", str(fifo)]}[command]  # fmt: skip
    done = _cli_in_subprocess(args, tmp_path)
    assert done.returncode == 1, done
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "is a FIFO (named pipe), not a regular file" in done.stderr


def test_info_refuses_a_character_device(capsys):
    err = _one_line_error(["info", os.devnull], capsys)
    assert f"{os.devnull} is a character device, not a regular file" in err


EVIL = "\x1b]0;owned\x07\x1b[2J\r*/ /*\u202e"


def _hostile_model(path, unsupported: bool = False) -> None:
    """The example model with escape sequences, a carriage return, a bidi override and comment
    ends in its graph name, doc string, input, output and node names."""
    model = onnx.load(str(EXAMPLE_ONNX))
    g = model.graph
    renames = {g.input[0].name: "x" + EVIL, g.output[0].name: "y" + EVIL}
    for info in list(g.input) + list(g.output) + list(g.value_info):
        info.name = renames.get(info.name, info.name)
    for node in g.node:
        node.name = "n" + EVIL
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    if unsupported:
        first = next(n for n in g.node if "x" + EVIL in n.input)
        g.node.insert(0, onnx.helper.make_node("Hardmax", ["x" + EVIL], ["hm"], name="bad" + EVIL))
        first.input[list(first.input).index("x" + EVIL)] = "hm"
    g.name = model.doc_string = g.doc_string = EVIL
    onnx.save(model, str(path))


def _no_raw_control(text: str) -> None:
    assert not any(c in text for c in "\x1b\x07\r\u202e"), repr(text)


def test_escape_sequences_in_onnx_names_are_escaped_when_printed(tmp_path, capsys):
    src, blob, header = tmp_path / "m.onnx", tmp_path / "m.rne", tmp_path / "m.h"
    _hostile_model(src)
    assert main(["convert", str(src), "-o", str(blob)]) == 0
    out = capsys.readouterr()
    _no_raw_control(out.out + out.err)
    assert "x\\x1b]0;owned\\x07\\x1b[2J\\x0d*/ /*\\u202e" in out.out  # the input name, escaped
    assert main(["info", str(blob)]) == 0
    out = capsys.readouterr()
    _no_raw_control(out.out + out.err)
    assert "\\x1b" in out.out
    assert main(["export-c", str(blob), "-o", str(header)]) == 0
    out = capsys.readouterr()
    _no_raw_control(out.out + out.err)
    text = header.read_text("ascii")
    _no_raw_control(text)
    comment = text[: text.index("\n */\n")]
    assert "*/" not in comment and "/*" not in comment[2:] and "x\\x1b]0;owned" in comment
    src.unlink()
    _hostile_model(src, unsupported=True)
    err = _one_line_error(["convert", str(src), "-o", str(blob)], capsys)
    _no_raw_control(err)
    assert "node 'bad\\x1b]0;owned\\x07" in err


# a killed convert leaves no temporary file: SIGTERM/SIGHUP remove it on the way out; SIGKILL
# cannot be caught, so the next write to the same path removes what a dead process left
_KILLER = """
import os, signal, sys
import rnnedge.files as files
from rnnedge.cli import main
def fsync(fd):
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
files.os.fsync = fsync
sys.exit(main(["convert", sys.argv[2], "-o", sys.argv[3]]))
"""


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_terminated_convert_leaves_no_temporary_file(model_copy, tmp_path, signame):
    out = tmp_path / "m.rne"
    done = subprocess.run([sys.executable, "-c", _KILLER, signame, str(model_copy), str(out)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 128 + getattr(signal, signame), done
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_a_killed_converts_temporary_file_is_removed_by_the_next_write(model_copy, tmp_path, capsys):
    out = tmp_path / "m.rne"
    done = subprocess.run([sys.executable, "-c", _KILLER, "SIGKILL", str(model_copy), str(out)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done
    left = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and left[0].startswith(".m.rne.")  # the dead process's
    live = tmp_path / f".m.rne.{os.getppid()}.abcdef.tmp"  # a running process's: kept
    live.write_bytes(b"")
    assert main(["convert", str(model_copy), "-o", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "m.onnx", "m.rne"]


def test_an_ignored_sighup_stays_ignored_while_a_command_runs(model_copy, tmp_path):
    script = _KILLER.replace("files.os.fsync = fsync", "signal.signal(signal.SIGHUP, signal.SIG_IGN)\nfiles.os.fsync = fsync")
    done = subprocess.run([sys.executable, "-c", script, "SIGHUP", str(model_copy), str(tmp_path / "m.rne")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 0, done  # as under nohup: the write went on
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.rne"]


@pytest.mark.parametrize("content", [b"", b"\x93NUMPY\x01\x00"], ids=["empty", "cut-after-magic"])
def test_an_empty_or_cut_npy_is_one_line(content, tmp_path, capsys):
    bad = tmp_path / "calib.npy"
    bad.write_bytes(content)
    out = tmp_path / "m.rne"
    assert main(["convert", str(EXAMPLE_ONNX), "-o", str(out), "--quant", "int16", "--calib", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a .npy array of calibration inputs" in err and str(bad) in err
    assert not out.exists()


# -- issue 14, item 8: small snags of the command line --------------------------------------------
def test_info_on_an_onnx_model_names_rnnedge_convert(tmp_path):
    done = _cli_in_subprocess(["info", str(EXAMPLE_ONNX)], tmp_path)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done
    assert f"{EXAMPLE_ONNX} is an ONNX model, not an rnnedge blob: convert it first: rnnedge convert" in done.stderr


@pytest.mark.parametrize("command", ["info", "run"])
def test_a_closed_output_pipe_ends_quietly(command, blob, x_npy, tmp_path):
    """`rnnedge info X.rne | head -1`: the reader is gone before the command writes; no "Broken
    pipe" error and no traceback, exit status 141 as SIGPIPE would give."""
    args = {"info": ["info", blob], "run": ["run", blob, "--input", x_npy]}[command]
    p = subprocess.Popen([sys.executable, "-m", "rnnedge", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=tmp_path)  # fmt: skip
    p.stdout.close()  # before the interpreter has even started: every write meets a closed pipe
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 141, err
    assert err == "", err


def test_info_says_why_it_shows_no_sizes_without_the_build(blob, monkeypatch, capsys):
    import rnnedge.blob.check

    monkeypatch.setattr(rnnedge.blob.check, "available", lambda: False)
    assert main(["info", blob]) == 0
    text = capsys.readouterr().out
    assert "state and scratch sizes not shown" in text and "rnnedge._rnnedge is not built" in text


def test_the_missing_calibration_warning_names_the_cli_option(tmp_path, capsys):
    assert main(["convert", str(EXAMPLE_ONNX), "-o", str(tmp_path / "m.rne"), "--quant", "int16"]) == 0
    err = capsys.readouterr().err
    assert "warning: no calibration data" in err and "Pass --calib X.npy" in err
    assert "calibration=" not in err
    with pytest.warns(UserWarning, match="Pass calibration="):  # the Python API names its own
        rnnedge.convert(EXAMPLE_ONNX, tmp_path / "n.rne", quant="int16")
