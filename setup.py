from setuptools import setup

setup(cffi_modules=["rnnedge/_build.py:ffibuilder"])
