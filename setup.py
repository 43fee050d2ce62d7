"""Build agner: compile every core/*.pyx with Cython and map the fixed top-level
folders onto the ``agner`` namespace.

    bindings/ -> agner         core/ -> agner.core     sim/ -> agner.sim
    adapters/ -> agner.adapters                        crm/ -> agner.crm

Set ``AGNER_TRACE=1`` to compile with line tracing (for coverage of the .pyx
code); it makes the core several times slower, so never benchmark such a build.
"""

from __future__ import annotations

import glob
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

try:
    from Cython.Build import cythonize
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit(
        "agner: Cython 3 is needed to build the routing core.\n"
        "  pip install 'Cython==3.3.1'   (pip install . does this by itself, "
        "through pyproject.toml's build requirements)"
    )

HERE = os.path.dirname(os.path.abspath(__file__))
TRACE = os.environ.get("AGNER_TRACE", "") not in ("", "0")

PACKAGE_DIRS = {
    "agner": "bindings",
    "agner.core": "core",
    "agner.sim": "sim",
    "agner.adapters": "adapters",
    "agner.crm": "crm",
}


def packages() -> list[str]:
    """Every folder with an __init__.py below the mapped roots, as a dotted name."""
    found = []
    for name, root in PACKAGE_DIRS.items():
        for dirpath, _dirs, files in os.walk(os.path.join(HERE, root)):
            if "__init__.py" not in files:
                continue
            rel = os.path.relpath(dirpath, os.path.join(HERE, root))
            found.append(name if rel == "." else name + "." + rel.replace(os.sep, "."))
    return sorted(found)


class BuildExt(build_ext):
    """Turn a missing C compiler into one clear sentence instead of a traceback."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # distutils raises several unrelated types here
            if "CompileError" in type(exc).__name__ or "PlatformError" in type(exc).__name__:
                sys.exit(
                    "agner: compiling the routing core failed. A C compiler and the "
                    "Python headers are needed (Debian: apt-get install build-essential "
                    f"python3-dev).\n  cause: {exc}"
                )
            raise


def cython_include_dir() -> str:
    """A folder in which core/ is reachable as agner/core, for cimport.

    The .pxd files cimport each other as ``agner.core.X`` (the installed name,
    which is also what the generated code imports at run time), but the source
    folder is called core/: this shim bridges the two without copying.
    """
    shim = os.path.join(HERE, "build", "cython-shim")
    pkg = os.path.join(shim, "agner")
    os.makedirs(pkg, exist_ok=True)
    init = os.path.join(pkg, "__init__.py")
    if not os.path.exists(init):
        open(init, "w").close()
    link = os.path.join(pkg, "core")
    if not os.path.islink(link):
        os.symlink(os.path.join(HERE, "core"), link)
    return shim


# -O3, and room for gcc to inline the core's small cdef methods into their loops
# (a pool push called once per pool membership costs a third more as a call).
OPTIMIZE = [
    "-O3",
    "--param=max-inline-insns-single=2000",
    "--param=max-inline-insns-auto=200",
    "--param=inline-unit-growth=400",
]


def extensions() -> list:
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    directives = {
        "language_level": 3,
        "boundscheck": False,
        "wraparound": False,
        "initializedcheck": False,
        "cdivision": True,
        "embedsignature": True,
    }
    if TRACE:
        macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
        directives["linetrace"] = True
    from setuptools import Extension

    exts = []
    for path in sorted(glob.glob(os.path.join("core", "*.pyx"))):
        mod = os.path.splitext(os.path.basename(path))[0]
        exts.append(
            Extension(
                f"agner.core.{mod}",
                [path],
                define_macros=macros,
                extra_compile_args=OPTIMIZE if not TRACE else ["-O0"],
            )
        )
    return cythonize(
        exts,
        compiler_directives=directives,
        include_path=[cython_include_dir()],
        annotate=os.environ.get("AGNER_ANNOTATE", "") not in ("", "0"),
    )


setup(
    packages=packages(),
    package_dir=PACKAGE_DIRS,
    package_data={
        "agner.core": ["*.pxd", "*.pyi", "py.typed"],
        # the browser pages that agner serve sends (/desktop, /wallboard)
        "agner": ["py.typed", "web/*.html", "web/*.js", "web/*.css"],
        # the Kamailio configuration and sipp scenarios the SIP adapter ships with
        "agner.adapters": ["kamailio.cfg", "sipp/*.xml"],
    },
    ext_modules=extensions(),
    cmdclass={"build_ext": BuildExt},
    zip_safe=False,
)
