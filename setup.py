"""The C library is built once per tier (rnnedge/_build.py: on x86-64 a baseline and AVX2,
AVX-512 and AVX-512 VNNI builds; one build elsewhere or with RNNEDGE_CFLAGS), each a cffi module
of its own; rnnedge/_clib.py loads the widest the CPU runs. The modules compile in parallel."""

import copy
import os
import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext


class ParallelBuildExt(build_ext):
    """build_ext compiling the tiers' modules at once, one per core (as `build_ext -j N`), unless
    given its own -j; each module's objects in a directory of its own (the tiers compile the same
    csrc/*.c with different flags: in one directory each would overwrite the others' objects)."""

    def finalize_options(self) -> None:
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1
        super().finalize_options()

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        own = copy.copy(self)  # not self.build_temp = ...: the modules build in parallel threads
        own.build_temp = os.path.join(self.build_temp, ext.name)
        super(ParallelBuildExt, own).build_extension(ext)


_BUILD = Path(__file__).resolve().parent / "rnnedge" / "_build.py"
setup(
    cffi_modules=[f"rnnedge/_build.py:{name}" for name in runpy.run_path(str(_BUILD))["BUILDERS"]],
    cmdclass={"build_ext": ParallelBuildExt},
)
