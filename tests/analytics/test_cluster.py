"""`ubpkt export --cluster` (issue 15): on a Dask LocalCluster (127.0.0.1 only) the export
writes the dataset the single-process run writes (same files, same tables), read back with
DuckDB, pyarrow and dask.dataframe; failures are one line, exit 1; Ctrl-C closes the workers."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pq = pytest.importorskip("pyarrow.parquet")
distributed = pytest.importorskip(
    "distributed", reason="dask distributed not installed (pip install 'ubpkt[cluster]')")

from ubpkt.analytics.cluster import (LOCAL_QUIET, ClusterFailure, ClusterSpec,  # noqa: E402
                                     open_client, parse_cluster, run_units)
from ubpkt.analytics.export import plan_segments  # noqa: E402
from ubpkt.analytics.traffic import write_varied  # noqa: E402

from .dataset_checks import assert_same_dataset, checksums, comparable  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "ubpkt_cli", "export"]


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    d = tmp_path_factory.mktemp("caps")
    write_varied(d / "varied.pcap", 3000)
    return sorted(str(p) for p in (ROOT / "captures").glob("*.pcap")) + [str(d / "varied.pcap")]


def _export(args, cwd):
    r = subprocess.run(CLI + args, capture_output=True, text=True, cwd=cwd, env=dict(os.environ))
    return r


def test_parse_cluster():
    assert parse_cluster("local:3") == ClusterSpec("local", workers=3)
    assert parse_cluster("local").workers >= 1
    assert parse_cluster("dask://127.0.0.1:8786") == \
        ClusterSpec("dask", address="tcp://127.0.0.1:8786")
    assert parse_cluster("dask://127.0.0.1").address == "tcp://127.0.0.1:8786"
    assert parse_cluster("tcp://[::1]:9000").address == "tcp://[::1]:9000"
    for bad in ("local:0", "local:x", "spark://h:1", "dask://", "dask://h:70000", "127.0.0.1"):
        with pytest.raises(ValueError):
            parse_cluster(bad)


def test_local_cluster_writes_the_single_process_dataset(tmp_path, captures):
    args = [*captures, "--partition-by", "date", "--segment-size", "100k"]
    one = _export([*args, "-o", "single"], tmp_path)
    assert one.returncode == 0, one.stderr
    many = _export([*args, "-o", "cluster", "--cluster", "local:2", "--report", "r.json"],
                   tmp_path)
    assert many.returncode == 0, many.stderr
    assert "Traceback" not in many.stderr
    r1, r2 = json.loads(one.stdout), json.loads(many.stdout)
    assert r2 == json.loads((tmp_path / "r.json").read_text())
    assert r2["cluster"] == {"kind": "local", "workers": 2}
    # the same report, paths as given (relative), files per capture in segment order
    assert comparable(r1) == {**comparable(r2), "dataset": "single", "captures": [
        {**c, "files": [f.replace("cluster/", "single/", 1) for f in c["files"]]}
        for c in r2["captures"]]}
    varied = next(c for c in r2["captures"] if c["capture"].endswith("varied.pcap"))
    assert len(varied["files"]) == len(plan_segments(captures[-1], -(-os.path.getsize(
        captures[-1]) // 102400))) > 1
    assert_same_dataset(tmp_path / "single", tmp_path / "cluster")
    sums = checksums(tmp_path / "cluster")
    assert sums["duckdb"][0] == r1["rows"] > 3000     # test_export: the decoder's rows
    assert sums["duckdb"] == sums["pyarrow"] == sums["dask"] == \
        checksums(tmp_path / "single")["duckdb"]


@pytest.fixture(scope="module")
def scheduler():
    """A LocalCluster of this test process on 127.0.0.1 (a scheduler ``ubpkt export
    --cluster dask://`` connects to); failures are not retried, so a dead worker fails fast."""
    import dask
    from distributed import Client, LocalCluster
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                               scheduler_port=0, **LOCAL_QUIET)
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


