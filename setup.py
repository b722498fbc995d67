"""Build the compiled core, ``ringhash._core``, from ``ext/``.

Set RINGHASH_DEBUG=1 to build with bounds checks and wraparound on, for
debugging a kernel; release builds turn them off.
"""

import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("RINGHASH_DEBUG", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "cdivision": True,
    "embedsignature": True,
}

extra_compile_args = []
if os.name != "nt":
    # -g0: no debug info in release wheels (they would be several times larger).
    # -fvisibility=hidden: the module exports only PyInit__core (PyMODINIT_FUNC
    # marks it visible), so the C helpers cannot clash with another library's
    # symbols and calls between them need no PLT.
    # -ffp-contract=off: no fused multiply-adds, so rendezvous scores (rh_algos.c)
    # are the same on every machine and build.
    extra_compile_args = ["-O3", "-std=c99", "-fvisibility=hidden", "-ffp-contract=off"] + (
        ["-UNDEBUG", "-O0", "-g"] if debug else ["-g0"]
    )

extensions = [
    Extension(
        "ringhash._core",
        sources=[
            "ext/_core.pyx",
            "ext/rh_hash.c",
            "ext/rh_ring.c",
            "ext/rh_batch.c",
            "ext/rh_column.c",
            "ext/rh_algos.c",
        ],
        include_dirs=["ext", numpy.get_include()],
        # The StringDType C API (NpyString_*) is numpy 2's: the runtime floor is numpy 2.0.
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
            ("NPY_TARGET_VERSION", "NPY_2_0_API_VERSION"),
        ],
        depends=[
            "ext/rh_hash.h",
            "ext/rh_ring.h",
            "ext/rh_column.h",
            "ext/rh_algos.h",
            "ext/_columns.pxi",
            "ext/_algos.pxi",
        ],
        extra_compile_args=extra_compile_args,
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
