"""`rnnedge export-c`: the C header for firmware (rnnedge/export_c.py).

The header's array must hold the blob's exact bytes at the blob's alignment, its #defines must be
the C library's own figures, and a C program must load the array in place and step the model
with static buffers of exactly STATE_BYTES and SCRATCH_BYTES.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

import rnnedge
from rnnedge.errors import BlobError, InputError
from rnnedge.export_c import default_symbol, export_c, main

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "c"
F32_BLOB = DATA / "lstm_hidden16_batch3.rne"  # alignment 16
INT_BLOB = DATA / "int" / "q8_lstm_no_bias.rne"
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler")


def defines(text: str) -> dict[str, str]:
    return dict(re.findall(r"^#define (\w+) (\S+)", text, re.M))


def array_bytes(text: str, symbol: str) -> bytes:
    body = text.split(f"const unsigned char {symbol}[")[2].split("= {", 1)[1].split("};", 1)[0]
    return bytes(int(v, 16) for v in re.findall(r"0x[0-9a-f]{2}", body))


@pytest.fixture(scope="module")
def f32_header(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("export") / "model_data.h"
    export_c(F32_BLOB, out, symbol="lstm16", section=".rodata.model")
    return out, out.read_text()


def test_header_holds_the_blob_and_the_libraries_figures(f32_header):
    _, text = f32_header
    data = F32_BLOB.read_bytes()
    model = rnnedge.load(F32_BLOB)
    d = defines(text)
    assert array_bytes(text, "lstm16") == data
    assert d["LSTM16_SIZE"] == f"{len(data)}u"
    assert d["LSTM16_ALIGN"] == f"{int.from_bytes(data[16:20], 'little')}u" == "16u"
    assert (
        int(d["LSTM16_CRC32"].rstrip("u"), 16)
        == zlib.crc32(data[:-4])
        == int.from_bytes(data[-4:], "little")
    )
    assert d["LSTM16_IN_FEATURES"] == "7u" and d["LSTM16_OUT_FEATURES"] == "16u"
    assert d["LSTM16_STATE_BYTES"] == f"{model.state_bytes(1)}u"
    assert d["LSTM16_SCRATCH_BYTES"] == f"{model.scratch_bytes(1, 1)}u"
    assert d["LSTM16_STREAMABLE"] == "1" and d["LSTM16_INTEGER"] == "0"
    assert "LSTM16_INPUT_SCALE" not in d
    assert '__attribute__((aligned(16), section(".rodata.model")))' in text


def test_integer_model_gets_its_io_scales(tmp_path):
    out = tmp_path / "q.h"
    info = export_c(INT_BLOB, out)
    d = defines(out.read_text())
    qio = rnnedge.load(INT_BLOB).blob.meta["qio"]
    assert info.symbol == "q8_lstm_no_bias" and info.quant == "int8"
    assert d["Q8_LSTM_NO_BIAS_INTEGER"] == "1"
    # printed with 9 significant digits: the float32 scale comes back exactly
    assert np.float32(d["Q8_LSTM_NO_BIAS_INPUT_SCALE"].rstrip("f")) == np.float32(
        qio["input_scale"]
    )
    assert np.float32(d["Q8_LSTM_NO_BIAS_OUTPUT_SCALE"].rstrip("f")) == np.float32(
        qio["output_scale"]
    )
    assert "section(" not in out.read_text()


def test_not_streamable_model_says_so(tmp_path):
    out = tmp_path / "bi.h"
    export_c(DATA / "lstm_bidirectional.rne", out, symbol="bi")
    assert defines(out.read_text())["BI_STREAMABLE"] == "0"


PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "model_data.h"
#include "rnnedge.h"

static unsigned char state[LSTM16_STATE_BYTES] __attribute__((aligned(16)));
static unsigned char scratch[LSTM16_SCRATCH_BYTES] __attribute__((aligned(16)));
const unsigned char *elsewhere(void);

int main(void)
{
    rne_model m;
    rne_stream s;
    float x[LSTM16_IN_FEATURES] = {0}, y[LSTM16_OUT_FEATURES];
    int rc = rne_model_load(lstm16, LSTM16_SIZE, &m);
    uint32_t crc;
    memcpy(&crc, lstm16 + LSTM16_SIZE - 4, 4);
    if (rc == RNE_OK)
        rc = rne_stream_init(&s, &m, 1, state, sizeof state, scratch, sizeof scratch);
    if (rc == RNE_OK)
        rc = rne_step(&s, x, y);
    printf("rc %d aligned %d crc %d state %d scratch %d same %d y0 %.9g\n", rc,
           (int)((uintptr_t)lstm16 % LSTM16_ALIGN == 0), (int)(crc == LSTM16_CRC32),
           (int)(rne_state_size(&m, 1) == LSTM16_STATE_BYTES),
           (int)(rne_scratch_size(&m, 1, 1) == LSTM16_SCRATCH_BYTES), (int)(elsewhere() == lstm16),
           (double)y[0]);
    return rc;
}
"""

