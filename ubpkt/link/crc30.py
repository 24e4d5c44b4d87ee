"""CRC30 of the data-link block CRC (UB 2.0 §4.7.2).

Polynomial x^30+x^28+x^26+x^24+x^23+x^21+x^19+x^16+x^14+x^11+x^9+x^7+x^6+x^4+x^2+1 (0x15A94AD5
without the x^30 term), register preset to all ones, bits taken most significant first, no
reflection and no final inversion.

Three engines, all giving the same register value:

* :func:`crc30_update` - slicing-by-8 over 16-bit tables (pure Python, ~10x the byte table);
* :func:`crc30_batch` - numpy, many equal-layout messages at once (flit-stream checking);
* :func:`crc30_bits` - bit at a time (the BCRC information bits, and the test reference);
* compiled engines, used when present (``BACKEND``): ``native`` - ``ubpkt._linkc``, the
  package's optional C extension (many blocks of a buffer in one call, slicing by 8); ``anycrc``
  - the ``anycrc`` package (any width and polynomial in C, one call per block).  Setting
  ``UBPKT_CRC30=python`` (or ``anycrc``) in the environment, read at import, or
  :func:`set_backend` chooses; the pure-Python/numpy engines above stay the reference the
  compiled ones are tested against (``tests/link/test_crc_backends.py``).
"""
from __future__ import annotations

import functools
import os
import struct

POLY = 0x15A94AD5
WIDTH = 30
MASK = (1 << WIDTH) - 1
INIT = MASK


def _load_anycrc():
    """``anycrc``'s CRC with these parameters (width 30, this polynomial, preset all ones, MSB
    first, no reflection, no final inversion), or None when the package is missing."""
    try:
        import anycrc
        return anycrc.CRC(width=WIDTH, poly=POLY, init=INIT, refin=False, refout=False,
                          xorout=0)
    except Exception:       # not installed / cannot load: another engine serves
        return None


#: what the package's C extension must provide to be used: an extension built from an older
#: ``_linkc.c`` (a stale build lying around) lacks some, and is then not used at all (every
#: caller takes its Python twin) rather than half
NATIVE_FUNCTIONS = ("crc30_blocks", "check_blocks", "crc30_update", "frame", "delimit",
                    "crd_ack", "crd_ack_read", "dlldb_gather", "tx_run", "tx_plan", "rx_plan",
                    "plain_dlldps", "frame_records", "pcap_payloads")


def _load_native():
    """The package's C extension, or None when it was not built (no compiler at install) or
    is older than this package (:data:`NATIVE_FUNCTIONS` missing)."""
    try:
        from .. import _linkc
    except ImportError:
        return None
    if not all(hasattr(_linkc, f) for f in NATIVE_FUNCTIONS):
        return None
    return _linkc


_COMPILED = _load_anycrc()
_NATIVE = _load_native()
_AVAILABLE = {"native": _NATIVE is not None, "anycrc": _COMPILED is not None, "python": True}
#: the engine in use: "native" (ubpkt._linkc), "anycrc" or "python" (tables + numpy)
BACKEND = next(name for name, ok in _AVAILABLE.items() if ok)


def backends() -> list:
    """The CRC30 engines available here, fastest first."""
    return [name for name, ok in _AVAILABLE.items() if ok]


def native():
    """The package's C extension when it is the CRC30 engine in use, else None: the framer
    takes its compiled DLLDP framing then (so ``set_backend("python")`` makes every BCRC of
    the package come from the reference engines)."""
    return _NATIVE if BACKEND == "native" else None


def set_backend(name: str) -> str:
    """Choose the CRC30 engine (``"native"``, ``"anycrc"`` or ``"python"``, see the module
    doc); returns the previous one.  All give the same register (tested)."""
    global BACKEND
    if name not in _AVAILABLE:
        raise ValueError(f"CRC30 backend {name!r}: one of {', '.join(_AVAILABLE)}")
    if not _AVAILABLE[name]:
        raise RuntimeError(f"the {name} CRC30 engine is not available here")
    old, BACKEND = BACKEND, name
    return old


