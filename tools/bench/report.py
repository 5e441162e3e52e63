"""A run's figures as a report: markdown tables (with issue 5's targets), the JSON, a PNG plot,
and the docs page section they replace (`--docs`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from rnnedge.errors import InputError

from .cases import CHECK_STEPS, GATES

OTHER_TITLES = {
    "ort": "onnxruntime run()",
    "ort-iobinding": "onnxruntime IO binding",
    "ort-int8": "onnxruntime int8",
    "torch": "PyTorch",
    "tract": "tract",
    "litert": "LiteRT",
    "litert-int8": "LiteRT dyn-int8",
}
PEERS = ["ort", "ort-iobinding", "ort-int8", "torch", "tract", "litert", "litert-int8"]


def _title(engine: str) -> str:
    return OTHER_TITLES.get(engine) or engine.replace("rnnedge-", "rnnedge ")


def _us(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n} B" if n < 10240 else f"{n / 1024:.1f} KiB" if n < 2**20 else f"{n / 2**20:.2f} MiB"


def ratio_text(ours: float | None, theirs: float | None) -> str:
    """rnnedge / other, and in brackets how many times faster rnnedge is (or slower)."""
    if not ours or not theirs:
        return "-"
    r = ours / theirs
    return f"{r:.3g} ({1 / r:.1f}x)" if r <= 1 else f"{r:.3g} ({r:.1f}x slower)"


def _table(title: str, header: list[str], rows: list[list[str]], note: str = "") -> str:
    lines = [f"### {title}", ""] + ([note, ""] if note else [])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _formats(results: dict[str, Any]) -> list[str]:
    names = [n for c in results["cases"] for n in c["engines"] if n.startswith("rnnedge-")]
    return [n[len("rnnedge-") :] for n in dict.fromkeys(names)]


def _present(results: dict[str, Any], names: Sequence[str]) -> list[str]:
    return [n for n in names if any(n in c["engines"] for c in results["cases"])]


def ort_step(case: dict[str, Any]) -> float | None:
    """onnxruntime's step-wise latency for the ratios: the faster of run() and IO binding."""
    vals = [_get(case, "engines", n, "step", "median_us") for n in ("ort", "ort-iobinding")]
    return min((v for v in vals if v), default=None)


def _md_steps(results: dict[str, Any]) -> str:
    fmts, cfg = _formats(results), results["config"]
    others = _present(results, PEERS)
    rows = []
    for c in results["cases"]:
        ours = [_get(c, "engines", f"rnnedge-{f}", "step", "median_us") for f in fmts]
        theirs = [_get(c, "engines", o, "step", "median_us") for o in others]
        ratios = [ratio_text(v, ort_step(c)) for v in ours]
        rows.append([c["case"]["name"], *map(_us, theirs), *map(_us, ours), *ratios])
    header = ["case", *map(_title, others)]
    header += [f"rnnedge {f}" for f in fmts] + [f"{f} / onnxruntime" for f in fmts]
    title = f"Per-step latency, one step per call, batch 1 (us, median of {cfg['steps']} steps)"
    note = (
        "rnnedge through the Python API (`Stream.step`). Ratio: rnnedge / the faster of "
        "onnxruntime's two step-wise ways (run() or IO binding); below 1 is faster, in brackets "
        "how many times."
    )
    return _table(title, header, rows, note)


