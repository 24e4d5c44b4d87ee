"""Start-up work deferred to first use (issue 14): the headers' generated codecs are compiled
when first used, and ``ubpkt decode`` of one frame loads neither numpy, rich, the PHY nor the
stack, and generates the codecs of the few headers it meets, not of all of them."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from ubpkt.formats.core import Field, Header

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "captures" / "uboe_transactions.pcap"
CODECS = ("unpack", "record_into", "pack_values")


def test_a_header_generates_its_codecs_on_first_use_once():
    h = Header("lazy_probe", "lazy_probe", "probe", "none",
               (Field("a", 4), Field("b", 12, enum={1: "one"}), Field("c", 16)))
    assert not any(name in vars(h) for name in CODECS)
    raw = h.encode(a=3, b=1, c=0xBEEF)
    assert raw == bytes.fromhex("3001beef")
    assert "pack_values" in vars(h) and "unpack" not in vars(h)
    assert h.unpack(raw) == (3, 1, 0xBEEF)
    first = h.unpack
    assert h.unpack is first                     # cached on the instance, generated once
    fields: dict = {}
    assert h.record_into(raw, 0, fields)[0] == (3, 1, 0xBEEF)
    assert fields["ub.lazy_probe.b_name"] == "one"


def test_one_frame_decode_loads_little(tmp_path):
    from ubpkt.capture import PcapWriter, open_capture
    with open_capture(SAMPLE) as cap:
        pkt = next(iter(cap))
        lt = cap.linktype
    one = tmp_path / "one.pcap"
    with PcapWriter(one, lt) as w:
        w.write(pkt.data, pkt.time_ns, pkt.orig_len)
    code = ("import json, runpy, sys\n"
            "sys.argv = ['ubpkt', 'decode', sys.argv[1]]\n"
            "try:\n"
            "    runpy.run_module('ubpkt_cli', run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            "from ubpkt.formats.core import HEADERS\n"
            "made = sum(1 for h in HEADERS.values() if 'record_into' in vars(h))\n"
            "mods = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'rich')\n"
            "              or m.startswith(('ubpkt.phy', 'ubpkt.stack', 'ubpkt.sim')))\n"
            "sys.stderr.write(json.dumps([made, len(HEADERS), mods]))\n")
    r = subprocess.run([sys.executable, "-c", code, str(one)], capture_output=True, text=True,
                       cwd=ROOT, check=True)
    made, total, mods = json.loads(r.stderr.strip().splitlines()[-1])
    assert r.stdout.count("\n") == 1 and r.stdout.split()[0] == "1" and "icrc=good" in r.stdout
    assert mods == []
    assert 0 < made < total // 4, (made, total)
