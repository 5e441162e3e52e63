"""rnnedge/blob/spec.py mirrors csrc/rnnedge.h: every code equals the compiled library's, and
every enum constant of the header's cdef has its entry in spec.py."""

from __future__ import annotations

import re
from pathlib import Path

from rnnedge._rnnedge import ffi, lib
from rnnedge.blob import spec
from rnnedge.ir.layers import ACTIVATIONS

ROOT = Path(__file__).resolve().parent.parent
# spec.py's name for a C constant: RNE_OP_DENSE -> OP_DENSE, RNE_EMAGIC -> E_MAGIC, RNE_OK -> OK
_C_PREFIXES = ("OP_", "FMT_", "DT_", "LF_", "ACT_", "T_")
_SPEC_CODE = re.compile(r"(?:OP|FMT|DT|LF|ACT|T|E|BIN|RED|V|VF)_[A-Z0-9_]+\Z")


def spec_name(c_name: str) -> str:
    name = c_name.removeprefix("RNE_")
    if name.startswith("E") and not name.startswith(_C_PREFIXES):
        return "E_" + name[1:]
    return name


# rne_model_load_where's fault codes are the C API's, not the blob's: Python reads their names
# from the library (rne_fault_field_name, rne_fault_section_name), never the numbers.
_FAULT_PREFIXES = ("RNE_FF_", "RNE_SEC_")


def c_constants() -> dict[str, int]:
    return {n: getattr(lib, n) for n in dir(lib) if n.startswith("RNE_")
            and not n.startswith(_FAULT_PREFIXES) and isinstance(getattr(lib, n), int)}  # fmt: skip


def test_every_fault_field_and_section_has_its_own_name():
    for prefix, name_of in (("RNE_FF_", lib.rne_fault_field_name),
                            ("RNE_SEC_", lib.rne_fault_section_name)):  # fmt: skip
        codes = sorted(getattr(lib, n) for n in dir(lib) if n.startswith(prefix))
        assert codes == list(range(len(codes))), prefix  # dense: the name tables are arrays
        names = [ffi.string(name_of(c)).decode() for c in codes]
        assert "?" not in names and len(set(names)) == len(names), names
        assert ffi.string(name_of(len(codes))) == b"?" == ffi.string(name_of(-1))


def test_every_c_constant_has_its_spec_entry_with_the_same_value():
    consts = c_constants()
    assert len(consts) > 50, sorted(consts)  # the cdef's enums and #defines reached the extension
    wrong = {c: (v, getattr(spec, spec_name(c), None)) for c, v in consts.items()
             if getattr(spec, spec_name(c), None) != v}  # fmt: skip
    assert not wrong, f"C constant -> (C value, spec.py value): {wrong}"


def test_every_spec_code_is_a_c_constant():
    consts = c_constants()
    codes = [n for n in vars(spec) if _SPEC_CODE.match(n) and isinstance(getattr(spec, n), int)]
    assert len(codes) > 50
    extra = [n for n in codes if not any(spec_name(c) == n for c in consts)]
    assert not extra, f"spec.py codes with no RNE_* constant in csrc/rnnedge.h's cdef: {extra}"


def test_tables_and_sizes_agree_with_the_header():
    assert spec.HEADER_SIZE == ffi.sizeof("rne_header") == spec.HEADER_STRUCT.size
    assert spec.NODE_SIZE == ffi.sizeof("rne_node") == spec.NODE_STRUCT.size
    assert spec.TENSOR_SIZE == ffi.sizeof("rne_tensor") == spec.TENSOR_STRUCT.size
    assert spec.VALUE_SIZE == ffi.sizeof("rne_value") == spec.VALUE_STRUCT.size
    assert spec.NAME_LEN + 1 == len(ffi.new("rne_tensor *").name)
    assert len(ffi.new("rne_node *").tensor) == spec.N_ROLES == len(spec.ROLE_NAMES)
    assert len(ffi.new("rne_node *").param) == 8 and len(ffi.new("rne_node *").out) == 4
    # the struct fields in the C order (offsets of docs/format.md)
    for struct_name, names in (
        ("rne_node", ["op", "fmt", "flags", "hidden", "clip", "param", "act", "pad", "alpha",
                      "beta", "tensor", "in", "out", "reserved"]),
        ("rne_value", ["kind", "dtype", "ndim", "flags", "shape", "offset", "update", "init",
                       "scale", "reserved"]),
        ("rne_header", ["magic", "version", "header_size", "flags", "alignment", "file_size",
                        "meta_off", "meta_size", "node_off", "n_nodes", "tensor_off", "n_tensors",
                        "value_off", "n_values", "arena_row", "reserved"]),
    ):  # fmt: skip
        fields = ffi.typeof(struct_name).fields
        assert [f for f, _ in fields] == names, struct_name
        assert [t.offset for _, t in fields] == sorted(t.offset for _, t in fields)
    for code, name in spec.KIND_NAMES.items():
        assert getattr(lib, "RNE_V_" + name.upper()) == code
    assert set(spec.ACT_CODES) == set(ACTIVATIONS)  # every IR activation has a blob code
    for name, code in spec.ACT_CODES.items():
        assert getattr(lib, "RNE_ACT_" + name.upper()) == code, name
    for code, name in spec.OP_NAMES.items():
        assert getattr(lib, "RNE_OP_" + name) == code
    for code, (name, dtype) in spec.DTYPES.items():
        assert getattr(lib, "RNE_DT_" + name.upper()) == code and dtype.str[0] in "<|", name
    for code, name in spec.FMT_NAMES.items():
        assert getattr(lib, "RNE_FMT_" + name.upper()) == code
    qvec = (ROOT / "csrc" / "qvec.h").read_text()
    assert re.search(rf"#define RNE__Q_SLOTS {spec.Q_SLOTS}\b", qvec), "csrc/qvec.h RNE__Q_SLOTS"