def _md_floor(results: dict[str, Any]) -> str:
    rows = []
    for c in results["cases"]:
        for f in _formats(results):
            r = _get(c, "engines", f"rnnedge-{f}") or {}
            py, cs, goal, into = (
                _get(r, "step", "median_us"),
                _get(r, "c_step", "median_us"),
                r.get("target_us"),
                _get(r, "step_into", "median_us"),
            )
            met = "-" if py is None or not goal else "yes" if py <= goal else "no"
            overhead = py - cs if py and cs else None
            into_overhead = into - cs if into and cs else None
            above = [_get(r, "cffi", k) for k in ("step_above_ns", "step_into_above_ns")]
            rows.append([c["case"]["name"], f, _size(r.get("weight_bytes")), _us(r.get("floor_us"))]
                        + [_us(v) for v in (goal, cs, py, overhead, into, into_overhead)]
                        + ["-" if v is None else f"{v:.0f}" for v in above]
                        + [_us(_get(r, "step", "p99_us")), met])  # fmt: skip
    note = (
        "floor: the blob's tensor bytes streamed once at this machine's cache bandwidth measured "
        "for that size; target: 1.2 x floor + 0.4 us; C: `rne_step` with no Python "
        "(tools/bench_step.c); Python: `Stream.step`; overhead: Python - C; step_into: "
        "`Stream.step_into(x, out)`, one `out` for every step (a new x each step); above cffi: "
        "`step(x)` and `step_into(x, out)` (the same x and out every call) minus the bare cffi "
        "call they make on the same buffers, in CPU time (ns, the best of 30 rounds of 2000 "
        "calls each, interleaved): the price of the Python API with the C call's own Python "
        "cost taken out."
    )
    header = ["case", "format", "weights", "floor", "target", "C step", "Python step"]
    header += ["overhead", "step_into", "its overhead", "step above cffi (ns)",
               "step_into above cffi (ns)", "Python p99", "met"]  # fmt: skip
    return _table("Where a step's time goes (us, median)", header, rows, note)


def _md_seq(results: dict[str, Any]) -> str:
    fmts, lengths = _formats(results), [str(t) for t in results["config"]["seq_lengths"]]
    engines = _present(results, [p for p in PEERS if p != "ort-iobinding"]) + [f"rnnedge-{f}" for f in fmts]
    rows = []
    for c in results["cases"]:
        per_step = {
            e: [_get(c, "engines", e, "seq", t, "per_step_us") for t in lengths] for e in engines
        }
        ratios = [
            ratio_text(per_step[f"rnnedge-{f}"][-1], (per_step.get("ort") or [None])[-1])
            for f in fmts
        ]
        rows.append([c["case"]["name"], *(_us(v) for e in engines for v in per_step[e]), *ratios])
    header = ["case", *(f"{_title(e)} T={t}" for e in engines for t in lengths)]
    header += [f"{f} / onnxruntime T={lengths[-1]}" for f in fmts]
    title = f"Sequence mode, one call per sequence (us per step, fastest call; T = {', '.join(lengths)})"
    return _table(title, header, rows) + _md_seq_ratios(results)


def _md_seq_ratios(results: dict[str, Any]) -> str:
    """Model.run / onnxruntime's run at every T, each format (the calls timed interleaved)."""
    fmts, lengths = _formats(results), [str(t) for t in results["config"]["seq_lengths"]]
    if not _present(results, ["ort"]) or len(lengths) < 2:
        return ""
    rows = []
    for c in results["cases"]:
        theirs = {t: _get(c, "engines", "ort", "seq", t, "per_step_us") for t in lengths}
        rows.append([c["case"]["name"], *(
            ratio_text(_get(c, "engines", f"rnnedge-{f}", "seq", t, "per_step_us"), theirs[t])
            for f in fmts for t in lengths)])  # fmt: skip
    header = ["case", *(f"{f} T={t}" for f in fmts for t in lengths)]
    note = ("`Model.run` / `InferenceSession.run` on the same sequence, the fastest call of each, "
            "their calls interleaved; below 1 is faster, in brackets how many times.")
    return "\n\n" + _table("Sequence mode: rnnedge / onnxruntime", header, rows, note)


def _md_sizes(results: dict[str, Any]) -> str:
    fmts = _formats(results)
    rss = [e for e in ["ort", "torch"] + [f"rnnedge-{f}" for f in fmts]
           if any(_get(c, "engines", e, "rss_mib") for c in results["cases"])]  # fmt: skip
    rows = []
    for c in results["cases"]:
        blobs = [_size(_get(c, "engines", f"rnnedge-{f}", "blob_bytes")) for f in fmts]
        mem = [_get(c, "engines", e, "rss_mib") for e in rss]
        rows.append([c["case"]["name"], _size(c.get("onnx_bytes")), *blobs]
                    + ["-" if v is None else f"{v:.1f} MiB" for v in mem])  # fmt: skip
    header = ["case", "ONNX file", *(f"blob {f}" for f in fmts)]
    header += [f"peak RSS {_title(e)}" for e in rss]
    base = results.get("python_rss_mib")
    note = f"Peak RSS of Python with numpy alone: {base:.1f} MiB." if base else ""
    return _table("Sizes and peak memory", header, rows, note)


