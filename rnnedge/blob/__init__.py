"""The .rne blob, by job (docs/format.md): `spec` (codes and records mirrored from
csrc/rnnedge.h), `meta` (the metadata schema), `write` (IR -> bytes), `check` and `read`
(bytes -> checked records -> IR), `show` (the `rnnedge info` table)."""
