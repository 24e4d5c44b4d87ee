"""`ubpkt shell -c`: the scapy session with the UB layers, run non-interactively."""
from __future__ import annotations

from click.testing import CliRunner

from ubpkt_cli.main import main


def test_shell_expression():
    r = CliRunner().invoke(main, ["shell", "-c",
                                  "raw(Ether()/IP()/UDP()/UBRtph()/UBAtah(taopcode='TAACK'))"
                                  "[36:38].hex()"])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == "'12b8'"        # UDP destination port 4792


def test_shell_statements_and_profile():
    code = ("p = UBLph(raw(UBLph()/UBCna16()/UBCtph()/UBBtah(taopcode='Write')/UBMaetah()))\n"
            "print(p[UBBtah].sprintf('%taopcode%'), dissect(raw(p)).fields['ub.icrc.status'])")
    r = CliRunner().invoke(main, ["shell", "-c", code])
    assert r.exit_code == 0, r.output
    assert r.output.split() == ["Write", "good"]
    from ubpkt.profile import SPEC
    from ubpkt.scapy import set_profile
    try:
        r = CliRunner().invoke(main, ["shell", "--profile", "ns3", "-c", "get_profile().name"])
        assert r.exit_code == 0 and r.output.strip() == "'ns3'"
    finally:
        set_profile(SPEC)