if _AVAILABLE.get(os.environ.get("UBPKT_CRC30", "")):
    BACKEND = os.environ["UBPKT_CRC30"]


def _shift_table(extra: int) -> list:
    """T[b] = (b * x^(8*extra) * x^30) mod P for every byte b: the register contribution of byte
    b fed when ``extra`` more bytes follow it (zero register)."""
    out = []
    for b in range(256):
        c = b << (WIDTH - 8)
        for _ in range(8 + 8 * extra):
            c = ((c << 1) ^ POLY) & MASK if c & (1 << (WIDTH - 1)) else (c << 1) & MASK
        out.append(c)
    return out


# byte-at-a-time table (extra = 0), kept for the tail of a message
_TABLE = tuple(_shift_table(0))
_T16: list | None = None


def _tables16() -> list:
    """Four 65536-entry tables: the contribution of a 16-bit group at 16-bit position k (k = 0 is
    the last group of a 64-bit word)."""
    global _T16
    if _T16 is None:
        t8 = [_shift_table(i) for i in range(8)]
        tabs = []
        for k in range(4):
            hi, lo = t8[2 * k + 1], t8[2 * k]
            tabs.append([h ^ l for h in hi for l in lo])
        _T16 = tabs
    return _T16


_BIG = 8192         # from this many bytes on, numpy 512-byte rows chained by table
_ROW = 512
_ADV = None


def _adv_tables() -> list:
    """Four byte tables advancing a register over _ROW zero bytes (linear in the register)."""
    global _ADV
    if _ADV is None:
        basis = []
        for bit in range(WIDTH):
            c = 1 << bit
            for _ in range(_ROW):
                c = ((c << 8) & MASK) ^ _TABLE[(c >> (WIDTH - 8)) & 0xFF]
            basis.append(c)
        tabs = []
        for k in range(4):
            t = []
            for b in range(256):
                v = 0
                for i in range(8):
                    if b >> i & 1 and 8 * k + i < WIDTH:
                        v ^= basis[8 * k + i]
                t.append(v)
            tabs.append(t)
        _ADV = tabs
    return _ADV


def _crc30_big(crc: int, data) -> int:
    import numpy as np
    tab, _ = _np_tables()
    a0, a1, a2, a3 = _adv_tables()
    m = len(data) // _ROW
    arr = np.frombuffer(data, dtype=np.uint8, count=m * _ROW).reshape(m, _ROW)
    pos = _POS[640 - _ROW:]
    for s in range(0, m, 1024):
        rows = arr[s:s + 1024]
        contrib = np.bitwise_xor.reduce(tab[pos[None, :], rows], axis=1).tolist()
        for c in contrib:
            crc = a0[crc & 0xFF] ^ a1[(crc >> 8) & 0xFF] ^ a2[(crc >> 16) & 0xFF] \
                ^ a3[crc >> 24] ^ c
    return _crc30_small(crc, data[m * _ROW:])


def crc30_update(crc: int, data) -> int:
    """Feed whole bytes (MSB first) into a running CRC30 register."""
    if BACKEND == "native":
        return _NATIVE.crc30_update(crc, data)
    if BACKEND == "anycrc":
        return _COMPILED.calc(data, crc) if len(data) else crc
    data = bytes(data) if not isinstance(data, (bytes, bytearray)) else data
    if len(data) >= _BIG:
        return _crc30_big(crc, data)
    return _crc30_small(crc, data)


def _crc30_small(crc: int, data) -> int:
    n = len(data)
    nw = n >> 3
    table = _TABLE
    if nw >= 2:
        t0, t1, t2, t3 = _tables16()
        for w in struct.unpack_from(f">{nw}Q", data):
            # 64 message bits meet the 30-bit register aligned at the top: v = (crc << 34) ^ w
            v = (crc << 34) ^ w
            crc = t3[v >> 48] ^ t2[(v >> 32) & 0xFFFF] ^ t1[(v >> 16) & 0xFFFF] ^ t0[v & 0xFFFF]
        start = nw << 3
    else:
        start = 0
    for i in range(start, n):
        crc = ((crc << 8) & MASK) ^ table[((crc >> (WIDTH - 8)) ^ data[i]) & 0xFF]
    return crc


