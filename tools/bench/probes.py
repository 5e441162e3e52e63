"""What the benchmark measures outside Python's timing loop: `rne_step` in C (tools/bench_step.c,
compiled here with the extension's flags), the cache bandwidth behind the floor, the peak memory of
a fresh process per engine, and the machine and software of a run."""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import rnnedge
from rnnedge.errors import RnnedgeError
from rnnedge.measure import cpu_name

def source_root() -> Path | None:
    """The source checkout holding csrc/ and tools/bench_step.c (the one around tools/bench, else
    the current directory), if there is one."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / "csrc" / "rnnedge.h").is_file() and (root / "tools" / "bench_step.c").is_file():
            return root
    return None


def build_c_bench(out_dir: Path, root: Path | None = None) -> Path:
    """Compile tools/bench_step.c with csrc/*.c into out_dir; returns the program's path.

    The library sources get the Python extension's flags (rnnedge/_build.py), so the C figure is
    the code the extension runs; bench_step.c gets -march=native for its bandwidth loop, and the
    library's macros (-D / -U: RNE_MAX_NODES sizes rne_model, which both sides must agree on).
    Raises RnnedgeError when there is no source checkout or no working C compiler.
    """
    root = root or source_root()
    if root is None:
        raise RnnedgeError(
            "no source checkout (csrc/ and tools/bench_step.c) around tools/bench or in the current directory"
        )
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise RnnedgeError("no C compiler found (set CC)")
    lib_flags = extension_cflags(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    csrc, objects = root / "csrc", []
    jobs = [(p, lib_flags) for p in sorted(csrc.glob("*.c"))]
    macros = [f for f in lib_flags if f.startswith(("-D", "-U"))]
    jobs.append((root / "tools" / "bench_step.c", ["-std=c99", "-O3", "-march=native", *macros]))
    for src, flags in jobs:
        obj = out_dir / (src.stem + ".o")
        _compile([cc, *flags, f"-I{csrc}", "-c", str(src), "-o", str(obj)], src)
        objects.append(str(obj))
    exe = out_dir / "bench_step"
    _compile([cc, "-o", str(exe), *objects, "-lm"], exe)
    return exe


def extension_cflags(root: Path) -> list[str]:
    """The flags the Python extension is built with: `_cflags()` of the checkout's rnnedge/_build.py
    (which honours $RNNEDGE_CFLAGS)."""
    try:
        return list(runpy.run_path(str(root / "rnnedge" / "_build.py"))["_cflags"]())
    except Exception as e:  # a build script that cannot run here: say why
        raise RnnedgeError(
            f"{root / 'rnnedge' / '_build.py'}: cannot read the extension's flags: {e}"
        )


def _compile(cmd: list[str], what: Path) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except OSError as e:
        raise RnnedgeError(f"{cmd[0]}: cannot run the C compiler: {e}") from None
    if proc.returncode != 0 and "-march=native" in cmd:  # a compiler without -march=native
        cmd = [c for c in cmd if c != "-march=native"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RnnedgeError(
            f"building {what.name} failed: {(proc.stderr or proc.stdout).strip()[-800:]}"
        )


def _run_json(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RnnedgeError(f"{Path(cmd[0]).name} {' '.join(cmd[1:])}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def c_step_time(exe: Path, blob: Path, steps: int, warmup: int) -> dict[str, float]:
    """rne_step at batch 1 in C: median, p99, min, mean microseconds per step."""
    return _run_json([str(exe), str(blob), str(steps), str(max(warmup, 1))])


def bandwidth(nbytes: int, exe: Path | None) -> dict[str, Any]:
    """Streaming read bandwidth for a buffer of nbytes, the best of 50 timed blocks: with the C
    bench (widest loads) when built, else numpy's sum over 64-bit words (a lower estimate)."""
    if exe is not None:
        r = _run_json([str(exe), "--bandwidth", str(max(nbytes, 64))])
        r["method"] = "tools/bench_step.c --bandwidth (-O3 -march=native)"
        return r
    words = np.arange(max(nbytes, 64) // 8 + 1, dtype=np.uint64)
    passes = max(1, int(2e5 // max(words.nbytes, 1)))
    best = math.inf
    for _ in range(50):
        t0 = time.perf_counter_ns()
        for _ in range(passes):
            words.sum()
        best = min(best, (time.perf_counter_ns() - t0) / passes)
    return {
        "bytes": int(words.nbytes),
        "pass_us": best / 1e3,
        "gbps": words.nbytes / best,
        "method": "numpy uint64 sum (no C compiler)",
    }


_RSS_PRELUDE = "import sys, json\nimport numpy as np\n"
_RSS_CODE = {
    "python": "",
    "rnnedge": (
        "import rnnedge\n"
        "m = rnnedge.load(sys.argv[1])\n"
        "m.run(np.zeros(json.loads(sys.argv[2]), np.float32))\n"
    ),
    "ort": (
        "import onnxruntime as ort\n"
        "so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1\n"
        "s = ort.InferenceSession(sys.argv[1], so, providers=['CPUExecutionProvider'])\n"
        "s.run(None, {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)"
        " for i in s.get_inputs()})\n"
    ),
    "torch": (
        "import torch\n"
        "torch.set_num_threads(1)\n"
        "cell, f, h, layers, bidir = json.loads(sys.argv[1])\n"
        "m = (torch.nn.LSTM if cell == 'lstm' else torch.nn.GRU)(f, h, layers, bidirectional=bidir)\n"
        "with torch.inference_mode():\n    m(torch.zeros(1, 1, f))\n"
    ),
}
_RSS_REPORT = (
    "def _peak():\n"
    "    try:\n"
    "        for line in open('/proc/self/status'):\n"
    "            if line.startswith('VmHWM:'):\n"
    "                return int(line.split()[1])\n"
    "    except OSError:\n"
    "        pass\n"
    "    import resource\n"
    "    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    return r // 1024 if sys.platform == 'darwin' else r\n"
    "print('PEAK_KIB', _peak())\n"
)


def peak_rss_mib(engine: str, *args: str) -> float:
    """Peak resident memory (MiB) of a fresh Python process that imports `engine`, loads the
    model given by args and runs one step: VmHWM from /proc/self/status (ru_maxrss elsewhere)."""
    code = _RSS_PRELUDE + _RSS_CODE[engine] + _RSS_REPORT
    # run where this rnnedge package lives: `-c` puts the working directory first on sys.path,
    # so the child imports the same rnnedge (not a source tree without its extension)
    here = Path(rnnedge.__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, cwd=here
    )
    for line in proc.stdout.splitlines():
        if line.startswith("PEAK_KIB "):
            return int(line.split()[1]) / 1024
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    raise RnnedgeError(f"the {engine} child process failed: {last}")


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # not installed, or no metadata
        return None


def _isa() -> str | None:
    """rnnedge.build_info()'s tier, with its kernels: what the Python and C step rows ran."""
    try:
        info = rnnedge.build_info()
    except rnnedge.NotBuiltError:
        return None
    return f"{info['isa']} (f32 {info['f32_kernels']}, int {info['int_kernels']})"


def machine() -> dict[str, Any]:
    """The machine and software a run measured."""
    caches = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        with contextlib.suppress(OSError):
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            caches[f"L{level}{'d' if kind == 'Data' else 'i' if kind == 'Instruction' else ''}"] = (
                (index / "size").read_text().strip()
            )
    cc = os.environ.get("CC") or shutil.which("cc")
    compiler = None
    if cc:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            compiler = subprocess.run(
                [cc, "--version"], capture_output=True, text=True, timeout=10
            ).stdout.splitlines()[0]
    return {
        "cpu": cpu_name(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "caches": caches,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "torch": _version("torch"),
        "rnnedge": rnnedge.__version__,
        "rnnedge_isa": _isa(),  # the build of the C library the runs loaded (RNNEDGE_ISA forces one)
        "compiler": compiler,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }

