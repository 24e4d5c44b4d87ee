"""The exporter's bulk probe and guard (ubpkt.dissect.bulkguard, ubpkt._linkc.probe_guard):
the guard as data against each template's generated ``ok``, frame by frame, on varied traffic,
the grammar samples of every link type and the bundled and interop captures, with every guard
part made to fail; the C function against its pure-Python twin; the bulk answer against the
per-frame probe; the C pcap record scan against the decoder's reader."""
from __future__ import annotations

import random
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ubpkt.analytics.traffic import varied_frames, write_samples, write_varied
from ubpkt.capture.pcap import open_capture
from ubpkt.dissect import bulkguard
from ubpkt.dissect.bulkguard import (NO_TEMPLATE, BulkIndex, GuardData, guard_ok, probe_guard,
                                     probe_guard_py)
from ubpkt.dissect.fastpath import TemplateCache
from ubpkt.profile import profile_for

ROOT = Path(__file__).resolve().parents[1]
needs_c = pytest.mark.skipif(not bulkguard.HAVE_C,
                             reason="ubpkt._linkc not built (python setup.py build_ext --inplace)")


def _capture_frames(path):
    with open_capture(str(path)) as cap:
        return [(p.linktype, bytes(p.data)) for p in cap]


def _corpus(tmp_path):
    """(link type, frame) lists: varied traffic (both generators, clean), the grammar samples of
    every link type, the bundled and interop captures."""
    out = [[(1, f) for f in varied_frames(1500, 3, 0.0, True)],
           [(1, f) for f in varied_frames(1500, 4, 0.0, False)]]
    for cap in write_samples(tmp_path / "samples", copies=4):
        out.append(_capture_frames(cap))
    for cap in sorted((ROOT / "captures").glob("*.pcap")):
        out.append(_capture_frames(cap))
    for cap in sorted(Path("/work/shared/interop/ns3-ub").glob("*.pcap")):
        out.append(_capture_frames(cap))
    return out


def _caches(frames):
    """Template caches (per link type) that decoded ``frames``: their templates."""
    caches = {}
    for lt, f in frames:
        c = caches.get(lt)
        if c is None:
            c = caches[lt] = TemplateCache(profile_for(lt, None))
        c.decode(f, lt)
    return caches


