"""The benchmark (tools/bench/, run by tools/bench.py): smoke runs on tiny models, and the pieces that turn
figures into verdicts. No timed assertion anywhere: only that figures exist, are positive, and
that every engine computes what onnxruntime computes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from rnnedge.errors import InputError, NotStreamableError, RnnedgeError
from rnnedge.ir.layers import QUANTS, WFMT
from rnnedge.measure import module_available
from rnnedge.ort_step import expose_state
from rnnedge.quant.policy import LAYER_TOL

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the package tools/bench/ (what tools/bench.py runs)
import bench  # noqa: E402
from bench import runner  # noqa: E402

HAVE_CC = any(shutil.which(c) for c in ("cc", "gcc", "clang"))
HAVE_TORCH = module_available("torch")
X = np.random.default_rng(0).standard_normal((12, 1, 5)).astype(np.float32)  # [T, B, F]


def tiny(name: str, **kw) -> bench.Case:
    return bench.Case(name, hidden=kw.pop("hidden", 8), features=5, **kw)


def save(case: bench.Case, tmp_path: Path) -> Path:
    model, _ = bench.build_onnx(case)
    path = tmp_path / f"{case.name}.onnx"
    onnx.save(model, str(path))
    return path


def step_all(eng: bench.Engine, x: np.ndarray) -> np.ndarray:
    return bench.step_outputs(eng, x)


# -- the models and the engines ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "case", [tiny("lstm"), tiny("gru", cell="gru"), tiny("lstm2", layers=2)], ids=lambda c: c.name
)
def test_onnxruntime_stepped_with_its_state_fed_back_equals_the_whole_sequence(case, tmp_path):
    path = save(case, tmp_path)
    run = bench.OrtEngine("ort", path, "TBF", "TBF", 5)
    bound = bench.OrtEngine("ort-iobinding", path, "TBF", "TBF", 5, iobinding=True)
    whole = run.seq_output(run.run(run.seq_input(X)))
    assert len(run.states) == case.layers * (2 if case.cell == "lstm" else 1)
    np.testing.assert_allclose(step_all(run, X), whole, atol=1e-6)
    np.testing.assert_allclose(step_all(bound, X), whole, atol=1e-6)


def test_the_bundled_example_can_be_stepped_in_onnxruntime():
    from rnnedge.examples import EXAMPLE_ONNX, load_test_set

    x, _, _ = load_test_set()
    eng = bench.OrtEngine("ort", EXAMPLE_ONNX, "BTF", "BF", 6)
    x_tbf = np.ascontiguousarray(x[:1, :30].transpose(1, 0, 2))
    steps = step_all(eng, x_tbf)  # each step: the probabilities for the sequence cut there
    for t in (0, 9, 29):
        prefix = eng.seq_output(eng.run(eng.seq_input(x_tbf[: t + 1])))
        np.testing.assert_allclose(steps[t], prefix[0], atol=1e-6)


def test_expose_state_keeps_a_constant_initial_state_as_the_start(tmp_path):
    model, w = bench.build_onnx(tiny("lstm"))
    h0 = np.full((1, 1, 8), 0.5, np.float32)
    model.graph.initializer.append(numpy_helper.from_array(h0, "h_init"))
    node = model.graph.node[0]
    node.input.extend(["", "h_init"])  # sequence_lens, initial_h
    stepped, states = expose_state(model)
    onnx.checker.check_model(stepped, full_check=True)
    np.testing.assert_array_equal(states[0].initial, h0)
    np.testing.assert_array_equal(states[1].initial, 0)
    path = tmp_path / "h0.onnx"
    onnx.save(model, str(path))
    eng = bench.OrtEngine("ort", path, "TBF", "TBF", 5)
    np.testing.assert_allclose(
        step_all(eng, X), eng.seq_output(eng.run(eng.seq_input(X))), atol=1e-6
    )


def test_a_bidirectional_model_cannot_be_stepped(tmp_path):
    model, _ = bench.build_onnx(tiny("bi", bidirectional=True))
    with pytest.raises(NotStreamableError, match="bidirectional"):
        expose_state(model)
    eng = bench.OrtEngine("ort", save(tiny("bi", bidirectional=True), tmp_path), "TBF", "TDBH", 5)
    assert not eng.streamable
    assert eng.seq_output(eng.run(eng.seq_input(X))).shape == (12, 1, 16)


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is optional")
@pytest.mark.parametrize(
    "case",
    [tiny("lstm2", layers=2), tiny("gru", cell="gru"), tiny("bi", bidirectional=True)],
    ids=lambda c: c.name,
)
def test_pytorch_holds_the_same_weights_in_its_gate_order(case, tmp_path):
    model, weights = bench.build_onnx(case)
    ort = bench.OrtEngine(
        "ort", save(case, tmp_path), "TBF", "TDBH" if case.bidirectional else "TBF", 5
    )
    torch_eng = bench.TorchEngine(case, weights)
    with torch_eng.context():
        got = torch_eng.seq_output(torch_eng.run(torch_eng.seq_input(X)))
        if torch_eng.streamable:
            np.testing.assert_allclose(step_all(torch_eng, X), got, atol=1e-6)
    np.testing.assert_allclose(got, ort.seq_output(ort.run(ort.seq_input(X))), atol=1e-5)


# -- whole runs -------------------------------------------------------------------------------------
def test_a_quick_run_measures_every_format_and_agrees_with_onnxruntime():
    cases = [tiny("lstm-8"), tiny("gru-8", cell="gru"), tiny("bilstm-8", bidirectional=True)]
    config = bench.Config.quick()
    config.steps, config.warmup, config.c_bench = 50, 5, False
    results = bench.run_benchmark(cases, config, progress=False)
    json.dumps(results)  # every figure is plain JSON
    assert results["machine"]["cpu"] and results["machine"]["onnxruntime"]
    by_name = {c["case"]["name"]: c["engines"] for c in results["cases"]}
    for name, engines in by_name.items():
        for fmt in QUANTS:
            r = engines[f"rnnedge-{fmt}"]
            # the documented bars (docs/quantization.md section 8: 1e-3 int16, 1e-2 int8, of the
            # float output's range) taken against a range of 1; h of these cells spans up to 2
            tol = 1e-5 if fmt == "f32" else LAYER_TOL[WFMT[fmt]]
            assert r["max_abs_err_seq"] < tol, (name, fmt, r["max_abs_err_seq"])
            assert r["seq"]["100"]["per_step_us"] > 0 and r["blob_bytes"] > r["weight_bytes"] > 0
            assert 0 < r["floor_us"] < r["target_us"]
            if name != "bilstm-8":
                assert (
                    r["max_abs_err_step"] < tol
                    and r["step"]["n"] == 50
                    and r["step"]["median_us"] > 0
                )
        assert engines["ort"]["seq"]["100"]["median_us"] > 0
    assert "step" not in by_name["bilstm-8"]["rnnedge-f32"]  # sequence mode only
    assert by_name["lstm-8"]["ort-iobinding"]["step"]["median_us"] > 0
    text = bench.markdown(results)
    for needle in ("| lstm-8 |", "| bilstm-8 |", "f32 / onnxruntime", "Where a step's time goes"):
        assert needle in text


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_the_c_step_bench_builds_and_times_a_blob(tmp_path):
    import rnnedge

    exe = bench.build_c_bench(tmp_path / "c", ROOT)
    blob = tmp_path / "lstm.rne"
    rnnedge.convert(save(tiny("lstm"), tmp_path), blob)
    r = bench.c_step_time(exe, blob, 100, 10)
    assert r["steps"] == 100 and 0 < r["min_us"] <= r["median_us"] <= r["p99_us"]
    bw = bench.bandwidth(32 * 1024, exe)
    assert bw["gbps"] > 0 and bw["bytes"] == 32 * 1024
    with pytest.raises(RnnedgeError, match="not_there.rne"):
        bench.c_step_time(exe, tmp_path / "not_there.rne", 10, 1)


def test_bandwidth_without_a_compiler_falls_back_to_numpy():
    bw = bench.bandwidth(16 * 1024, None)
    assert bw["gbps"] > 0 and "numpy" in bw["method"]


def test_peak_memory_is_measured_in_a_child_process(tmp_path):
    import rnnedge

    base = bench.peak_rss_mib("python")
    assert 5 < base < 1000
    blob = tmp_path / "lstm.rne"
    rnnedge.convert(save(tiny("lstm"), tmp_path), blob)
    assert bench.peak_rss_mib("rnnedge", str(blob.resolve()), "[1, 1, 5]") > base


def test_the_benchmark_on_one_blob_with_its_onnx(tmp_path, capsys):
    import rnnedge

    onnx_path = save(tiny("lstm"), tmp_path)
    blob = tmp_path / "mine.rne"
    rnnedge.convert(onnx_path, blob)
    out_json = tmp_path / "r.json"
    argv = ["--blob", str(blob), "--onnx", str(onnx_path), "--quick", "--steps", "20"]
    assert runner.main(argv + ["--json", str(out_json), "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "| mine |" in text and "onnxruntime run()" in text
    case = json.loads(out_json.read_text())["cases"][0]
    assert case["engines"]["rnnedge-f32"]["max_abs_err_step"] < 1e-5
    if HAVE_CC and bench.source_root() is not None:
        assert case["engines"]["rnnedge-f32"]["c_step"]["median_us"] > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--blob", "BLOB", "--onnx", "DIR/nope.onnx"], "nope.onnx: no such ONNX file"),
        (["--blob", "BLOB", "--cases", "lstm-32"], "--blob and --cases: give one of them"),
        (["--onnx", "DIR/m.onnx"], "give the blob converted from it with --blob"),
    ],
)
def test_the_benchmark_on_one_blob_names_what_is_wrong(argv, message, tmp_path, capsys):
    import rnnedge

    blob = tmp_path / "m.rne"
    rnnedge.convert(save(tiny("lstm"), tmp_path), blob)
    argv = [str(blob) if a == "BLOB" else a.replace("DIR", str(tmp_path)) for a in argv]
    assert runner.main(argv + ["--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tools/bench.py: error: ") and message in err


def test_tools_bench_py_runs_the_package_from_anywhere(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench.py"), "--list"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    )  # fmt: skip
    assert done.stdout.split() == [c.name for c in bench.standard_cases()]


# -- reporting --------------------------------------------------------------------------------------
def fake_results(f32: float, int8: float | None, ort_run: float, ort_bound: float) -> dict:
    rnnedge = {
        "rnnedge-f32": {
            "step": {"median_us": f32},
            "floor_us": 1.0,
            "target_us": 1.6,
            "seq": {"1000": {"per_step_us": 2.0}},
        }
    }
    if int8 is not None:
        rnnedge["rnnedge-int8"] = {"step": {"median_us": int8}, "floor_us": 0.25, "target_us": 0.7}
    engines = {
        "ort": {"step": {"median_us": ort_run}, "seq": {"1000": {"per_step_us": 3.0}}},
        "ort-iobinding": {"step": {"median_us": ort_bound}},
        **rnnedge,
    }
    case = bench.Case("lstm-128", "lstm", 128).describe()
    return {
        "config": {"seq_lengths": [100, 1000], "steps": 10, "warmup": 1},
        "cases": [{"case": case, "engines": engines, "notes": []}],
    }


def test_ratios_say_rnnedge_over_onnxruntime_and_how_many_times_faster():
    assert bench.ratio_text(1.0, 10.0) == "0.1 (10.0x)"
    assert bench.ratio_text(3.0, 1.5) == "2 (2.0x slower)"
    assert bench.ratio_text(None, 1.0) == "-" and bench.ratio_text(1.0, None) == "-"


def test_targets_compare_with_the_faster_onnxruntime_step():
    rows = bench.targets(fake_results(f32=2.0, int8=0.5, ort_run=12.0, ort_bound=8.0))
    verdict = {r["target"]: (r["value"], r["met"]) for r in rows}
    assert verdict["f32 step: >= 4.5x faster than onnxruntime"] == (4.0, False)  # 8 / 2, not 12 / 2
    assert verdict["int8 step: >= 8x faster than onnxruntime"] == (16.0, True)
    assert verdict["f32 step within 1.2 x floor + 0.4 us"] == (2.0, False)
    assert verdict["int8 step within 1.2 x floor + 0.4 us"] == (0.5, True)
    assert verdict["f32 sequence T=1000 no slower than onnxruntime (us/step)"] == (2.0, True)
    assert verdict["int8 step faster than f32"] == (0.5, True)
    rows = bench.targets(fake_results(f32=1.0, int8=None, ort_run=12.0, ort_bound=8.0))
    assert not any("int8" in r["target"] for r in rows)


def test_model_runs_fixed_cost_is_a_target_and_every_t_has_its_ratio():
    """Issue 17: Model.run no slower than onnxruntime at T = 1 and faster at T = 10; the ratio
    table has every format at every T."""
    results = fake_results(f32=1.0, int8=None, ort_run=12.0, ort_bound=8.0)
    results["config"]["seq_lengths"] = [1, 10, 1000]
    engines = results["cases"][0]["engines"]
    engines["rnnedge-f32"]["seq"].update({"1": {"per_step_us": 4.0}, "10": {"per_step_us": 0.8}})
    engines["ort"]["seq"].update({"1": {"per_step_us": 4.0}, "10": {"per_step_us": 0.5}})
    results["cases"].append(results["cases"][0])  # each case its own targets, the same ones
    rows = bench.targets(results)
    verdict = {r["target"]: (r["value"], r["met"]) for r in rows}
    assert verdict["f32 sequence T=1 no slower than onnxruntime (us/step)"] == (4.0, True)  # equal
    assert verdict["f32 sequence T=10 faster than onnxruntime (us/step)"] == (0.8, False)
    assert verdict["f32 sequence T=1000 no slower than onnxruntime (us/step)"] == (2.0, True)
    assert len(rows) == 2 * len(verdict)
    from bench import report

    text = report._md_seq(results)
    assert "### Sequence mode: rnnedge / onnxruntime" in text
    assert "| lstm-128 | 1 (1.0x) | 1.6 (1.6x slower) | 0.667 (1.5x) |" in text


def test_issue_17s_peer_goals_take_the_fastest_peer_of_the_same_run():
    """With tract / LiteRT in the run: the f32 step against 0.5x the fastest fp32 peer's (H 128),
    the int8 step against 0.7x LiteRT dyn-int8's and 0.6x rnnedge f32's, sequence mode against
    0.8x the fastest fp32 peer's; none of these rows without a peer besides onnxruntime."""
    plain = {r["target"] for r in bench.targets(fake_results(f32=2.0, int8=1.0, ort_run=12.0, ort_bound=8.0))}
    assert not any("peer" in t or "LiteRT" in t for t in plain)
    results = fake_results(f32=2.0, int8=1.0, ort_run=12.0, ort_bound=8.0)
    engines = results["cases"][0]["engines"]
    engines["tract"] = {"step": {"median_us": 30.0}, "seq": {"1000": {"per_step_us": 2.2}}}
    engines["litert"] = {"step": {"median_us": 5.0}, "seq": {"1000": {"per_step_us": 9.0}}}
    engines["litert-int8"] = {"step": {"median_us": 1.2}}
    verdict = {r["target"]: (r["value"], r["goal"], r["met"]) for r in bench.targets(results)}
    assert verdict["f32 step <= 0.5x the best fp32 peer's (LiteRT)"] == (2.0, 2.5, True)
    assert verdict["int8 step <= 0.7x LiteRT dyn-int8's"] == (1.0, pytest.approx(0.84), False)
    assert verdict["int8 step <= 0.6x rnnedge f32's"] == (1.0, pytest.approx(1.2), True)
    assert verdict["f32 sequence T=1000 <= 0.8x the best fp32 peer's (tract, us/step)"] == (
        2.0, pytest.approx(1.76), False)
    from bench import report

    header = "| onnxruntime run() | onnxruntime IO binding | tract | LiteRT | LiteRT dyn-int8 |"
    assert header in report._md_steps(results)


