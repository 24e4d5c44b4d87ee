"""Captures as a columnar dataset (issue 15): Parquet files that DuckDB, Spark and Dask read.

* :mod:`.schema`: the table's columns, generated from the header declarations
  (``ubpkt.formats``) and the derived record keys (``ubpkt.formats.derived``): one column per
  record key, typed from its declared width; the column -> field map goes into the file
  metadata.
* :mod:`.rows`: record dicts -> Arrow record batches (the record path) and back (:func:`.rows.
  table_records`, for tests and comparisons).
* :mod:`.columnar`: the columnar fast path: frames grouped by layout template, their fields
  cut with numpy over the whole batch.
* :mod:`.export`: :func:`.export.export_capture` and :func:`.export.plan_segments`, the pure
  functions ``ubpkt export`` and the distributed export run.
* :mod:`.units`: an export cut into units (a capture or a segment each), run the same way by
  one process, ``-j N``, a Dask cluster (:mod:`.cluster`, ``--cluster``) or Spark
  (:mod:`.spark_export`, a ``spark-submit`` entry point).

pyarrow is an optional dependency (``pip install 'ubpkt[analytics]'``); :func:`require` names
the extra when it is missing.  docs/analytics.md is the user's guide.
"""
from __future__ import annotations

import importlib

__all__ = ["MissingDependency", "require"]

#: module -> the extra that installs it
EXTRAS = {"pyarrow": "analytics", "duckdb": "analytics", "dask": "cluster",
          "distributed": "cluster", "pyspark": "spark"}


class MissingDependency(ImportError):
    """An optional dependency is not installed; the message says which extra installs it."""


def require(module: str, command: str = "ubpkt export"):
    """Import ``module`` or raise :class:`MissingDependency` with the one-line message the CLI
    prints (``ubpkt export needs pyarrow: pip install 'ubpkt[analytics]'``)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = EXTRAS.get(top, "analytics")
        raise MissingDependency(f"{command} needs {top}: pip install 'ubpkt[{extra}]'") from exc