def crc30_bits(crc: int, value: int, nbits: int) -> int:
    """Feed ``nbits`` bits of ``value`` (most significant first) into the register."""
    for i in range(nbits - 1, -1, -1):
        fb = ((crc >> (WIDTH - 1)) ^ (value >> i)) & 1
        crc = (crc << 1) & MASK
        if fb:
            crc ^= POLY
    return crc


def crc30(data: bytes) -> int:
    """CRC30 over whole bytes, MSB first, register preset to all ones."""
    return crc30_update(INIT, data)


def bcrc_crc30(block_without_bcrc: bytes, info_bits: int | None = 0) -> int:
    """The CRC30 a BCRC carries: over every byte of the block before the BCRC field, then the
    two information bits of BCRC byte 0 (reserved bit 7, ERROR_FLAG bit 6), which precede the
    CRC30 on the wire (UB 2.0 §4.7.2; how ubpkt reads it: reference profile ``bcrc_covers_info``).
    ``info_bits=None``: the information bits are not covered.
    """
    n = len(block_without_bcrc)
    if BACKEND == "native":
        crc = _NATIVE.crc30_update(INIT, block_without_bcrc)
    elif BACKEND == "anycrc":
        crc = _COMPILED.calc(block_without_bcrc) if n else INIT
    elif 192 <= n <= 640:
        # one numpy row beats the pure-Python loop from about 200 bytes on
        crc = int(_crc30_row(block_without_bcrc))
    else:
        crc = crc30(block_without_bcrc)
    if info_bits is None:
        return crc
    return ((crc << 2) & MASK) ^ _INFO2[(crc >> 28) ^ (info_bits & 0b11)]


#: feeding two bits b (MSB first) into register r: ((r << 2) & MASK) ^ _INFO2[(r >> 28) ^ b]
_INFO2 = tuple(crc30_bits(t << 28, 0, 2) for t in range(4))


def block_crc(block_without_bcrc, info_bits: int = 0, covers_info: bool = True) -> int:
    """The CRC30 of a block's BCRC, the one definition every builder and checker uses (UB 2.0
    §4.7.2): over every byte before the BCRC field and, when ``covers_info`` (reference profile
    ``bcrc_covers_info``), then the two information bits (reserved bit, ERROR_FLAG) that precede
    the CRC30 on the wire.  With ``covers_info=False`` the CRC30 covers the bytes only and
    ``info_bits`` is ignored."""
    return bcrc_crc30(block_without_bcrc, info_bits if covers_info else None)


def block_crc_batch(rows, info_bits, covers_info: bool = True):
    """:func:`block_crc` of every row of a 2-D uint8 array (numpy; see :func:`crc30_batch`),
    ``info_bits`` one 2-bit value per row."""
    return crc30_batch(rows, info_bits if covers_info else None)


@functools.lru_cache(maxsize=4096)
def bcrc_patch_term(nbytes: int, delta0: int, covers_info: bool = True) -> int:
    """What XOR-ing ``delta0`` into byte 0 of a block's ``nbytes`` covered bytes does to its
    BCRC's CRC30.  The CRC (no final inversion) is linear over GF(2): the register of a changed
    message is the old register XOR the zero-preset CRC of the change alone (``delta0`` then
    ``nbytes - 1`` zero bytes), advanced over the two information bits when they are covered."""
    change = bytes((delta0,)) + bytes(nbytes - 1)
    term = crc30_update(0, change) if BACKEND != "python" else _crc30_small(0, change)
    return crc30_bits(term, 0, 2) if covers_info else term