def _md_accuracy(results: dict[str, Any]) -> str:
    if not _present(results, ["ort"]):
        return ""  # nothing to compare with
    engines = _present(results, PEERS[2:] + [f"rnnedge-{f}" for f in _formats(results)])

    def cell(r: dict[str, Any] | None) -> str:
        vals = [_get(r, "max_abs_err_step"), _get(r, "max_abs_err_seq")]
        return "-" if not r else " / ".join("-" if v is None else f"{v:.1e}" for v in vals)

    rows = [
        [c["case"]["name"], *(cell(_get(c, "engines", e)) for e in engines)]
        for c in results["cases"]
    ]
    title = f"Agreement with onnxruntime (max abs difference over {CHECK_STEPS} steps)"
    return _table(title, ["case", *map(_title, engines)], rows, "step-wise / sequence mode")


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 5's targets, checked on the single-layer LSTM and GRU cases (reported, not asserted)."""
    rows: list[dict[str, Any]] = []
    t = str(results["config"]["seq_lengths"][-1])
    for c in results["cases"]:
        info = c["case"]
        if info["layers"] != 1 or info["bidirectional"] or not c["case"]["cell"] in GATES:
            continue
        if info["onnx"] or info["blob"]:
            continue
        ort, h = ort_step(c), info["hidden"]
        step = {
            f: _get(c, "engines", f"rnnedge-{f}", "step", "median_us") for f in _formats(results)
        }

        def add(what: str, value: float | None, goal: float | None, ok: bool | None) -> None:
            rows.append(
                {"case": info["name"], "target": what, "value": value, "goal": goal, "met": ok}
            )

        for f, h_ok, goal in (
            ("f32", h <= 64, 10.0),
            ("f32", h == 128, 4.5),
            ("int8", h == 128, 8.0),
        ):
            if h_ok and step.get(f) and ort:
                add(
                    f"{f} step: >= {goal:g}x faster than onnxruntime",
                    ort / step[f],
                    goal,
                    ort / step[f] >= goal,
                )
        for f, v in step.items():
            goal = _get(c, "engines", f"rnnedge-{f}", "target_us")
            if v and goal:
                add(f"{f} step within 1.2 x floor + 0.4 us", v, goal, v <= goal)
        ours = _get(c, "engines", "rnnedge-f32", "seq", t, "per_step_us")
        theirs = _get(c, "engines", "ort", "seq", t, "per_step_us")
        if ours and theirs:
            add(
                f"f32 sequence T={t} no slower than onnxruntime (us/step)",
                ours,
                theirs,
                ours <= theirs,
            )
        for short, strict in (("1", False), ("10", True)):  # issue 17: Model.run's fixed cost
            ours = _get(c, "engines", "rnnedge-f32", "seq", short, "per_step_us")
            theirs = _get(c, "engines", "ort", "seq", short, "per_step_us")
            if ours and theirs and short != t:
                ok = ours < theirs if strict else ours <= theirs
                word = "faster than" if strict else "no slower than"
                add(f"f32 sequence T={short} {word} onnxruntime (us/step)", ours, theirs, ok)
        if step.get("int8") and step.get("f32"):
            add("int8 step faster than f32", step["int8"], step["f32"], step["int8"] < step["f32"])
        _peer_targets(c, h, t, step, add)
    return rows


FP32_PEERS = ("ort", "ort-iobinding", "torch", "tract", "litert")


