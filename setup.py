"""Builds the pybind11 index helper at install time (`pip install -e .`), never with `make` at run time."""

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

index_helpers = Pybind11Extension(
    "ernie1.data._index_helpers",
    ["ernie1/data/helpers.cpp"],
    cxx_std=17,
    extra_compile_args=["-O3"],
)

setup(ext_modules=[index_helpers], cmdclass={"build_ext": build_ext})