def bcrc_patch(crc: int, nbytes: int, delta0: int, covers_info: bool = True) -> int:
    """The CRC30 of a block whose byte 0 was XOR-ed with ``delta0`` (the DLL engine sets the
    LPH/LBH CRD/ACK bits on blocks framed earlier), from its old CRC30: equal to
    :func:`block_crc` of the changed block, without reading it again."""
    return crc ^ bcrc_patch_term(nbytes, delta0, covers_info)


def block_crc_values(buf, spans, info_bits, covers_info: bool = True, *,
                     min_batch: int = 4) -> list:
    """:func:`block_crc` of each block ``buf[start:end - 4]`` (``spans``: (start, end) byte
    offsets of whole blocks, the last 4 bytes being the BCRC field; ``info_bits``: each block's
    two information bits).  Blocks of one length go through numpy together (fewer than
    ``min_batch`` one by one): what the framer and the DLL engine's receive path use to seal or
    check many blocks at once."""
    if BACKEND == "native":
        return _NATIVE.crc30_blocks(buf, spans, info_bits if covers_info else None)
    if BACKEND == "anycrc":
        calc = _COMPILED.calc
        mv = memoryview(buf)
        info2 = _INFO2
        out = []
        for (s, e), info in zip(spans, info_bits):
            c = calc(mv[s:e - 4]) if e - s > 4 else INIT
            out.append(((c << 2) & MASK) ^ info2[(c >> 28) ^ info] if covers_info else c)
        return out
    out = [0] * len(spans)
    groups: dict = {}
    for i, (s, e) in enumerate(spans):
        groups.setdefault(e - s, []).append(i)
    mv = memoryview(buf)
    for length, idx in groups.items():
        if (len(idx) < min_batch and length < 196) or not 4 < length <= 644:
            for i in idx:
                s, e = spans[i]
                out[i] = block_crc(bytes(mv[s:e - 4]), info_bits[i], covers_info)
            continue
        import numpy as np
        arr = np.frombuffer(buf, dtype=np.uint8)
        starts = np.fromiter((spans[i][0] for i in idx), dtype=np.intp, count=len(idx))
        rows = arr[starts[:, None] + np.arange(length - 4)]
        crc = _crc30_rows(rows)
        if covers_info:
            info = np.fromiter((info_bits[i] for i in idx), dtype=np.uint32, count=len(idx))
            for shift in (1, 0):
                fb = ((crc >> (WIDTH - 1)) ^ (info >> shift)) & 1
                crc = (((crc << 1) & MASK) ^ (fb * np.uint32(POLY))).astype(np.uint32)
        for i, c in zip(idx, crc.tolist()):
            out[i] = c
    return out


def block_crc_many(buf, spans, covers_info: bool = True, *, min_batch: int = 4) -> list:
    """Whether each block ``buf[start:end]`` (``spans``: (start, end) byte offsets, whole blocks
    with their 4-byte BCRC) carries a correct BCRC (:func:`block_crc_values`).  The DLL
    engine's receive fast path checks every complete block of a run this way."""
    if BACKEND == "native":
        return _NATIVE.check_blocks(buf, spans, covers_info)
    if BACKEND == "anycrc":
        calc = _COMPILED.calc
        info2 = _INFO2
        out = []
        with memoryview(buf) as mv:
            for s, e in spans:
                w = int.from_bytes(mv[e - 4:e], "big")
                c = calc(mv[s:e - 4]) if e - s > 4 else INIT
                if covers_info:
                    c = ((c << 2) & MASK) ^ info2[(c >> 28) ^ (w >> 30)]
                out.append(c == w & MASK)
        return out
    words = [int.from_bytes(buf[e - 4:e], "big") for _, e in spans]
    crcs = block_crc_values(buf, spans, [w >> 30 for w in words], covers_info,
                            min_batch=min_batch)
    return [c == w & MASK for c, w in zip(crcs, words)]


