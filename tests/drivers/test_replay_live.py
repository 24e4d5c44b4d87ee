"""ubpkt replay --as-initiator: a conversation of inject against serve (in-process, 127.0.0.1,
captured by the UDP driver's tap) replayed against a fresh serve answers as captured; against a
serve whose region wants a token, the differences name the TAACK status."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest

from ubpkt.drivers.inject import InjectConfig, run_inject
from ubpkt.drivers.replay_live import LiveConfig, run_live
from ubpkt.drivers.rewrite import RewriteSpec
from ubpkt.drivers.serve import ServeConfig, Server

LO = "127.0.0.1"


@contextmanager
def serving(**kw):
    srv = Server(ServeConfig(bind=(LO, 0), **kw))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.stop()
        t.join(5)


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    path = tmp_path_factory.mktemp("conv") / "conv.pcap"
    with serving(regions=["mem:1MiB"]) as srv:
        # one request at a time: the capture is a strict request/answer sequence
        r = run_inject(InjectConfig(peer=srv.local, pcap=str(path), outstanding=1,
                                    workload="write:1KiB*2,read:2KiB,atomic:cas,send:1KiB",
                                    timeout_s=10))
    assert r["all_completed"], r["outcome"]
    return path


def test_replay_against_a_fresh_serve_answers_as_captured(conversation):
    with serving(regions=["mem:1MiB"]) as srv:
        rep = run_live(LiveConfig(pcap=str(conversation), peer=srv.local, timeout_s=3))
    assert rep["requests"] == 5
    assert rep["answered"] == rep["requests"] - rep["no_answer_expected"] == 5
    assert rep["differences"] == [] and rep["unanswered"] == [] and rep["unexpected"] == []
    assert rep["received"] == rep["expected_answers"] == 10   # 5 TPACKs, 5 TA responses
    # the read and atomic responses were acknowledged by generated TPACKs, the captured
    # acknowledgements not replayed
    assert rep["tpacks_generated"] == 5 and rep["captured_tpacks_not_replayed"] == 5
    assert rep["initiator"].startswith("127.0.0.1:")


def test_a_token_on_the_region_shows_in_the_taack_status(conversation):
    with serving(regions=["mem:1MiB:0x1234"]) as srv:
        rep = run_live(LiveConfig(pcap=str(conversation), peer=srv.local, timeout_s=1))
    fields = {d["field"] for d in rep["differences"]}
    assert "ub.atah.rspst" in fields
    d = next(d for d in rep["differences"] if d["field"] == "ub.atah.rspst")
    assert d["expected"] == 0 and d["got"] != 0 and d["expected_name"] == "Success"
    assert "TAACK" in d["packet"] or "response" in d["packet"]


def test_tpn_and_psn_rewritten_to_the_peer_configuration(conversation):
    # serve on other TPNs and PSNs: the replay maps the capture onto them
    with serving(regions=["mem:1MiB"], local_tpn=0x40, peer_tpn=0x50, tx_psn=7,
                 rx_psn=1000) as srv:
        bad = run_live(LiveConfig(pcap=str(conversation), peer=srv.local, timeout_s=0.3))
        good = run_live(LiveConfig(
            pcap=str(conversation), peer=srv.local, timeout_s=3,
            rewrite=RewriteSpec(tpnmap={0x10: 0x50, 0x20: 0x40}, psn_rebase=1000)))
    assert bad["answered"] == 0 and bad["unanswered"]
    # the answers' PSNs are serve's own (tx 7): only they differ from the capture
    assert good["answered"] == 5 and not good["unanswered"] and not good["unexpected"]
    assert {d["field"] for d in good["differences"]} <= {"ub.rtph.psn"}


def test_side_and_errors(conversation, tmp_path):
    with pytest.raises(ValueError, match="no initiator"):
        run_live(LiveConfig(pcap=str(conversation), peer=(LO, 9), side="10.9.9.9"))
    env = dict(os.environ)
    p = subprocess.run([sys.executable, "-m", "ubpkt_cli", "replay", str(conversation),
                        "--as-initiator", "--to", "127.0.0.1:9", "--side", "10.9.9.9"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 1 and "no initiator" in p.stderr and "Traceback" not in p.stderr


def test_cli_as_initiator_report(conversation, tmp_path):
    rpt = tmp_path / "live.json"
    with serving(regions=["mem:1MiB"]) as srv:
        p = subprocess.run([sys.executable, "-m", "ubpkt_cli", "replay", str(conversation),
                            "--as-initiator", "--to", f"{LO}:{srv.local[1]}", "--report",
                            str(rpt)], capture_output=True, text=True, env=dict(os.environ),
                           timeout=60)
    assert p.returncode == 0, p.stderr
    rep = json.loads(rpt.read_text())
    assert rep["schema"] == "ubpkt.replay-initiator/1"
    assert rep["answered"] == 5 and rep["differences"] == []
