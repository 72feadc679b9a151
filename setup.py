"""Build steps that pyproject.toml cannot express: the cffi wire module and the preload shim.

``pip install -e .`` (or a plain install) runs ``build_ext``, which compiles the cffi module
``libcfake._wire`` from ``shim/libcfake_wire.h`` and then the shim itself with the machine's gcc,
putting ``libcfake_preload.so`` and the seccomp launcher ``libcfake-launch`` beside the
package's other binaries.
"""

import importlib.util
import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def _load_shim_build():
    spec = importlib.util.spec_from_file_location("shim_build", HERE / "shim" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class build_ext_with_shim(build_ext):
    """Build the extensions, then the preload shim into the same package directory."""

    def run(self):
        super().run()
        package_dir = Path(os.path.dirname(self.get_ext_fullpath("libcfake._wire")))
        shim_build = _load_shim_build()
        shim_build.build(package_dir / "libcfake_preload.so")
        shim_build.build_launcher(package_dir / "libcfake-launch")


setup(
    cffi_modules=["libcfake/_wire_build.py:ffibuilder"],
    cmdclass={"build_ext": build_ext_with_shim},
)
