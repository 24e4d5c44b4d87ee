"""Issue 12 item 6: crafted UB packets open as UB (flow-entropy UDP source port, the Lua plugin
ahead of a well-known source port), summaries show opcode and PSN/TASSN, misspelt enum names are
clear errors, ``ls()`` lists enum names."""
import io
import shutil
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

import ubpkt.scapy as us
from ubpkt.dissect import decode
from ubpkt.scapy.layers import FLOW_SPORT_BASE, FLOW_SPORT_BITS, flow_source_port

ROOT = Path(__file__).resolve().parents[2]


def _pkt(sport=None, srctpn=3, dsttpn=9):
    udp = UDP() if sport is None else UDP(sport=sport)
    return (Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / udp
            / us.UBRtph(psn=5, srctpn=srctpn, dsttpn=dsttpn)
            / us.UBBtah(taopcode="Write", ini_tassn=17))


def test_default_source_port_is_flow_entropy():
    p = _pkt()
    sport = p[UDP].sport
    assert FLOW_SPORT_BASE <= sport < FLOW_SPORT_BASE + (1 << FLOW_SPORT_BITS)
    assert p[UDP].dport == 4792 and sport == flow_source_port(p[us.UBRtph])
    assert _pkt()[UDP].sport == sport                      # one TP channel, one port
    ports = {_pkt(srctpn=t)[UDP].sport for t in range(64)}
    assert len(ports) > 50                                  # channels spread over ports
    rec = decode(bytes(p), 1)
    assert rec["fields"]["udp.srcport"] == sport and "ub.btah" in rec["layers"]
    assert _pkt(sport=53)[UDP].sport == 53                  # an explicit port is kept
    assert Ether(bytes(p))[UDP].sport == sport              # and dissected back as built


def test_summary_shows_opcode_and_sequence_numbers():
    s = _pkt().summary()
    assert "UBRtph RTP_Data psn=5" in s and "UBBtah Write tassn=17" in s
    assert "psn=5" in Ether(bytes(_pkt())).summary()


def test_misspelt_enum_is_a_clear_error():
    with pytest.raises(ValueError, match=r"taopcode: unknown value 'Wirte'; did you mean 'Write'"):
        us.UBBtah(taopcode="Wirte")
    assert us.UBBtah(taopcode="write").taopcode == 3        # case does not matter
    assert us.UBBtah(taopcode=3).taopcode == 3


def test_ls_lists_enum_values():
    out = io.StringIO()
    with redirect_stdout(out):
        us.ls(us.UBBtah)
    text = out.getvalue()
    assert "taopcode" in text and "Write: 3" in text and "Atomic_fetch_add: 11" in text
    out = io.StringIO()
    with redirect_stdout(out):
        us.ls(UDP)                                          # other layers: scapy's ls
    assert "sport" in out.getvalue()


def test_lua_plugin_takes_port_4792_ahead_of_source_port_53(tmp_path):
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed")
    from scapy.layers.dns import DNS, DNSQR
    pcap = tmp_path / "s53.pcap"
    wrpcap(str(pcap), [_pkt(sport=53),
                       Ether() / IP() / UDP(sport=1234, dport=53) / DNS(qd=DNSQR(qname="a.b")),
                       Ether() / IP() / UDP(sport=53, dport=1234) / DNS(qr=1,
                                                                        qd=DNSQR(qname="a.b"))])
    r = subprocess.run([tshark, "-n", "-X", f"lua_script:{ROOT / 'dissectors' / 'ub.lua'}",
                        "-r", str(pcap), "-T", "fields", "-e", "ub.rtph.psn",
                        "-e", "ub.btah.taopcode", "-e", "dns.qry.name"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert rows[0][:2] == ["5", "3"] and rows[0][2] == ""    # UB, not DNS
    assert rows[1] == ["", "", "a.b"] and rows[2] == ["", "", "a.b"]   # DNS is still DNS