def test_dask_scheduler_address(tmp_path, captures, scheduler):
    addr = scheduler.scheduler.address
    assert addr.startswith("tcp://127.0.0.1:")
    cut = tmp_path / "cut.pcap"                  # a damaged capture: its last record cut
    data = Path(captures[-1]).read_bytes()
    cut.write_bytes(data[:len(data) - 50])
    args = [captures[0], captures[-1], str(cut), "--segment-size", "150k"]
    one = _export([*args, "-o", str(tmp_path / "single")], tmp_path)
    many = _export([*args, "-o", str(tmp_path / "cluster"), "--cluster",
                    "dask://" + addr[len("tcp://"):]], tmp_path)
    # damage is reported, not a cluster failure: exit 2 both ways, the same problems
    assert one.returncode == many.returncode == 2, many.stderr
    assert "cut.pcap: damaged capture" in many.stderr and "Traceback" not in many.stderr
    r1, r2 = json.loads(one.stdout), json.loads(many.stdout)
    assert r2["cluster"] == {"kind": "dask", "scheduler": addr}
    assert [c["problems"] for c in r1["captures"]] == [c["problems"] for c in r2["captures"]]
    assert r2["captures"][-1]["problems"]
    assert_same_dataset(tmp_path / "single", tmp_path / "cluster")
    # the user's cluster is left running: only the client was closed
    assert len(scheduler.scheduler_info()["workers"]) == 2


def test_worker_death_is_one_failure(tmp_path, captures, scheduler):
    def die(unit):                     # a local function: sent by value to the worker
        os._exit(3)

    units = [(captures[-1], None, {"out_dir": str(tmp_path)})]
    with pytest.raises(ClusterFailure) as exc:
        run_units(scheduler, units, work=die)
    msg = str(exc.value)
    assert "\n" not in msg and "varied.pcap" in msg and "KilledWorker" in msg
    # the cluster recovers (the nanny restarts the worker) and the next run works
    for _ in range(100):
        if len(scheduler.scheduler_info()["workers"]) == 2:
            break
        time.sleep(0.1)
    got = run_units(scheduler, units)
    assert got[0][:2] == (captures[-1], None) and got[0][3] == 3000
    assert got[0][2] == [str(tmp_path / "varied.pcap.parquet")]


def test_task_error_is_one_line_exit_1(tmp_path, captures):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = _export([captures[-1], "-o", str(blocker / "ds"), "--cluster", "local:1"], tmp_path)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: the cluster failed exporting varied.pcap: ")


def test_unreachable_scheduler(tmp_path, captures):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                          # nothing listens there now
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
    r = subprocess.run(CLI + [captures[0], "-o", str(tmp_path / "o"), "--cluster",
                              f"dask://127.0.0.1:{port}"], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(
        f"Error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")


def test_ctrl_c_closes_the_local_cluster(tmp_path):
    psutil = pytest.importorskip("psutil", reason="psutil not installed (to list the workers)")
    cap = tmp_path / "big.pcap"
    write_varied(cap, 15000)
    p = subprocess.Popen(CLI + [str(cap), "-o", str(tmp_path / "o"), "--segment-size", "100k",
                                "--cluster", "local:2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ))
    try:
        seen = []
        while not seen or "Dask workers" not in seen[-1]:
            seen.append(p.stderr.readline())
            assert seen[-1], "".join(seen)           # the CLI ended before starting the cluster
        workers = psutil.Process(p.pid).children(recursive=True)
        assert len(workers) >= 2
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive


def test_cli_arguments_and_missing_dask(tmp_path, captures):
    r = _export([captures[0], "-o", "o", "--cluster", "local:2", "-j", "2"], tmp_path)
    assert r.returncode == 2 and "exclude each other" in r.stderr
    r = _export([captures[0], "-o", "o", "--cluster", "yarn://x"], tmp_path)
    assert r.returncode == 2 and "dask://HOST:PORT or local:N" in r.stderr
    code = ("import sys; sys.modules['distributed'] = None\n"
            "from ubpkt_cli.main import main\n"
            f"main(['export', {captures[0]!r}, '-o', {str(tmp_path / 'x')!r}, "
            "'--cluster', 'local:2'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == \
        "Error: ubpkt export needs dask: pip install 'ubpkt[cluster]'"
    assert not (tmp_path / "x").exists()


def test_open_client_closes_its_local_cluster():
    import psutil                      # a dependency of distributed
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}      # other tests' clusters
    with open_client(ClusterSpec("local", workers=1)) as client:
        cluster = client.cluster
        addr = client.scheduler.address
        assert addr.startswith("tcp://127.0.0.1:")
        assert all(w.startswith("tcp://127.0.0.1:") for w in client.scheduler_info()["workers"])
        children = me.children(recursive=True)
        listening = {(c.laddr.ip, c.laddr.port) for p in [me] + children
                     for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        assert children and listening                   # scheduler, nanny, worker
        assert {ip for ip, _ in listening} == {"127.0.0.1"}
        # multiprocessing's resource tracker is no worker: it stays for this process's life
        workers = [p for p in children if p.pid not in before
                   and "resource_tracker" not in " ".join(p.cmdline())]
        assert workers
    assert cluster.status.name == "closed"
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive
