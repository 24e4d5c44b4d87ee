"""The simulator's DLL link mode: native packets through a DLL engine pair over flit wires with
bit errors (``loopback --link dll``), and the flit wire's error process."""
import json

import pytest
from click.testing import CliRunner

from ubpkt.link import fill_plength
from ubpkt.profile import SPEC
from ubpkt.sim.dll_link import DllLinkPair
from ubpkt.sim.flitwire import FlitWire
from ubpkt.sim.loopback import LoopbackConfig, run_loopback


@pytest.mark.parametrize("transport", ["ctp", "rtp"])
def test_loopback_over_the_dll_with_bit_errors(transport):
    """The quality bar of issue 10: flit errors on the wire, link retries, data verified - and
    the link recovered everything itself (no transport retransmission was needed)."""
    r = run_loopback(LoopbackConfig(transport=transport, count=24, size=4096, link="dll",
                                    ber=1e-6, seed=2))
    link = r["link"]
    assert r["data_verified"] and r["completions"] == {"success": 24}
    assert link["mode"] == "dll" and link["flit_errors"] >= 1 and link["retries"] >= 1
    assert link["crc_errors"] >= 1 and link["replayed_flits"] > 0
    assert r["transport"]["retransmissions"] == 0
    assert not [e for e in link["errors"] if e["severity"] == "error"]
    states = [(e["node"], e["state"]) for e in link["timeline"] if e["machine"] == "DLL"]
    assert ("A", "DLL_Normal") in states and ("B", "DLL_Normal") in states
    req = [e for e in link["timeline"] if e["machine"] == "RETRY_REQ_SM"
           and e["state"] == "REQ" and e["t_ns"] > 0]
    assert req                            # each retry went through REQ (and back to NORMAL)


def test_loopback_dll_without_errors_and_non_crc_mode():
    clean = run_loopback(LoopbackConfig(transport="ctp", count=8, size=2048, link="dll"))
    assert clean["data_verified"] and clean["link"]["retries"] == 0
    assert clean["link"]["flit_errors"] == 0 and clean["link"]["flits"] > 8 * 2048 // 20
    # non-CRC mode: no BCRC, the damaged flits are reported as FEC failures and drive retry
    nc = run_loopback(LoopbackConfig(transport="ctp", count=24, size=4096, link="dll",
                                     ber=2e-6, crc_mode=False, seed=4))
    assert nc["data_verified"] and not nc["link"]["crc_mode"]
    assert nc["link"]["fec_errors"] >= 1 and nc["link"]["retries"] >= 1
    assert nc["link"]["crc_errors"] == 0


def test_ideal_link_refuses_dll_options():
    with pytest.raises(ValueError):
        run_loopback(LoopbackConfig(count=1, ber=1e-6))


def test_cli_loopback_link_dll(tmp_path):
    from ubpkt_cli.main import main
    out = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["loopback", "--link", "dll", "--transport", "rtp",
                                    "--ber", "1e-6", "--count", "24", "--seed", "2", "-q",
                                    "--report", str(out)])
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    assert r["data_verified"] and r["link"]["retries"] >= 1
    bad = CliRunner().invoke(main, ["loopback", "--ber", "1e-6", "-q"])
    assert bad.exit_code == 2 and "--link dll" in bad.output


def test_pair_delivers_in_order_and_backlogs_until_up():
    pair = DllLinkPair(SPEC, delay_ns=200, ber=5e-6, seed=7)
    pkts = [fill_plength(bytes((0, 6, 0, 0)) + bytes([i]) * (40 + 97 * i)) for i in range(40)]
    for p in pkts:                       # offered at t=0: the link is not up yet
        assert pair.ab.push(p, 0)
    got, t = [], 0
    while len(got) < len(pkts) and t < 10**7:
        t = pair.ab.next_deadline()
        assert t is not None
        got += pair.ab.pop(t)
    assert got == pkts
    r = pair.report()
    assert r["flit_errors"] >= 1 and r["retries"] >= 1
    # quiet once everything is delivered and acknowledged: no slot grid left to run
    pair.advance(t + 10**6)
    assert pair.ab.next_deadline() is None or pair.ab.next_deadline() > t + 10**6


def test_flit_wire_error_rate_and_seed():
    w = FlitWire(1e-3, seed=1)
    data = bytes(20 * 5000)
    w.put(data, 0)
    [(got, fec)] = w.take(0)
    flipped = sum(bin(a ^ b).count("1") for a, b in zip(got, data))
    assert flipped == w.stats["bit_errors"]
    assert 0.8e-3 * 800_000 < flipped < 1.2e-3 * 800_000     # 800 expected, sigma ~28
    assert fec is True                    # CRC mode: the wire does not flag damaged flits
    w2 = FlitWire(1e-3, seed=1, fec_flags=True)
    w2.put(data, 5)
    assert w2.take(4) == []
    [(got2, fec2)] = w2.take(5)
    assert got2 == got                    # same seed, same errors
    bad = [i for i in range(5000) if got[20 * i:20 * i + 20] != data[20 * i:20 * i + 20]]
    assert [i for i, ok in enumerate(fec2) if not ok] == bad
    assert FlitWire(0).stats["bit_errors"] == 0
