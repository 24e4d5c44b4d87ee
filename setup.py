"""Build hook for the one optional C extension (the metadata lives in pyproject.toml).

``ubpkt._linkc`` computes the data link's CRC30 over many blocks in one call, and serves the
exporter's columnar path (classic pcap records cut into arrays, a block's template probe and
guard in one call); it is optional: without a C compiler the build goes on and
``ubpkt.link.crc30`` uses ``anycrc`` or its pure-Python/numpy engines instead, the exporter its
per-frame loop (same values and rows, tested).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("ubpkt._linkc", ["ubpkt/_linkc.c"], optional=True,
                             extra_compile_args=["-O2"])])
