#!/usr/bin/env python3
"""Check what the firmware example printed against the Python API on the same frames.

    python3 examples/firmware/check_output.py DIR LOG

DIR is one of make_firmware_data.py's output directories (har.rne, frames.npy, counts.npy,
io.json); LOG the firmware's output under qemu. Every "step S T: p0 p1 p2 p3" line must equal
what rnnedge.load(har.rne).stream().step() gives after frame T of sequence S, within 2e-6 (the
printed 6 decimals, and float sums that may differ in the last bit between the host's SIMD
kernels and the microcontroller's scalar ones); each "sequence S: CLASS" line the arg-max. For
an integer model the frames are the firmware's own integer inputs (its counts times the Q32
multiplier, rounded as main.c does), given to the stream at the model's input scale, which
quantizes them back to the same int16 values. Exits 1 with the first difference.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
try:
    import rnnedge
except ImportError:
    sys.path.insert(0, str(ROOT))
    import rnnedge

import numpy as np  # noqa: E402

from rnnedge.examples import load_test_set  # noqa: E402

TOL = 2e-6


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d, log = Path(argv[0]), Path(argv[1]).read_text()
    model, frames = rnnedge.load(d / "har.rne"), np.load(d / "frames.npy")
    io = json.loads((d / "io.json").read_text())
    if "in_mult" in io:  # main.c's to_model: round(count * mult / 2^32), halves up, saturated
        p = np.load(d / "counts.npy").astype(np.int64) * int(io["in_mult"]) + (1 << 31)
        q = np.clip(np.floor_divide(p, 1 << 32), -32768, 32767)
        frames = (q * float(model.blob.meta["qio"]["input_scale"])).astype(np.float32)
    names = load_test_set()[2]
    steps = [(int(m[1]), int(m[2]), [float(v) for v in m[3].split()])
             for m in re.finditer(r"^step (\d+) (\d+):((?: [0-9.]+)+)$", log, re.M)]  # fmt: skip
    verdicts = {int(m[1]): m[2] for m in re.finditer(r"^sequence (\d+): (\w+)$", log, re.M)}
    if len(steps) != frames.shape[0] * (frames.shape[1] // 20) or len(verdicts) != frames.shape[0]:
        print(f"check_output: expected {frames.shape[0]} sequences of {frames.shape[1] // 20} outputs, "
              f"found {len(steps)} outputs and {len(verdicts)} verdicts in the log")  # fmt: skip
        return 1
    for s in range(frames.shape[0]):
        stream = model.stream(batch=1)
        want = [stream.step(frames[s : s + 1, t])[0] for t in range(frames.shape[1])]
        for seq, t, got in (row for row in steps if row[0] == s):
            if np.max(np.abs(np.array(got) - want[t])) > TOL:
                print(
                    f"check_output: sequence {s} step {t}: firmware {got}, Python {want[t].tolist()}"
                )
                return 1
        if verdicts[s] != names[int(np.argmax(want[-1]))]:
            print(
                f"check_output: sequence {s}: firmware says {verdicts[s]}, Python {names[int(np.argmax(want[-1]))]}"
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
