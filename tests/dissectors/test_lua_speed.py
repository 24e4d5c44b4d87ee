"""ub.lua's tree-less dissection (issue 13, speed) shows what the full one shows.

When nobody looks at ub's tree items (tshark without -V or -T fields and with no filter, tap or
column on a ub field; the first pass of -2) the plugin adds none and reads a header's values on
demand (``st.fast`` in ub_dispatch.lua).  What is still seen then must not change: the summary
lines (Protocol, Source/Destination, Info with ``[bad ICRC]``), the expert infos (``-z expert``)
and the analysis.  Each capture is read both ways: plainly (the tree-less path) and with the
filter ``ub || !ub``, which keeps every frame but references ub, so the full tree is built; the
outputs must be identical, in one pass and in two.  The premise is checked too: Wireshark reports
ub as not referenced in the plain run and referenced under the filter (``TreeItem:referenced``),
so the plain run does take the tree-less path.
"""
from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from test_lua import (LUA, cfg3_native, cfg6_mgmt, cfg7_tpack, cfg9_compact, dllcb_crd_ack,
                      dllcb_packets, more_native_packets, reserved_set, uboe_packets, uboe_vlan,
                      write)
from test_lua import tshark  # noqa: F401  (the fixture)
from ubpkt.encode import _ip_checksum   # (the encoder's IPv4 header checksum)

FULL = ("-Y", "ub || !ub")   # every frame, with ub referenced: the full tree

# a post-dissector that reports, for the first frame, whether ub is referenced (what the plugin
# asks to choose the tree-less path)
PROBE = r"""
local probe = Proto("ub_speed_probe", "probe")
local UB = Dissector.get("ub")
local done = false
function probe.dissector(tvb, pinfo, tree)
  if done then return end
  done = true
  io.stderr:write("ub referenced: " .. tostring(tree:referenced(UB)) .. "\n")
end
register_postdissector(probe)
"""


