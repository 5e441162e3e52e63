"""The bundled example: an LSTM human-activity classifier, its held-back test sequences and the
training sequences it was fitted on (used to calibrate the integer formats).

`EXAMPLE_ONNX` takes raw smartwatch readings [batch, time, 6] (BasicMotions: 3D accelerometer and
3D gyroscope at 10 Hz) and gives class probabilities [batch, 4]; it is unidirectional, so it can be
streamed, and each step's output is what the model says if the sequence ended there. Trained by
tools/train_example.py; data set, citation and figures in docs/example.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import RnnedgeError

_HERE = Path(__file__).resolve().parent
EXAMPLE_ONNX: Path = _HERE / "har_lstm.onnx"
EXAMPLE_TEST: Path = _HERE / "har_test.npz"
EXAMPLE_TRAIN: Path = _HERE / "har_train.npz"

FEATURES = 6


def load_test_set() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The held-back BasicMotions test cases: x float32 [N, T, 6] raw sensor values, y int64 [N]
    indices into class_names (["Standing", "Running", "Walking", "Badminton"])."""
    return _load(EXAMPLE_TEST)


def load_train_set() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The BasicMotions training cases the model was fitted on, as load_test_set returns them:
    representative inputs for calibrating the integer formats, disjoint from the test cases."""
    return _load(EXAMPLE_TRAIN)


def _load(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            x, y, names = data["x"], data["y"], data["class_names"]
    except FileNotFoundError:
        raise RnnedgeError(
            f"{path} is missing: the package was installed without its example data"
        ) from None
    except (KeyError, ValueError, OSError) as e:
        raise RnnedgeError(f"{path} is unreadable or incomplete: {e}") from None
    class_names = [str(n) for n in names]
    if x.dtype != np.float32 or x.ndim != 3 or x.shape[2] != FEATURES:
        raise RnnedgeError(f"{path}: x is {x.dtype} {x.shape}, expected float32 [N, T, {FEATURES}]")
    if y.shape != (x.shape[0],) or y.dtype.kind != "i":
        raise RnnedgeError(f"{path}: y is {y.dtype} {y.shape}, expected int [{x.shape[0]}]")
    if y.size and (y.min() < 0 or y.max() >= len(class_names)):
        raise RnnedgeError(f"{path}: labels outside 0..{len(class_names) - 1}")
    return x, y, class_names