def test_missing_peers_are_notes_not_failures(monkeypatch, tmp_path):
    """tract and LiteRT are optional: a run without them says what to install."""
    monkeypatch.setattr(runner, "module_available", lambda name: False)
    case = tiny("lstm-8")
    model, weights = bench.build_onnx(case)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    result: dict = {"notes": []}
    engines: list = []
    axes = ("TBF", "TBF", case.features)
    runner._peers(case, path, weights, tmp_path, axes, engines, result, lambda s: None)
    assert engines == []
    assert result["notes"] == [
        "tract: not installed (pip install tract)",
        "LiteRT: ai_edge_litert, tensorflow not installed (pip install ai-edge-litert tensorflow-cpu: "
        "TensorFlow's converter makes the .tflite files)",
    ]


def test_interleaved_calls_time_every_engine_in_every_round():
    seen: list[str] = []
    calls = {"a": (seen.append, "a"), "b": (seen.append, "b")}
    stats = bench.time_interleaved(calls, budget_s=0.0, repeats=(7, 9))
    assert set(stats) == {"a", "b"} and all(s["n"] == 7 and s["min_us"] >= 0 for s in stats.values())
    assert seen == ["a", "b"] * 8  # one warm-up round, then 7 rounds, a and b in turn


def test_the_python_around_a_step_is_measured_against_its_cffi_call(tmp_path):
    """cffi_overhead times step, step_into and the bare C call they make (rne_step, or
    rne_step_float for an integer model); the stream still steps as before afterwards."""
    import rnnedge

    onnx_path = save(tiny("lstm"), tmp_path)
    for quant in ("f32", "int8"):
        blob = tmp_path / f"lstm.{quant}.rne"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rnnedge.convert(onnx_path, blob, quant=quant, calibration=None if quant == "f32" else X)
        stream = rnnedge.load(blob).stream()
        r = bench.cffi_overhead(stream, rounds=2, n=50)
        assert set(r) == {"cffi_ns", "step_ns", "step_into_ns", "step_above_ns", "step_into_above_ns"}
        assert all(r[k] > 0 for k in ("cffi_ns", "step_ns", "step_into_ns"))
        assert r["step_above_ns"] == r["step_ns"] - r["cffi_ns"]
        assert stream.step(X[0]).shape == (1, 8)