def _variants(t, f, rnd):
    """Frame ``f`` (which template ``t`` fits) with each guard part made to fail: sizes, a
    guarded bit, each length relation, the padding count and bytes, the ICRC; plus random
    byte flips."""
    g = t.guard
    L = len(f)
    out = [f[:-1], f + b"\0", f[:-4], f + bytes(4), f[:g.region]]
    bits = [i for i in range(8 * g.region) if g.gmask >> (8 * g.region - 1 - i) & 1]
    for i in rnd.sample(bits, min(6, len(bits))):
        b = bytearray(f)
        b[i // 8] ^= 0x80 >> (i % 8)
        out.append(bytes(b))
    for bit, n, _ in g.lenrel:
        for d in (1, -1):
            b = bytearray(f)
            v = (int.from_bytes(b, "big") >> (8 * L - bit - n)) & ((1 << n) - 1)
            x = int.from_bytes(b, "big") & ~(((1 << n) - 1) << (8 * L - bit - n))
            x |= ((v + d) & ((1 << n) - 1)) << (8 * L - bit - n)
            out.append(x.to_bytes(L, "big"))
    if g.pad is not None:
        bit, n = g.pad
        for p in (0, 1, 2, 3):
            x = int.from_bytes(f, "big") & ~(((1 << n) - 1) << (8 * L - bit - n))
            out.append((x | (p << (8 * L - bit - n))).to_bytes(L, "big"))
    if g.zero_pad is not None or g.zero_fixed:
        b = bytearray(f)
        b[L - 5] ^= 0x01                # the last padding byte (before the ICRC), or payload
        out.append(bytes(b))
    if g.icrc is not None:
        b = bytearray(f)
        b[-1] ^= 0x01                   # the stored ICRC
        out.append(bytes(b))
        b = bytearray(f)
        b[g.icrc[0] + rnd.randrange(max(1, g.icrc[1] - g.icrc[0]))] ^= 0x01   # masked header
        out.append(bytes(b))
    for _ in range(8):
        b = bytearray(f)
        b[rnd.randrange(L)] ^= 1 << rnd.randrange(8)
        out.append(bytes(b))
    return out


def test_guard_data_matches_ok(tmp_path):
    rnd = random.Random(15)
    failed_parts = {"size": 0, "mask": 0, "icrc": 0, "relation": 0, "padding": 0}
    checked = 0
    for frames in _corpus(tmp_path):
        caches = _caches(frames)
        for lt, c in caches.items():
            templates = [t for t in c.templates() if t.guard is not None]
            fits = {}
            for flt, f in frames:
                if flt != lt:
                    continue
                for t in templates:
                    if len(fits.get(t, ())) < 2 and t.ok(f):
                        fits.setdefault(t, []).append(f)
            for t, fs in fits.items():
                for f in fs:
                    assert guard_ok(t.guard, f)
                    for v in _variants(t, f, rnd):
                        want = bool(t.ok(v))
                        assert guard_ok(t.guard, v) == want, (t.layers, f.hex(), v.hex())
                        checked += 1
                        if not want:
                            g = t.guard
                            if g.exact is not None and len(v) != g.exact:
                                failed_parts["size"] += 1
                            elif int.from_bytes(v[:g.region], "big") & g.gmask != g.gval:
                                failed_parts["mask"] += 1
                            elif g.lenrel and len(v) == len(f):
                                failed_parts["relation"] += 1
                            if g.icrc is not None and len(v) == len(f):
                                failed_parts["icrc"] += 1
                            if g.pad is not None and len(v) == len(f):
                                failed_parts["padding"] += 1
    assert checked > 5000, checked
    assert all(failed_parts.values()), failed_parts


def _block(frames):
    buf = b"".join(frames)
    lens = np.array([len(f) for f in frames], dtype=np.int64)
    offs = np.zeros(len(frames), dtype=np.int64)
    np.cumsum(lens[:-1], out=offs[1:])
    return buf, offs, lens


def _reference(cache, f):
    """The templates of ``cache`` whose probe finds ``f`` and whose guard fits it."""
    out = []
    for region, smask, table in cache._groups:
        if len(f) < region:
            continue
        for t in table.get(int.from_bytes(f[:region], "big") & smask, ()):
            if t.ok is not None and t.guard is not None and t.ok(f):
                out.append(t)
    return out


def _check_block(cache, frames, py=True):
    ids, templates = {}, []
    idx = BulkIndex(cache, ids, templates)
    buf, offs, lens = _block(frames)
    got = probe_guard(idx, buf, offs, lens)
    if py:
        twin = np.empty(len(frames), dtype=np.int64)
        probe_guard_py(buf, offs, lens, twin, *idx.arrays())
        assert got.tolist() == twin.tolist()
    # where every template's guard is packed (not one left per frame), -1 never comes
    every_guard = all(idx.guards[i][0] for i in ids.values())
    for f, r in zip(frames, got.tolist()):
        if r >= 0:
            assert templates[r].ok(f)
        elif every_guard:
            fit = _reference(cache, f)
            assert (r == NO_TEMPLATE) == (not fit), (r, [t.layers for t in fit])
            assert not fit
    return got


@needs_c
def test_c_and_python_twin_on_corrupted_varied_traffic():
    frames = list(varied_frames(3000, 7, 0.0, True))
    cache = _caches([(1, f) for f in frames])[1]
    rnd = random.Random(3)
    bad = []
    for f in frames[:1500]:
        b = bytearray(f)
        k = rnd.randrange(4)
        if k == 0:
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        elif k == 1:
            b = b[:-rnd.randint(1, 5)]
        elif k == 2:
            b += bytes(rnd.randint(1, 5))
        bad.append(bytes(b))
    got = _check_block(cache, frames[:1500] + bad)
    assert (got[:1500] >= 0).mean() > 0.8
    assert (got[1500:] == NO_TEMPLATE).mean() > 0.3


@needs_c
def test_c_and_python_twin_on_samples_and_captures(tmp_path):
    for frames in _corpus(tmp_path)[2:]:
        for lt, cache in _caches(frames).items():
            _check_block(cache, [f for flt, f in frames if flt == lt])


def _synthetic():
    """A hand-made guard with every part, the encoded length and the fixed zero run included
    (no grammar layout of the corpus has those two): 40 bytes of header, a 16-bit length field
    at bit 16 (= L - 20), an encoded length byte at bit 32 (L = 4 * value), a padding count in
    the 2 bits at bit 46, payload from 40, then P zero bytes, 2 fixed zero bytes, the ICRC."""
    def length_of(v, _profile):
        return 4 * v if v else None
    g = GuardData(40, (0xFF << (8 * 39)) | (0x0F << (8 * 30)),
                  (0xAB << (8 * 39)) | (0x05 << (8 * 30)), exact=None, tail=6, lo=41, hi=200,
                  barred=(8, 16), data_off=40, min_len=47,
                  pad=(46, 2), lenrel=[(16, 16, 20)], encoded=[(32, 8, length_of, None)],
                  zero_fixed=[(6, 4)], zero_pad=6,
                  icrc=(2, 12, bytes([0xF0] + [0] * 8 + [0x0F]), 0, False, "big"))
    return g


def _synthetic_frame(rnd, payload: int, pad: int):
    L = 40 + payload + pad + 2 + 4
    L += (-L) % 4
    payload = L - 46 - pad
    b = bytearray(rnd.randbytes(40)) + bytearray(rnd.randbytes(payload)) + bytes(pad + 2)
    b[0] = 0xAB
    b[9] = (b[9] & 0xF0) | 0x05
    b[2:4] = (L - 20).to_bytes(2, "big")
    b[4] = L // 4
    b[5] = (b[5] & 0xFC) | pad
    h = bytes(x | m for x, m in zip(b[2:12], bytes([0xF0] + [0] * 8 + [0x0F])))
    crc = zlib.crc32(bytes(b[12:]), zlib.crc32(h))
    return bytes(b) + crc.to_bytes(4, "big")


class _Fake:
    """A template with a guard only (hashable, as templates are)."""

    def __init__(self, g):
        self.guard = g
        self.ok = lambda b: guard_ok(g, b)


@needs_c
def test_synthetic_guard_every_part():
    rnd = random.Random(11)
    g = _synthetic()
    t = _Fake(g)
    key = 0xAB << (8 * 39)
    cache = SimpleNamespace(compiled=1, _count=1, _groups=[[40, 0xFF << (8 * 39), {key: [t]}]])
    frames = []
    for _ in range(300):
        pad = rnd.randint(1, 3)
        f = _synthetic_frame(rnd, rnd.randint(1, 60), pad)
        # payload lengths 8 and 16 are barred
        assert guard_ok(g, f) == (len(f) - 46 - pad not in (8, 16)), f.hex()
        frames.append(f)
        for _ in range(3):
            b = bytearray(f)
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
            frames.append(bytes(b))
        frames += [f[:-1], f + b"\0", f[:44]]
    ids, templates = {}, []
    idx = BulkIndex(cache, ids, templates)
    buf, offs, lens = _block(frames)
    got = probe_guard(idx, buf, offs, lens)
    twin = np.empty(len(frames), dtype=np.int64)
    probe_guard_py(buf, offs, lens, twin, *idx.arrays())
    assert got.tolist() == twin.tolist()
    want = [0 if guard_ok(g, f) else NO_TEMPLATE for f in frames]
    assert got.tolist() == want
    assert want.count(0) >= 250 and want.count(NO_TEMPLATE) > 600


@needs_c
def test_template_without_guard_data_goes_per_frame():
    """A probe list whose first template has no guard data: its frames take the per-frame path
    (-1), as the per-frame loop would call that template's generated function."""
    frames = list(varied_frames(600, 5, 0.0, False))
    cache = _caches([(1, f) for f in frames])[1]
    for t in cache.templates():
        t.guard = None
    got = _check_block(cache, frames, py=False)
    assert set(got.tolist()) <= {-1, NO_TEMPLATE} and (got == -1).any()


@needs_c
def test_pcap_scan_against_the_reader(tmp_path):
    from ubpkt.analytics.export import frame_chunks
    from ubpkt.analytics.frameblocks import frame_runs
    cap = tmp_path / "v.pcap"
    write_varied(cap, 3000, seed=2)
    data = cap.read_bytes()
    # a damaged copy: a record with a bad fraction (reported, read on) and a cut tail
    bad = bytearray(data)
    at = 24
    for _ in range(100):
        at += 16 + int.from_bytes(bad[at + 8:at + 12], "little")
    bad[at + 4:at + 8] = (2_000_000_000).to_bytes(4, "little")
    (tmp_path / "bad.pcap").write_bytes(bytes(bad[:-7]))
    # big-endian, microsecond times, gzip-compressed
    import gzip
    import struct
    be = [struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    with open_capture(str(cap)) as c:
        for p in c:
            d = bytes(p.data)
            be.append(struct.pack(">IIII", p.time_ns // 10 ** 9, p.time_ns % 10 ** 9 // 1000,
                                  len(d), len(d)) + d)
    (tmp_path / "be.pcap.gz").write_bytes(gzip.compress(b"".join(be)))
    caps = [cap, tmp_path / "bad.pcap", tmp_path / "be.pcap.gz"] + \
        sorted((ROOT / "captures").glob("*.pcap"))
    for path in caps:
        p1, p2 = [], []
        want = [t for chunk in frame_chunks(str(path), None, p1) for t in chunk]
        got = []
        for r in frame_runs(str(path), None, p2):
            for i in range(len(r)):
                o, n = int(r.offs[i]), int(r.lens[i])
                got.append((r.first + i, int(r.ts[i]), int(r.orig[i]), int(r.lts[i]),
                            bytes(r.buf[o:o + n])))
        assert got == [(n, t, o, lt, bytes(d)) for n, t, o, lt, d in want]
        assert [str(x) for x in p1] == [str(x) for x in p2]
        if path.name == "bad.pcap":
            assert p2, "the damaged copy reported nothing"