OTHER_UNIT = r"""
#define LSTM16_DECLARE_ONLY
#include "model_data.h"
const unsigned char *elsewhere(void);
const unsigned char *elsewhere(void) { return lstm16; }
"""


@needs_cc
@pytest.mark.parametrize("configured", [False, True], ids=["whole_library", "export_c_flags"])
def test_c_program_loads_the_array_in_place_and_steps(f32_header, tmp_path, configured):
    """Two translation units (one defines the array, one only declares it), the library's
    sources, warnings as errors: the model loads from the array and steps in exactly the
    exported sizes, and gives the Python API's first output; also with the library built with
    the -D flags the header names for this model (every other family compiled out)."""
    header, text = f32_header
    flags = defines(text.replace('"', "")) and re.search(r'LSTM16_RNE_CFLAGS "([^"]*)"', text)[1]
    assert "-DRNE_NO_GRU" in flags.split() and "-DRNE_NO_LSTM" not in flags.split()
    (tmp_path / "model_data.h").write_bytes(header.read_bytes())
    (tmp_path / "main.c").write_text(PROGRAM)
    (tmp_path / "other.c").write_text(OTHER_UNIT)
    exe = tmp_path / "prog"
    sources = [str(p) for p in sorted((ROOT / "csrc").glob("*.c"))]
    cmd = [CC, "-std=c99", "-O1", "-Wall", "-Wextra", "-Wpedantic", "-Werror", f"-I{tmp_path}",
           f"-I{ROOT / 'csrc'}", *(flags.split() if configured else []), str(tmp_path / "main.c"),
           str(tmp_path / "other.c"), *sources, "-lm", "-o", str(exe)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    m = re.match(r"rc 0 aligned 1 crc 1 state 1 scratch 1 same 1 y0 (\S+)", out)
    assert m, out
    want = rnnedge.load(F32_BLOB).stream(batch=1).step(np.zeros((1, 7), np.float32))
    assert float(m[1]) == pytest.approx(float(want.ravel()[0]), abs=1e-6)


@pytest.mark.parametrize(
    "blob, flags",
    [
        # the int8 LSTM-only firmware of docs/embedded.md: everything but s8 LSTM out
        ("int/q8_lstm_no_bias.rne", "-DRNE_NO_F32 -DRNE_NO_S16 -DRNE_NO_DENSE -DRNE_NO_ACT "
         "-DRNE_NO_GRU -DRNE_NO_RNN -DRNE_NO_LAYERNORM -DRNE_NO_GRAPH_OPS -DRNE_NO_CONV "
         "-DRNE_NO_STATE_IO -DRNE_NO_INNER"),
        ("c_stack_lstm_gru_dense_layernorm.rne",
         "-DRNE_NO_S16 -DRNE_NO_S8 -DRNE_NO_ACT -DRNE_NO_RNN -DRNE_NO_GRAPH_OPS -DRNE_NO_CONV "
         "-DRNE_NO_STATE_IO -DRNE_NO_INNER"),
        ("int/q16_rnn_relu_layernorm_dense.rne",
         "-DRNE_NO_F32 -DRNE_NO_S8 -DRNE_NO_LSTM -DRNE_NO_GRU -DRNE_NO_GRAPH_OPS -DRNE_NO_CONV "
         "-DRNE_NO_STATE_IO -DRNE_NO_INNER"),
        # a residual add: the graph ops stay
        ("graph/residual_lstm.rne",
         "-DRNE_NO_S16 -DRNE_NO_S8 -DRNE_NO_GRU -DRNE_NO_RNN -DRNE_NO_LAYERNORM -DRNE_NO_CONV "
         "-DRNE_NO_STATE_IO -DRNE_NO_INNER"),
    ],
)  # fmt: skip
def test_build_config_leaves_out_what_the_model_does_not_use(tmp_path, blob, flags):
    out = tmp_path / "m.h"
    info = export_c(DATA / blob, out, symbol="m")
    assert " ".join(info.cflags) == flags
    assert f'#define M_RNE_CFLAGS "{flags}"' in out.read_text()
    info = export_c(DATA / blob, out, symbol="m", fault_names=False)
    assert " ".join(info.cflags) == flags + " -DRNE_NO_FAULT_NAMES"


def test_command_prints_the_build_flags(tmp_path, capsys):
    assert main([str(INT_BLOB), "-o", str(tmp_path / "q.h"), "--no-fault-names"]) == 0
    out = capsys.readouterr()
    assert "build the library for this model with: -DRNE_NO_F32 -DRNE_NO_S16" in out.out + out.err
    assert "-DRNE_NO_CONV -DRNE_NO_STATE_IO -DRNE_NO_INNER -DRNE_NO_FAULT_NAMES" in out.out + out.err


@needs_cc
def test_section_attribute_reaches_the_object(f32_header, tmp_path):
    header, _ = f32_header
    src = tmp_path / "only.c"
    src.write_text(f'#include "{header}"\n')
    asm = subprocess.run([CC, "-std=c99", "-S", "-o", "-", str(src)], check=True, capture_output=True,
                         text=True).stdout  # fmt: skip
    assert re.search(r"\.section\s+\.rodata\.model", asm), asm[:500]
    assert re.search(r"\.align\s+(16|4)\b|\.p2align\s+4\b", asm), asm[:500]


@pytest.mark.parametrize(
    "path, symbol",
    [("har-lstm.rne", "har_lstm"), ("models/v2.model.rne", "v2"), ("1st.rne", "model_1st"),
     ("int.rne", "model_int"), ("__x.rne", "model___x"), ("_Abc.rne", "model__Abc")],  # fmt: skip
)
def test_default_symbol_is_a_c_identifier(path, symbol):
    assert default_symbol(path) == symbol


@pytest.mark.parametrize("symbol", ["1abc", "int", "a-b", "", "__reserved", "_Upper", "x y"])
def test_bad_symbol_is_refused_by_name(tmp_path, symbol):
    with pytest.raises(InputError, match=re.escape(repr(symbol))):
        export_c(F32_BLOB, tmp_path / "m.h", symbol=symbol)
    assert not (tmp_path / "m.h").exists()


@pytest.mark.parametrize("section", ['.rodata"x', ".a b", ".x\n#define"])
def test_bad_section_is_refused_by_name(tmp_path, section):
    with pytest.raises(InputError, match="--section"):
        export_c(F32_BLOB, tmp_path / "m.h", section=section)


def test_corrupt_blob_is_refused_and_the_old_header_kept(tmp_path):
    bad = tmp_path / "bad.rne"
    data = bytearray(F32_BLOB.read_bytes())
    data[len(data) // 2] ^= 0x40
    bad.write_bytes(bytes(data))
    out = tmp_path / "m.h"
    out.write_text("previous\n")
    with pytest.raises(BlobError, match="bad.rne"):
        export_c(bad, out)
    assert out.read_text() == "previous\n"
    assert {p.name for p in tmp_path.iterdir()} == {"bad.rne", "m.h"}


def test_failed_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        export_c(F32_BLOB, target)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"] and not any(target.iterdir())


def test_missing_blob_names_the_file(tmp_path):
    with pytest.raises(BlobError, match="nope.rne: no such file"):
        export_c(tmp_path / "nope.rne", tmp_path / "m.h")


def test_command_line(tmp_path, capsys):
    out = tmp_path / "model_data.h"
    assert (
        main([str(F32_BLOB), "-o", str(out), "--symbol", "net", "--section", ".rodata.model"]) == 0
    )
    said = capsys.readouterr().out
    assert f"wrote {out}" in said and "NET_STATE_BYTES = " in said
    assert defines(out.read_text())["NET_SIZE"] == f"{F32_BLOB.stat().st_size}u"
    assert main([str(F32_BLOB), "-o", str(out), "--symbol", "9lives"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnedge export-c: error: --symbol '9lives'") and err.count("\n") == 1


STATE_IO_PROGRAM = r"""
#include <stdio.h>
#include "st.h"
#include "rnnedge.h"

int main(void)
{
    rne_model m;
    rne_fault w;
    int rc = rne_model_load_where(st, ST_SIZE, &m, &w);
    printf("ok %d elayer %d node %d in %d index %d\n", rc == RNE_OK, rc == RNE_ELAYER,
           (int)w.layer, (int)(w.field == RNE_FF_IN), (int)w.index);
    return 0;
}
"""


@needs_cc
def test_state_io_is_left_out_only_for_a_model_without_it(tmp_path):
    """RNE_NO_STATE_IO (a recurrent node's h_init / c_init / Y_h / Y_c as values) is in the set
    export-c names only where no recurrent node has them: an LSTM fed its state by STATE values
    loads in the library built with that set, and a library built with RNE_NO_STATE_IO refuses
    it at its h_init (RNE_ELAYER, node 0, field in, index 1)."""
    from rnnedge.blob.write import write_blob
    from rnnedge.ir.graph import Graph, Node, Value, check_graph, plan_arena
    from rnnedge.ir.layers import Recurrent, TensorSpec

    rng = np.random.default_rng(3)
    H, I = 4, 3
    w = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)  # noqa: E731
    vals = [Value("x", (I,), kind="input"), Value("h", (1, H), kind="state", update=4),
            Value("c", (1, H), kind="state", update=5), Value("y", (H,), kind="output"),
            Value("hn", (1, H), last=True), Value("cn", (1, H), last=True)]
    lstm = Recurrent("lstm", "forward", w(1, 4 * H, I), w(1, 4 * H, H))
    g = Graph(vals, [Node(lstm, [0, 1, 2], [3, 4, 5])], 0, 3,
              TensorSpec("x", "TBF", [None, None, I]), TensorSpec("y", "TBF", [None, None, H]))
    plan_arena(g)
    check_graph(g)
    blob = tmp_path / "st.rne"
    blob.write_bytes(write_blob(g))
    info = export_c(blob, tmp_path / "st.h", symbol="st")
    assert "-DRNE_NO_STATE_IO" not in info.cflags and "-DRNE_NO_GRU" in info.cflags
    (tmp_path / "main.c").write_text(STATE_IO_PROGRAM)
    sources = [str(p) for p in sorted((ROOT / "csrc").glob("*.c"))]
    for flags, want in ((list(info.cflags), "ok 1 elayer 0"),
                        ([*info.cflags, "-DRNE_NO_STATE_IO"], "ok 0 elayer 1 node 0 in 1 index 1")):
        exe = tmp_path / "prog"
        subprocess.run([CC, "-std=c99", "-O1", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                        f"-I{tmp_path}", f"-I{ROOT / 'csrc'}", *flags, str(tmp_path / "main.c"),
                        *sources, "-lm", "-o", str(exe)], check=True, capture_output=True, text=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
        assert out.startswith(want), (flags, out)