def test_outputs_are_written_and_a_missing_matplotlib_is_said(tmp_path, monkeypatch):
    results = bench.run_benchmark([tiny("lstm-8")], _smoke_config(), progress=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    written = bench.write_outputs(results, tmp_path / "out")
    assert (tmp_path / "out" / "bench.md").read_text().startswith("## rnnedge benchmark")
    assert (
        json.loads((tmp_path / "out" / "bench.json").read_text())["cases"][0]["case"]["name"]
        == "lstm-8"
    )
    assert written[-1].startswith("matplotlib is not installed")


def _smoke_config() -> bench.Config:
    config = bench.Config.quick()
    config.steps, config.warmup, config.c_bench, config.ort = 20, 2, False, False
    return config


def test_unknown_case_names_are_listed():
    with pytest.raises(InputError, match="lstm-7.*the cases are lstm-32"):
        bench.select_cases(bench.standard_cases(), "lstm-7")
    assert [c.name for c in bench.select_cases(bench.standard_cases(), "gru-64,lstm-32")] == [
        "lstm-32",
        "gru-64",
    ]


def test_update_docs_replaces_only_the_marked_section(tmp_path):
    doc = tmp_path / "b.md"
    doc.write_text(f"intro\n{bench.DOCS_BEGIN}\nold table\n{bench.DOCS_END}\nafter\n")
    bench.update_docs(doc, "| new | table |\n")
    assert (
        doc.read_text() == f"intro\n{bench.DOCS_BEGIN}\n| new | table |\n{bench.DOCS_END}\nafter\n"
    )
    (tmp_path / "plain.md").write_text("no markers")
    with pytest.raises(InputError, match="plain.md: no <!-- bench-results: begin -->"):
        bench.update_docs(tmp_path / "plain.md", "x")


def test_the_plot_is_a_png_when_matplotlib_is_installed(tmp_path):
    pytest.importorskip("matplotlib")
    results = fake_results(f32=2.0, int8=0.5, ort_run=12.0, ort_bound=8.0)
    results["machine"] = {"cpu": "a CPU", "date": "2026-01-01T00:00:00+00:00"}
    results["cases"][0]["case"]["features"] = 40
    assert bench.write_png(results, tmp_path / "p.png") is None
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rtneural_compare_skips_by_name_without_rtneural(tmp_path, capsys, monkeypatch):
    """tools/rtneural_compare.py: a directory that is not an RTNeural checkout is named, and the
    comparison is skipped (exit 0; 3 with --require) rather than failing a machine without it."""
    import rtneural_compare as rc

    monkeypatch.delenv("RTNEURAL_DIR", raising=False)
    assert rc.main(["--rtneural", str(tmp_path), "--cases", "lstm-8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rtneural_compare: skipped: --rtneural") and str(tmp_path) in out
    assert rc.main(["--rtneural", str(tmp_path), "--require"]) == rc.SKIPPED
    with pytest.raises(SystemExit):
        rc.main(["--rtneural", str(tmp_path), "--cases", "lstm"])  # not CELL-HIDDEN: argparse's error
    assert "expected lstm-H or gru-H" in capsys.readouterr().err


# -- the conv front ends (tools/bench.py --conv) ------------------------------------------------------
def _converted(case: "bench.ConvCase", tmp_path: Path):
    import rnnedge

    path = tmp_path / f"{case.name}.onnx"
    onnx.save(bench.build_conv_onnx(case), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rnnedge.convert(str(path))


def test_conv_cases_count_their_multiply_adds_by_hand(tmp_path):
    cases = {c.name: c for c in bench.conv_cases()}
    # pointwise 40 -> 64, three (depthwise 64 x k 3 + pointwise 64 x 64); GRU 3 H (I + H); head
    front = 40 * 64 + 3 * (64 * 3 + 64 * 64)
    assert bench.macs_per_step(_converted(cases["kws-dwsep-front"], tmp_path)) == front
    gru = 3 * 64 * (64 + 64) + 64 * 12
    assert bench.macs_per_step(_converted(cases["kws-dwsep-gru"], tmp_path)) == front + gru
    # over the 40 features: 8 channels x 40 positions x (1 x 5), then x (8 x 3); LSTM 4 H (I + H)
    frame = 8 * 40 * 5 + 8 * 40 * 8 * 3
    assert bench.macs_per_step(_converted(cases["frame-conv-front"], tmp_path)) == frame
    lstm = 4 * 64 * (8 * 40 + 64)
    assert bench.macs_per_step(_converted(cases["frame-conv-lstm"], tmp_path)) == frame + lstm


def test_a_transposed_conv_counts_each_input_element_times_its_taps():
    from rnnedge.ir.graph import Conv, Graph, Node, Value
    from rnnedge.ir.layers import TensorSpec

    w = np.zeros((6, 2, 1, 3), np.float32)  # ConvTranspose W [C_in 6, C_out / g 2, 1, kw 3], g 2
    op = Conv(w, None, groups=2, sw=2, transpose=True)
    values = [Value("x", (6, 5), kind="input"), Value("y", (4, op.w_out(5)), kind="output")]
    spec = TensorSpec("x", "TF", [None, 30])
    g = Graph(values, [Node(op, [0], [1])], 0, 1, spec, TensorSpec("y", "TF", [None, 44]))
    assert bench.macs_per_step(g) == 6 * 5 * 2 * 3


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_the_multiply_add_floor_times_a_product_of_that_size(tmp_path):
    exe = bench.build_c_bench(tmp_path / "c", ROOT)
    r = bench.mac_floor(exe, 1000)
    assert r["macs"] == 1024 and r["k"] == 16 and r["n"] == 64  # rounded up to 64 columns
    assert r["product_us"] > 0 and r["gmacs"] > 0


def test_a_conv_case_is_checked_against_onnxruntime_and_timed(tmp_path):
    case = next(c for c in bench.conv_cases() if c.name == "kws-dwsep-front")
    exe = bench.build_c_bench(tmp_path / "c", ROOT) if HAVE_CC else None
    r = bench.conv.bench_conv_case(case, ("f32", "int8"), 30, 5, tmp_path / "w", exe)
    json.dumps(r)
    assert r["macs"] == 40 * 64 + 3 * (64 * 3 + 64 * 64)
    assert r["formats"]["f32"]["max_abs_err"] < 1e-5
    assert r["formats"]["int8"]["max_abs_err"] < 0.05  # int8 over outputs of a few units
    for fmt in ("f32", "int8"):
        assert r["formats"][fmt]["step"]["n"] == 30 and r["formats"][fmt]["step"]["median_us"] > 0
    assert r["ort"]["ort"]["step"]["median_us"] > 0 and r["ort"]["ort-int8"]["step"]["n"] == 30
    if exe is not None:
        assert r["floor"]["product_us"] > 0 and r["formats"]["int8"]["c_step"]["median_us"] > 0
    text = bench.conv_markdown({"machine": {"cpu": "x"}, "steps": 30, "warmup": 5, "cases": [r]})
    assert "| kws-dwsep-front | int8 | 15,424 |" in text


def test_the_conv_benchmark_lists_and_names_unknown_cases(capsys):
    assert runner.main(["--conv", "--list"]) == 0
    assert capsys.readouterr().out.split() == [c.name for c in bench.conv_cases()]
    assert runner.main(["--conv", "--cases", "kws-dwsep-gru,nope"]) == 1
    err = capsys.readouterr().err
    assert "unknown conv case(s) nope" in err and "silero_vad_v6" in err
