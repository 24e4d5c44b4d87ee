"""Seeded varied captures for the exporter's tests and bench: UBoE frames of every sample kind
(``captures/make_captures.uboe_packets`` when the repository is at hand, else the grammar
samples), random payload lengths and per-frame values, a share of corrupted frames, and the
grammar samples of every link type (one pcap per link type)."""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path

__all__ = ["varied_frames", "vary_layers", "write_varied", "write_samples"]


def _uboe_kinds():
    path = Path(__file__).resolve().parents[2] / "captures" / "make_captures.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("ubpkt_make_captures", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.uboe_packets()


def _is_atomic(kind) -> bool:
    from ..formats.grammar import ATOMIC_PAYLOAD_OPCODES
    return any(name in ("ub.btah", "ub.atah") and isinstance(spec, dict) and
               spec.get("taopcode") in ATOMIC_PAYLOAD_OPCODES for name, spec in kind)


def vary_layers(kind, rnd, payload_size, vary_address: bool = False) -> list:
    """A sample's layer list with fresh per-frame values drawn from ``rnd`` (IP id, UDP source
    port, PSN, INI_TASSN, with ``vary_address`` the MAETAH address) and a random payload of
    ``payload_size(sample payload)`` bytes.  Shared by the exporter's captures and
    bench/bench_varied.py (issue 14's varied workload)."""
    out = []
    for name, spec in kind:
        spec = dict(spec) if isinstance(spec, dict) else spec
        if name == "ip":
            spec["id"] = rnd.getrandbits(16)
        elif name == "udp":
            spec["srcport"] = 49152 + rnd.getrandbits(6)
        elif name == "ub.rtph":
            spec["psn"] = rnd.getrandbits(24)
        elif name in ("ub.btah", "ub.atah"):
            spec["ini_tassn"] = rnd.getrandbits(16)
        elif name == "ub.maetah" and vary_address:
            spec["address"] = 0x7F0000000000 + 64 * rnd.getrandbits(20)
        elif name == "data":
            spec = rnd.randbytes(payload_size(spec))
        out.append((name, spec))
    return out


def _vary(kind, rnd, atomic_lengths=True):
    if not atomic_lengths and _is_atomic(kind):
        return vary_layers(kind, rnd, len)          # the sample's operand size
    return vary_layers(kind, rnd,
                       lambda _: rnd.choice((1, 2, 3, 7, 8, 9, 64, rnd.randint(1, 700))))


def varied_frames(n: int, seed: int = 15, corrupt: float = 0.1,
                  atomic_lengths: bool = True) -> list:
    """``n`` Ethernet (UBoE) frames: random kinds and values, ``corrupt`` of them with 1-3
    flipped bits in their first 96 bytes.  ``atomic_lengths``: atomics get random payload
    lengths too (issue 14's varied workload; each length is its own layout for the fast path),
    else the operand size of their sample, as an application's atomics have."""
    from ..encode import encode_layers
    rnd = random.Random(seed)
    kinds = _uboe_kinds()
    if kinds is None:
        from ..formats.samples import samples
        from ..profile import SPEC
        kinds = [layers for lt, _p, layers in samples(SPEC) if lt == 1]
    out = []
    for _ in range(n):
        buf = encode_layers(_vary(rnd.choice(kinds), rnd, atomic_lengths))
        if rnd.random() < corrupt:
            b = bytearray(buf)
            for _ in range(rnd.randint(1, 3)):
                bit = rnd.randrange(min(len(b), 96) * 8)
                b[bit // 8] ^= 1 << (bit % 8)
            buf = bytes(b)
        out.append(buf)
    return out


def write_varied(path, n: int, seed: int = 15, corrupt: float = 0.1,
                 t0_ns: int = 1_700_000_000_123_456_789, step_ns: int = 1_337,
                 atomic_lengths: bool = True) -> None:
    """A classic pcap (nanosecond times, Ethernet) of :func:`varied_frames`."""
    from ..capture import LINKTYPE_ETHERNET, PcapWriter
    with PcapWriter(str(path), LINKTYPE_ETHERNET) as w:
        for i, buf in enumerate(varied_frames(n, seed, corrupt, atomic_lengths)):
            w.write(buf, t0_ns + i * step_ns)


def write_samples(directory, copies: int = 3) -> list:
    """One pcap per link type of the grammar samples (spec and ns-3 profiles), each sample
    ``copies`` times (so templates get built); the paths written."""
    from ..capture import PcapWriter
    from ..encode import encode_layers
    from ..formats.samples import samples
    from ..profile import NS3, SPEC
    by_lt: dict = {}
    for prof in (SPEC, NS3):
        for lt, p, layers in samples(prof):
            by_lt.setdefault((lt, p.name if hasattr(p, "name") else id(p)), []).append(
                encode_layers(layers, p))
    paths = []
    Path(directory).mkdir(parents=True, exist_ok=True)
    for i, ((lt, _), bufs) in enumerate(sorted(by_lt.items(), key=lambda x: str(x[0]))):
        path = Path(directory) / f"samples_{lt}_{i}.pcap"
        with PcapWriter(str(path), lt) as w:
            t = 1_600_000_000_000_000_000
            for _ in range(copies):
                for b in bufs:
                    w.write(b, t)
                    t += 1000
        paths.append(str(path))
    return paths