def _peer_targets(c: dict[str, Any], h: int, t: str, step: dict[str, Any], add: Any) -> None:
    """Issue 17's goals against the fastest peer measured in the same run: the f32 step <= 0.5x
    the best fp32 peer's at H <= 128 and <= 0.8x at 256-512; the int8 step <= 0.7x LiteRT's
    dynamic-range int8 and <= 0.6x rnnedge's own f32 at H >= 64; f32 sequence mode at the
    longest T <= 0.8x the best fp32 peer's. Only with a peer besides onnxruntime present."""
    def best(names: Sequence[str], *path: str) -> tuple[str, float] | None:
        vals = [(n, _get(c, "engines", n, *path)) for n in names]
        vals = [(n, v) for n, v in vals if v]
        return min(vals, key=lambda nv: nv[1]) if vals else None

    if not any(_get(c, "engines", p) for p in ("torch", "tract", "litert")):
        return
    peer = best(FP32_PEERS, "step", "median_us")
    if step.get("f32") and peer:
        k = 0.5 if h <= 128 else 0.8
        add(f"f32 step <= {k:g}x the best fp32 peer's ({_title(peer[0])})", step["f32"], k * peer[1],
            step["f32"] <= k * peer[1])  # fmt: skip
    lite = _get(c, "engines", "litert-int8", "step", "median_us")
    if h >= 64 and step.get("int8"):
        if lite:
            add("int8 step <= 0.7x LiteRT dyn-int8's", step["int8"], 0.7 * lite, step["int8"] <= 0.7 * lite)
        if step.get("f32"):
            add("int8 step <= 0.6x rnnedge f32's", step["int8"], 0.6 * step["f32"],
                step["int8"] <= 0.6 * step["f32"])  # fmt: skip
    seq_peer = best([p for p in FP32_PEERS if p != "ort-iobinding"], "seq", t, "per_step_us")
    ours = _get(c, "engines", "rnnedge-f32", "seq", t, "per_step_us")
    if ours and seq_peer:
        add(f"f32 sequence T={t} <= 0.8x the best fp32 peer's ({_title(seq_peer[0])}, us/step)", ours,
            0.8 * seq_peer[1], ours <= 0.8 * seq_peer[1])  # fmt: skip


def _md_targets(results: dict[str, Any]) -> str:
    rows = targets(results)
    body = [[r["case"], r["target"], f"{r['value']:.2f}", f"{r['goal']:.2f}",
             "yes" if r["met"] else "**no**"] for r in rows]  # fmt: skip
    title = f"Targets of issues 5 and 17 (reported, not asserted): {sum(r['met'] for r in rows)} of {len(rows)} met"
    return _table(title, ["case", "target", "measured", "goal", "met"], body) if rows else ""


def markdown(results: dict[str, Any]) -> str:
    """The tables of a run, as markdown."""
    m = results["machine"]
    load = ", ".join(f"{v:.2f}" for v in m["load_average"] or [])
    overhead = results["harness"]["step_loop_overhead"]["median_us"]
    flags = results["tools"].get("extension_cflags") or "the installed package's flags"
    head = (
        f"## rnnedge benchmark\n\n{m['date']}, {m['cpu']} ({m['arch']}, {m['cores']} cores), "
        f"{m['os']}; Python {m['python']}, numpy {m['numpy']}, onnxruntime {m['onnxruntime'] or '-'}, "
        f"PyTorch {m['torch'] or '-'}; rnnedge {m['rnnedge']} (tier {m.get('rnnedge_isa') or '-'}) built with {flags} "
        f"({m['compiler'] or 'unknown compiler'}). Load average at the start: {load}. The timing "
        f"loop's own cost, included in every Python figure: {overhead:.3f} us per step."
    )
    notes = [results["tools"]["note"]] if results["tools"].get("note") else []
    notes += [f"{c['case']['name']}: {n}" for c in results["cases"] for n in c.get("notes", [])]
    tail = "Notes:\n\n" + "\n".join(f"- {n}" for n in dict.fromkeys(notes)) if notes else ""
    parts = [head, _md_steps(results), _md_floor(results), _md_seq(results), _md_sizes(results)]
    parts += [_md_accuracy(results), _md_targets(results), tail]
    return "\n\n".join(p for p in parts if p) + "\n"


