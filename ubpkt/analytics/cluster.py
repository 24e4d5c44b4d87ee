"""The distributed export on Dask (issue 15): ``ubpkt export --cluster dask://HOST:PORT`` or
``--cluster local:N``.

The export is cut into *units*, one per capture or per record-aligned segment of a large one
(:func:`ubpkt.analytics.export.plan_segments`, the same cut the single-process run makes), and
every unit is one task, :func:`ubpkt.analytics.units.export_unit`, on some worker.  A unit writes its own Parquet file
(names from the capture and segment number, never from the worker), so the dataset a cluster
writes is the one a single process writes: same files, same rows.  The results are gathered in
unit order into the report the single-process run prints.

* ``local:N`` starts a Dask ``LocalCluster`` of N worker processes (one thread each: the
  decoder holds the GIL) listening on 127.0.0.1 only, without the dashboard, and closes it on
  exit, on error and on Ctrl-C.
* ``dask://HOST:PORT`` connects to a running scheduler (``dask scheduler``); only the client is
  closed on exit, the cluster is the user's.  Its workers must see the captures and the dataset
  directory at the same absolute paths (a shared file system): the units carry absolute paths.
  The connect timeout is Dask's setting ``distributed.comm.timeouts.connect``
  (``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s``).

Any task failure (an exception in the export, a worker that died:  Dask's ``KilledWorker``
after ``distributed.scheduler.allowed-failures`` retries) becomes one :class:`ClusterFailure`
naming the unit; the other tasks are cancelled.

dask is optional (``pip install 'ubpkt[cluster]'``); :func:`ubpkt.analytics.require` names the
extra.  The units (:mod:`.units`) need no dask: the single process, the process pool of
``ubpkt export -j`` and the Spark entry point (:mod:`.spark_export`) run the same ones.
"""
from __future__ import annotations

import contextlib
import os
import re
import uuid
from dataclasses import dataclass

from . import require
from .units import export_unit

__all__ = ["ClusterSpec", "ClusterFailure", "parse_cluster", "open_client", "run_units",
           "absolute_units", "unit_label", "LOCAL_HOST", "LOCAL_QUIET"]

#: The interface a ``local:N`` cluster's scheduler and workers listen on.
LOCAL_HOST = "127.0.0.1"
#: A local cluster serves no dashboard; the scheduler's HTTP routes (health, metrics) listen
#: on 127.0.0.1 at a free port; its logs below CRITICAL are not printed (stderr is the user's).
LOCAL_QUIET = dict(dashboard_address=f"{LOCAL_HOST}:0", scheduler_kwargs={"dashboard": False},
                   silence_logs=50)
#: Default port of a ``dask://HOST`` address without one (Dask's scheduler default).
DEFAULT_SCHEDULER_PORT = 8786


class ClusterFailure(RuntimeError):
    """A unit could not be exported on the cluster (or the cluster could not be reached); the
    message is one line."""


@dataclass(frozen=True)
class ClusterSpec:
    """Where the export runs: ``kind`` "local" (``workers`` processes started here) or "dask"
    (the scheduler at ``address``, ``tcp://HOST:PORT``)."""
    kind: str
    workers: int = 0
    address: str = ""

    def describe(self) -> dict:
        """The ``cluster`` entry of the export report."""
        if self.kind == "local":
            return {"kind": "local", "workers": self.workers}
        return {"kind": "dask", "scheduler": self.address}


def parse_cluster(text: str) -> ClusterSpec:
    """``local:N`` (N >= 1; ``local`` alone: one worker per CPU) or ``dask://HOST[:PORT]``;
    ValueError with a one-line message otherwise."""
    t = text.strip()
    if t == "local" or t.startswith("local:"):
        n = t[6:] if t != "local" else str(os.cpu_count() or 1)
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--cluster {text!r}: local:N needs a worker count N >= 1")
        return ClusterSpec("local", workers=int(n))
    m = re.fullmatch(r"(?:dask|tcp)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?/?", t)
    if not m:
        raise ValueError(f"--cluster {text!r}: use dask://HOST:PORT or local:N")
    port = int(m.group(2)) if m.group(2) else DEFAULT_SCHEDULER_PORT
    if not 0 < port < 65536:
        raise ValueError(f"--cluster {text!r}: bad port {port}")
    return ClusterSpec("dask", address=f"tcp://{m.group(1)}:{port}")


def unit_label(unit) -> str:
    """``capture`` or ``capture segment i/n``: how messages name a unit."""
    path, seg = unit[0], unit[1]
    name = os.path.basename(str(path))
    return name if seg is None else f"{name} segment {seg.index + 1}/{seg.count}"


def absolute_units(units) -> tuple:
    """``(units with absolute capture and dataset paths, the function mapping a result back to
    the paths as given)``: workers may run in another directory, the report keeps the user's
    paths."""
    out, back = [], {}
    for path, seg, kw in units:
        kw = dict(kw)
        given_out = kw["out_dir"]
        kw["out_dir"] = os.path.abspath(given_out)
        apath = os.path.abspath(path)
        back[apath] = path
        back[kw["out_dir"]] = given_out
        out.append((apath, seg, kw))

    def restore(result):
        apath, seg, paths, rows, damage = result
        fixed = []
        for p in paths:
            for a, g in back.items():
                if a != apath and p.startswith(a + os.sep):
                    p = os.path.join(g, os.path.relpath(p, a))
                    break
            fixed.append(p)
        return back.get(apath, apath), seg, fixed, rows, damage
    return out, restore


@contextlib.contextmanager
def open_client(spec: ClusterSpec):
    """A ``distributed.Client`` for ``spec``; a ``local:N`` cluster is started here and closed
    (with its worker processes) when the block ends, however it ends."""
    require("dask.distributed")
    from distributed import Client, LocalCluster
    cluster = client = None
    try:
        if spec.kind == "local":
            cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=1,
                                   processes=True, host=LOCAL_HOST, **LOCAL_QUIET)
            client = Client(cluster)
        else:
            try:
                client = Client(spec.address)
            except (OSError, TimeoutError) as exc:
                raise ClusterFailure(f"cannot reach the Dask scheduler at {spec.address}: "
                                     f"{_one_line(exc)}") from None
        yield client
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def run_units(client, units, work=export_unit) -> list:
    """Run ``work`` on every unit on the cluster behind ``client``; the results in unit order.
    The first failure cancels the other tasks and raises :class:`ClusterFailure`; Ctrl-C
    cancels them too (and propagates)."""
    from distributed import as_completed
    run = uuid.uuid4().hex[:12]        # fresh keys: a second run never reuses old results
    futures = [client.submit(work, u, pure=False, key=f"ubpkt-export-{_key(u)}-{run}-{i}")
               for i, u in enumerate(units)]
    index = {f.key: i for i, f in enumerate(futures)}
    results: list = [None] * len(units)
    try:
        for fut in as_completed(futures):
            i = index[fut.key]
            if fut.status != "finished":
                exc = fut.exception()
                raise ClusterFailure(f"the cluster failed exporting {unit_label(units[i])}: "
                                     f"{_one_line(exc)}")
            results[i] = fut.result()
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(futures)
        raise
    return results


def _key(unit) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(str(unit[0])))
    return name if unit[1] is None else f"{name}.s{unit[1].index:04d}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    name = type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"