def _run(tshark: str, pcap: Path, *args: str, probe: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [tshark, "-n", "-X", f"lua_script:{LUA}"]
    if probe is not None:
        cmd += ["-X", f"lua_script:{probe}"]
    res = subprocess.run(cmd + ["-r", str(pcap), *args], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Lua" not in res.stderr, res.stderr
    return res


def _mutated(base: list[bytes], seed: int) -> list[bytes]:
    """Cut and byte-flipped copies of base (truncation, reserved values, bad CRCs: the expert
    paths)."""
    rnd = random.Random(seed)
    out = []
    for p in base:
        out += [p[:n] for n in sorted({rnd.randrange(1, len(p)) for _ in range(4)})]
        for _ in range(4):
            b = bytearray(p)
            for _ in range(rnd.randint(1, 3)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            out.append(bytes(b))
    return out


def _captures(tmp_path: Path, ns3: Path | None) -> list[Path]:
    native = ([cfg6_mgmt(), cfg6_mgmt(icrc_ok=False), cfg9_compact(), cfg9_compact(0x12, 32),
               cfg7_tpack(), cfg3_native(), dllcb_crd_ack(), reserved_set()]
              + more_native_packets() + dllcb_packets())
    caps = [write(tmp_path / "uboe.pcap", 1, uboe_packets() + [uboe_vlan()]),
            write(tmp_path / "native.pcap", 148, native),
            write(tmp_path / "mutated.pcap", 148, _mutated(native, 13)),
            write(tmp_path / "uboe_mutated.pcap", 1, _mutated(uboe_packets(), 14))]
    root = Path(__file__).resolve().parents[2] / "captures"
    caps += sorted(root.glob("*.pcap"))
    if ns3 is not None:
        caps += sorted(ns3.glob("*.pcap"))
    return caps


@pytest.fixture(scope="module")
def captures(tmp_path_factory, request):
    try:
        ns3 = request.getfixturevalue("ns3_dir")    # the ns-3-UB interop traces, when present
    except pytest.skip.Exception:
        ns3 = None
    return _captures(tmp_path_factory.mktemp("speed"), ns3)


def test_plain_run_takes_the_tree_less_path(tshark, tmp_path, captures):
    probe = tmp_path / "probe.lua"
    probe.write_text(PROBE, encoding="utf-8")
    plain = _run(tshark, captures[0], probe=probe)
    assert "ub referenced: false" in plain.stderr, plain.stderr
    full = _run(tshark, captures[0], *FULL, probe=probe)
    assert "ub referenced: true" in full.stderr, full.stderr


@pytest.mark.parametrize("passes", [(), ("-2",)], ids=["one pass", "two passes"])
def test_summary_lines_without_and_with_the_tree(tshark, captures, passes):
    for pcap in captures:
        plain = _run(tshark, pcap, *passes).stdout
        full = _run(tshark, pcap, *passes, *FULL).stdout
        assert plain.count("\n") > 0, pcap.name
        assert plain == full, f"{pcap.name}: the summary lines differ without the tree"


# One pass only: with -2 a filter also changes tshark's first pass (a tree, so Field extractors
# such as ip.src answer, which the PSN analysis keys on), and that differs before this change too.
def test_expert_infos_without_and_with_the_tree(tshark, captures):
    seen = 0
    for pcap in captures:
        plain = _run(tshark, pcap, "-q", "-z", "expert").stdout
        full = _run(tshark, pcap, "-q", "-z", "expert", *FULL).stdout
        assert plain == full, f"{pcap.name}: the expert infos differ without the tree"
        seen += plain.count(" UB ")
    assert seen > 20, "the captures raise too few UB expert infos to compare"


# ------------------------------------------------------------------------------------------------
# layout templates (ub_dispatch.lua, "layout templates"): without a tree, a layout read before is
# read again by a function made for it (guards on what the walk steered and checked on, the
# values the Info line, the analysis and the columns take).  Each check compares three runs of
# the same capture: tree-less with templates, tree-less without them (-o ub.templates:FALSE,
# the walk), and the full tree.

NO_TEMPLATES = ("-o", "ub.templates:FALSE")

# a post-dissector printing, after each frame, how many templates exist and how many frames
# they read (ub_dispatch.lua's ub_template_stats)
STATS_PROBE = r"""
local probe = Proto("ub_template_probe", "probe")
function probe.dissector(tvb, pinfo, tree)
  local made, used = ub_template_stats()
  io.stderr:write(string.format("templates %d used %d\n", made, used))
end
register_postdissector(probe)
"""


def _varied(kinds: list, rounds: int, linktype: int) -> list[bytes]:
    """rounds x the frame kinds of captures/make_captures.py, each frame its own PSN, TASSN,
    addresses and payload bytes (bench/bench_lua.py's vary: PSNs follow on per TP channel)."""
    import sys
    root = Path(__file__).resolve().parents[2]
    for sub in ("captures", "bench"):
        if str(root / sub) not in sys.path:
            sys.path.insert(0, str(root / sub))
    from bench_lua import vary   # noqa: E402
    from ubpkt.encode import encode_layers   # noqa: E402
    psns: dict = {}
    return [encode_layers(vary(kinds[i % len(kinds)], i, psns)) for i in range(rounds * len(kinds))]


def _template_captures(tmp_path: Path) -> list[Path]:
    """Varied frames (the templates' own traffic), then the same frames with one byte changed
    (same length: every guard is tried; PSN/TASSN bytes keep the template, others fail it, a
    payload byte fails the ICRC), then varied frames again, for UBoE and native UB."""
    import sys
    root = Path(__file__).resolve().parents[2]
    if str(root / "captures") not in sys.path:
        sys.path.insert(0, str(root / "captures"))
    from make_captures import native_packets, uboe_packets as uboe_kinds   # noqa: E402
    rnd = random.Random(21)
    out = []
    for name, linktype, kinds, first in (("uboe", 1, uboe_kinds(), 42), ("native", 148,
                                                                     native_packets(), 0)):
        good = _varied(kinds, 3, linktype)
        bad = []
        for p in good:
            for _ in range(3):
                b = bytearray(p)
                lo = first if len(p) > first + 8 else 0
                b[rnd.randrange(lo, len(b))] ^= 1 << rnd.randrange(8)
                bad.append(bytes(b))
        out.append(write(tmp_path / f"tpl_{name}.pcap", linktype, good + bad + good[::-1]))
    return out


@pytest.fixture(scope="module")
def template_captures(tmp_path_factory):
    return _template_captures(tmp_path_factory.mktemp("templates"))


def test_templates_are_made_and_used(tshark, tmp_path, template_captures):
    probe = tmp_path / "stats.lua"
    probe.write_text(STATS_PROBE, encoding="utf-8")
    for pcap in template_captures:
        last = _run(tshark, pcap, probe=probe).stderr.strip().splitlines()[-1]
        made, used = (int(x) for x in last.split()[1::2])
        assert made >= 10 and used > 30, f"{pcap.name}: {last}"
        # with the preference off, and with a tree, no template is made
        off = _run(tshark, pcap, *NO_TEMPLATES, probe=probe).stderr.strip().splitlines()[-1]
        assert off == "templates 0 used 0", off
        full = _run(tshark, pcap, *FULL, probe=probe).stderr.strip().splitlines()[-1]
        assert full == "templates 0 used 0", full


@pytest.mark.parametrize("passes", [(), ("-2",), ("-o", "ub.verify_icrc:FALSE")],
                         ids=["one pass", "two passes", "ICRC not verified"])
def test_templates_show_what_the_walk_shows(tshark, template_captures, captures, passes):
    for pcap in template_captures + captures:
        with_templates = _run(tshark, pcap, *passes).stdout
        walk = _run(tshark, pcap, *passes, *NO_TEMPLATES).stdout
        assert with_templates == walk, f"{pcap.name}: templates change the summary lines"
        if pcap in template_captures:
            assert with_templates == _run(tshark, pcap, *passes, *FULL).stdout, pcap.name


def test_template_expert_infos(tshark, template_captures):
    for pcap in template_captures:
        for prefs in ((), ("-o", "ub.verify_icrc:FALSE")):
            with_templates = _run(tshark, pcap, "-q", "-z", "expert", *prefs).stdout
            walk = _run(tshark, pcap, "-q", "-z", "expert", *prefs, *NO_TEMPLATES).stdout
            assert with_templates == walk, f"{pcap.name} {prefs}: expert infos differ"
            assert with_templates == _run(tshark, pcap, "-q", "-z", "expert", *prefs,
                                          *FULL).stdout, pcap.name
            assert with_templates.count("ICRC 0x") > 10 or prefs, "too few bad ICRCs"


def test_template_taps(tshark, template_captures):
    """The conversation and SRT taps read the analysis a template ran."""
    pcap = template_captures[0]
    for tap in ("ub,conv", "ub,srt"):
        with_templates = _run(tshark, pcap, "-q", "-z", tap).stdout
        assert with_templates == _run(tshark, pcap, "-q", "-z", tap, *NO_TEMPLATES).stdout, tap
        assert "192.0.2.1" in with_templates or "Write" in with_templates, with_templates


# ------------------------------------------------------------------------------------------------
# the carrier of a template's UDP payload read from the bytes before it (TPL.carrier): the IP
# and UDP headers ip_len bytes before the payload, checked against the frame, instead of the IP
# items.  Frames whose carrier the check must turn away take the IP items' way; every way must
# show what the walk shows.

def _ip4(payload: bytes, proto: int, src: bytes, dst: bytes, options: bytes = b"",
         ident: int = 1, frag: int = 0x4000, total: int | None = None) -> bytes:
    ihl = 5 + len(options) // 4
    h = bytearray(bytes([0x40 | ihl, 0x68]) + (total or ihl * 4 + len(payload)).to_bytes(2, "big")
                  + ident.to_bytes(2, "big") + frag.to_bytes(2, "big") + bytes([64, proto, 0, 0])
                  + src + dst + options)
    h[10:12] = _ip_checksum(bytes(h)).to_bytes(2, "big")
    return bytes(h) + payload


def _with_icrc(frame: bytes, ip: int, version: int, udp: int) -> bytes:
    """frame with its ICRC (the last 4 bytes, the reference profile's little-endian order) made
    again over the innermost IP header at ip and the UDP header at udp (UB 2.0 §5.3.7)."""
    from ubpkt.network.icrc import icrc, masks_for_ip
    value = icrc(frame, ip, len(frame) - 4, masks_for_ip(ip, version, udp))
    return frame[:-4] + value.to_bytes(4, "little")


def _carriers(frames: list[bytes]) -> list[bytes]:
    """The UDP payloads of frames (Ethernet/IPv4/UDP) over varied carriers, in turn: plain
    IPv4, IPv4 with options, IPv4 in IPv4 (inner addresses by frame), IPv6, an ICMP error quoting
    the datagram, a UDP length shorter than the IP payload, and IP fragments (two frames)."""
    eth4, eth6 = bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x00", \
        bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x86\xdd"
    a, b = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
    out = []
    for i, f in enumerate(frames):
        udp_hdr, payload = bytearray(f[34:42]), f[42:]
        kind = (i // 7) % 7
        if kind == 0:                                              # plain IPv4
            out.append(f)
        elif kind == 1:                                            # IPv4 options (IHL 6)
            # read 20 bytes before the UDP header (a template of a 20-byte header), this header
            # would pass for one but for its total length: version/IHL 0x45 (the ident's first
            # byte), protocol 17 (the source's second byte)
            fr = eth4 + _ip4(bytes(udp_hdr) + payload, 17, bytes([192, 17, 2, 1]), b,
                             options=b"\x01\x01\x01\x00", ident=0x4500 + i % 256)
            out.append(_with_icrc(fr, 14, 4, 38))
        elif kind == 2:                                            # IPv4 in IPv4
            inner_src = bytes([192, 0, 2, 10 + i % 3])
            inner = _ip4(bytes(udp_hdr) + payload, 17, inner_src, b, ident=i)
            fr = eth4 + _ip4(inner, 4, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), ident=i)
            out.append(_with_icrc(fr, 34, 4, 54))
        elif kind == 3:                                            # IPv6
            body = bytes(udp_hdr) + payload
            ip6 = (bytes([0x60, 0, 0, 0]) + len(body).to_bytes(2, "big") + bytes([17, 64])
                   + bytes(15) + b"\x01" + bytes(15) + b"\x02")
            out.append(_with_icrc(eth6 + ip6 + body, 14, 6, 54))
        elif kind == 4:                                            # an ICMP error quoting it
            icmp = bytes([3, 3, 0, 0, 0, 0, 0, 0]) + f[14:]
            out.append(eth4 + _ip4(icmp, 1, b, a, ident=i))
        elif kind == 5:                                            # UDP length < IP payload
            short = bytearray(udp_hdr)
            short[4:6] = (len(payload) + 8 - 2).to_bytes(2, "big")
            fr = eth4 + _ip4(bytes(short) + payload, 17, a, b, ident=i)
            out.append(fr)
        else:                                                      # two IP fragments
            body = bytes(udp_hdr) + payload
            cut = 16
            out.append(eth4 + _ip4(body[:cut], 17, a, b, ident=0x7000 + i, frag=0x2000))
            out.append(eth4 + _ip4(body[cut:], 17, a, b, ident=0x7000 + i, frag=cut // 8))
    return out


@pytest.fixture(scope="module")
def carrier_capture(tmp_path_factory):
    import sys
    root = Path(__file__).resolve().parents[2]
    if str(root / "captures") not in sys.path:
        sys.path.insert(0, str(root / "captures"))
    from make_captures import uboe_packets as uboe_kinds   # noqa: E402
    frames = _varied(uboe_kinds(), 24, 1)
    return write(tmp_path_factory.mktemp("carriers") / "carriers.pcap", 1, _carriers(frames))


def test_template_carriers(tshark, tmp_path, carrier_capture):
    probe = tmp_path / "stats.lua"
    probe.write_text(STATS_PROBE.replace(
        'local made, used = ub_template_stats()',
        'local made, used, carried = ub_template_stats()').replace(
        '"templates %d used %d\\n", made, used', '"templates %d used %d carried %d\\n", made, '
        'used, carried'), encoding="utf-8")
    last = _run(tshark, carrier_capture, probe=probe).stderr.strip().splitlines()[-1]
    made, used, carried = (int(x) for x in last.split()[1::2])
    # the carriers read from the bytes take most template frames, and some are turned away
    assert made >= 10 and carried > 100 and used > carried, last
    for passes in ((), ("-2",), ("-o", "ub.verify_icrc:FALSE")):
        walk = _run(tshark, carrier_capture, *passes, *NO_TEMPLATES).stdout
        assert _run(tshark, carrier_capture, *passes).stdout == walk, passes
    for z in ("expert", "ub,conv", "ub,srt"):
        for prefs in ((), ("-o", "ub.verify_icrc:FALSE")):
            walk = _run(tshark, carrier_capture, "-q", "-z", z, *prefs, *NO_TEMPLATES).stdout
            assert _run(tshark, carrier_capture, "-q", "-z", z, *prefs).stdout == walk, (z, prefs)
    conv = _run(tshark, carrier_capture, "-q", "-z", "ub,conv").stdout
    assert "192.0.2.10" in conv, conv      # IPv4 in IPv4: the inner addresses are the ends