PLOT_COLORS = {"ort": "tab:blue", "ort-iobinding": "tab:cyan", "ort-int8": "tab:purple",
               "torch": "tab:brown", "f32": "tab:green", "int16": "tab:orange", "int8": "tab:red"}  # fmt: skip


def write_png(results: dict[str, Any], path: Path) -> str | None:
    """Per-step latency against hidden size for every engine, one panel per cell (the single-layer
    built cases). Returns None when written, else why not (matplotlib is an optional extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no PNG written"
    series = [(o, "step", "s-", _title(o)) for o in _present(results, list(OTHER_TITLES))]
    for f in _formats(results):
        series += [(f"rnnedge-{f}", "step", "o-", f"rnnedge {f} (Python)")]
        series += [(f"rnnedge-{f}", "c_step", ".:", f"rnnedge {f} (C)")]
        series += [(f"rnnedge-{f}", "floor_us", "--", f"floor {f}")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for ax, cell in zip(axes, ("lstm", "gru")):
        cases = [c for c in results["cases"] if c["case"]["cell"] == cell and c["case"]["layers"] == 1
                 and not (c["case"]["bidirectional"] or c["case"]["onnx"] or c["case"]["blob"])]  # fmt: skip
        cases.sort(key=lambda c: c["case"]["hidden"])
        for engine, key, style, label in series:
            pts = [(c["case"]["hidden"], _get(c, "engines", engine, key)) for c in cases]
            pts = [(h, v if key == "floor_us" else _get(v, "median_us")) for h, v in pts if v]
            color = PLOT_COLORS.get(engine.replace("rnnedge-", ""))
            if pts:
                ax.plot(
                    *zip(*pts), style, label=label, color=color, alpha=0.6 if key != "step" else 1
                )
        hs = [c["case"]["hidden"] for c in cases]
        feats = ", ".join(sorted({str(c["case"]["features"]) for c in cases}))
        ax.set_xscale("log", base=2)
        ax.set(yscale="log", xlabel="hidden size", title=f"{cell.upper()}, input {feats}, batch 1")
        ax.set_xticks(hs, [str(h) for h in hs], minor=False)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_visible(bool(hs))
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("per-step latency (us, median)")
    legend = {label: h for ax in axes for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(legend.values(), legend.keys(), fontsize=7, loc="center right")
    fig.suptitle(
        f"rnnedge, {results['machine']['cpu']}, {results['machine']['date'][:10]}", fontsize=10
    )
    fig.tight_layout(rect=(0, 0, 0.83, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def write_outputs(results: dict[str, Any], out_dir: Path) -> list[str]:
    """bench.md, bench.json and bench.png in out_dir; returns what was written (and a note when
    the PNG could not be)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.md").write_text(markdown(results) + "\n")
    (out_dir / "bench.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    written = [str(out_dir / "bench.md"), str(out_dir / "bench.json")]
    note = write_png(results, out_dir / "bench.png")
    written.append(note or str(out_dir / "bench.png"))
    return written


DOCS_BEGIN, DOCS_END = "<!-- bench-results: begin -->", "<!-- bench-results: end -->"


CONV_BEGIN, CONV_END = "<!-- conv-results: begin -->", "<!-- conv-results: end -->"


def update_docs(path: Path, text: str, markers: tuple[str, str] = (DOCS_BEGIN, DOCS_END)) -> None:
    """Replace what stands between the two markers (DOCS_BEGIN and DOCS_END; the conv run's
    CONV_BEGIN and CONV_END) in `path` with `text`."""
    doc = path.read_text()
    (b, e), (begin, end) = markers, (doc.find(markers[0]), doc.find(markers[1]))
    if begin < 0 or end < begin:
        raise InputError(f"{path}: no {b} ... {e} section to replace")
    path.write_text(doc[: begin + len(b)] + "\n" + text.strip() + "\n" + doc[end:])