def _crc30_rows(rows):
    """CRC30 (preset all ones) of every row of a 2-D uint8 array of rows <= 640 bytes: gather
    each byte's contribution at its distance from the end from one flat table, XOR them (as
    uint64 pairs when the row length is even: half the reduction work)."""
    import numpy as np
    tab, preset = _np_tables()
    n, length = rows.shape
    flat = _flat_table()
    base = _FLAT_BASE[_FLAT_BASE.size - length:]
    contrib = flat.take(rows + base)
    if length % 2 == 0:
        r = np.bitwise_xor.reduce(contrib.view(np.uint64), axis=1)
        crc = (r ^ (r >> 32)).astype(np.uint32)
    else:
        crc = np.bitwise_xor.reduce(contrib, axis=1).astype(np.uint32)
    return crc ^ preset[length]


_FLAT = None
_FLAT_BASE = None


def _flat_table():
    global _FLAT, _FLAT_BASE
    if _FLAT is None:
        import numpy as np
        tab, _ = _np_tables()
        _FLAT = np.ascontiguousarray(tab).ravel()
        _FLAT_BASE = (np.arange(tab.shape[0] - 1, -1, -1) * 256).astype(np.intp)
    return _FLAT


def _crc30_row(data) -> int:
    import numpy as np
    tab, preset = _np_tables()
    row = np.frombuffer(bytes(data), dtype=np.uint8)
    n = len(row)
    return np.bitwise_xor.reduce(tab[_POS[640 - n:], row]) ^ preset[n]


# ------------------------------------------------------------------------------------------------
# numpy: many messages at once

_NP_TAB = None


def _np_tables():
    """(positions x 256) uint32: contribution of a byte that has d more bytes after it, for
    d < 640; plus, per length L, the contribution of the all-ones preset over L bytes."""
    global _NP_TAB
    if _NP_TAB is None:
        import numpy as np
        maxlen = 640
        tab = np.zeros((maxlen, 256), dtype=np.uint32)
        row = np.array(_TABLE, dtype=np.uint32)
        tab[0] = row
        # advancing a contribution by one more following byte = feeding one zero byte
        t = np.array(_TABLE, dtype=np.uint32)
        for d in range(1, maxlen):
            prev = tab[d - 1]
            tab[d] = ((prev << 8) & MASK) ^ t[(prev >> (WIDTH - 8)) & 0xFF]
        preset = np.zeros(maxlen + 1, dtype=np.uint32)
        c = INIT
        preset[0] = c
        for n in range(1, maxlen + 1):
            c = ((c << 8) & MASK) ^ _TABLE[(c >> (WIDTH - 8)) & 0xFF]
            preset[n] = c
        _NP_TAB = (tab, preset)
        global _POS
        _POS = np.arange(maxlen - 1, -1, -1)
    return _NP_TAB


_POS = None


def crc30_batch(rows, info_bits=None):
    """CRC30 of every row of a 2-D uint8 array (rows of equal length <= 640 bytes), register
    preset to all ones; ``info_bits``: an array of 2-bit values fed after each row, or None.
    Returns a uint32 array.  By linearity: the preset's contribution over L bytes, XOR the
    per-position contribution of every byte."""
    import numpy as np
    rows = np.asarray(rows, dtype=np.uint8)
    n, length = rows.shape
    if length > 640:
        return np.array([crc30_update(INIT, bytes(r)) if info_bits is None else
                         crc30_bits(crc30(bytes(r)), int(b), 2)
                         for r, b in zip(rows, info_bits if info_bits is not None else
                                         [0] * n)], dtype=np.uint32)
    tab, preset = _np_tables()
    if length:
        pos = np.arange(length - 1, -1, -1)
        contrib = tab[pos[None, :], rows]            # (n, L)
        crc = np.bitwise_xor.reduce(contrib, axis=1) ^ preset[length]
    else:
        crc = np.full(n, preset[0], dtype=np.uint32)
    crc = crc.astype(np.uint32)
    if info_bits is not None:
        info = np.asarray(info_bits, dtype=np.uint32)
        for shift in (1, 0):
            fb = ((crc >> (WIDTH - 1)) ^ (info >> shift)) & 1
            crc = ((crc << 1) & MASK) ^ (fb * np.uint32(POLY))
            crc = crc.astype(np.uint32)
    return crc
