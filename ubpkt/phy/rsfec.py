"""RS(128,120) FEC over GF(2^8): encoder, T=4 and T=2 decoders, batch (numpy) versions.

UB 2.0 §3.2.2.1: generator roots alpha^0..alpha^7, systematic, symbols sent m_119 .. m_0 then
p7 .. p0 (so codeword index t carries the coefficient of x^(127-t)).  §3.2.3.5: syndromes
S_j = r(alpha^j); T=4 corrects up to 4 symbols, T=2 corrects up to 2 from S0..S3 and checks the
result with S4..S7, so (distance 9) 3..6 symbol errors are always reported, never mis-corrected.

Speed: encoding and syndrome computation are GF(2)-linear, so both are done as XORs of per-position
64-bit table entries over whole batches of codewords with numpy; only codewords with a non-zero
syndrome go through the per-codeword Berlekamp-Massey / Chien / Forney decoder.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import gf256
from .gf256 import EXP, EXP_NP, LOG, mul

N = 128
K = 120
NPAR = 8

__all__ = [
    "N", "K", "NPAR", "GENERATOR", "RsResult", "rs_encode", "rs_decode", "rs_encode_many",
    "rs_syndromes_many", "rs_decode_many", "BatchDecode",
]


def _generator() -> list[int]:
    """Coefficients g0..g8 of prod_{j=0..7} (x - alpha^j) (lowest degree first)."""
    g = [1]
    for j in range(NPAR):
        root = EXP[j]
        ng = [0] * (len(g) + 1)
        for i, c in enumerate(g):
            ng[i + 1] ^= c
            ng[i] ^= mul(c, root)
        g = ng
    return g


GENERATOR: tuple[int, ...] = tuple(_generator())  # g0..g8 (UB 2.0 Table 3-2)


def _poly_mod_gen(coeffs_high_first: list[int]) -> list[int]:
    """Remainder of a polynomial (highest power first) divided by the generator, 8 coeffs
    highest first (p7..p0)."""
    g_high = GENERATOR[::-1]  # g8..g0, g8 = 1
    buf = list(coeffs_high_first) + [0] * NPAR
    for i in range(len(coeffs_high_first)):
        c = buf[i]
        if c:
            for k in range(1, NPAR + 1):
                buf[i + k] ^= mul(g_high[k], c)
    return buf[-NPAR:]


def _pack_u64(rows: np.ndarray) -> np.ndarray:
    """(…, 8) uint8 -> (…) little-endian uint64 so that .view(uint8) returns the 8 bytes."""
    return np.ascontiguousarray(rows.astype(np.uint8)).view("<u8")[..., 0]


def _build_tables() -> tuple[np.ndarray, np.ndarray]:
    mulT = gf256.MUL.astype(np.int64)
    # Parity of a single 1 at message position i (x^(127-i)): remainder of x^(127-i) mod g.
    par1 = np.zeros((K, NPAR), dtype=np.int64)
    for i in range(K):
        msg = [0] * K
        msg[i] = 1
        par1[i] = _poly_mod_gen(msg)
    v = np.arange(256)
    enc = mulT[v[None, :, None], par1[:, None, :]]  # (K,256,8)  v*par1[i]
    enc_u64 = _pack_u64(enc)
    # Syndrome contribution of value v at codeword index t: v * alpha^(j*(127-t)).
    pw = np.array([[EXP[(j * (N - 1 - t)) % 255] for j in range(NPAR)] for t in range(N)])
    syn = mulT[v[None, :, None], pw[:, None, :]]  # (N,256,8)
    syn_u64 = _pack_u64(syn)
    return enc_u64, syn_u64


_ENC_T, _SYN_T = _build_tables()
_KIDX = np.arange(K)
_NIDX = np.arange(N)
# the tables flat, and each position's row offset: one ``take`` of (position*256 + symbol)
# is several times faster than indexing with two arrays
_ENC_FLAT, _SYN_FLAT = _ENC_T.reshape(-1), _SYN_T.reshape(-1)
_KOFF = (_KIDX * 256).astype(np.uint16)
_NOFF = (_NIDX * 256).astype(np.uint16)


def rs_encode_many(messages: np.ndarray) -> np.ndarray:
    """Encode a batch: (M,120) uint8 -> (M,128) uint8 codewords (message first, then p7..p0)."""
    msgs = np.asarray(messages, dtype=np.uint8)
    if msgs.ndim != 2 or msgs.shape[1] != K:
        raise ValueError("messages must have shape (M, 120)")
    out = np.empty((msgs.shape[0], N), dtype=np.uint8)
    out[:, :K] = msgs
    if msgs.shape[0]:
        par = np.bitwise_xor.reduce(_ENC_FLAT.take(np.add(msgs, _KOFF, dtype=np.uint16)),
                                    axis=1)
        out[:, K:] = par.astype("<u8").view(np.uint8).reshape(-1, NPAR)
    return out


def rs_encode(message: bytes) -> bytes:
    """Encode 120 message bytes into the 128-byte codeword (message, then p7..p0)."""
    m = np.frombuffer(bytes(message), dtype=np.uint8)
    if m.size != K:
        raise ValueError("RS(128,120) message must be 120 bytes")
    return rs_encode_many(m.reshape(1, K))[0].tobytes()


def rs_syndromes_many(codewords: np.ndarray) -> np.ndarray:
    """(M,128) codewords -> (M,) uint64 packing S0..S7 (byte j = S_j)."""
    cw = np.asarray(codewords, dtype=np.uint8)
    if cw.shape[0] == 0:
        return np.zeros(0, dtype="<u8")
    return np.bitwise_xor.reduce(_SYN_FLAT.take(np.add(cw, _NOFF, dtype=np.uint16)), axis=1)


def _syndromes(cw: np.ndarray) -> list[int]:
    s = int(rs_syndromes_many(cw.reshape(1, N))[0])
    return [(s >> (8 * j)) & 0xFF for j in range(NPAR)]


def _berlekamp_massey(S: list[int]) -> list[int]:
    """Error locator Lambda (lowest degree first) from syndromes S[0..2t-1]."""
    C = [1]
    B = [1]
    L = 0
    m = 1
    b = 1
    for n in range(len(S)):
        d = S[n]
        for i in range(1, L + 1):
            if i < len(C) and C[i]:
                d ^= mul(C[i], S[n - i])
        if d == 0:
            m += 1
            continue
        coef = gf256.div(d, b)
        T = list(C)
        shifted = [0] * m + [mul(coef, x) for x in B]
        if len(shifted) > len(C):
            C = C + [0] * (len(shifted) - len(C))
        for i, x in enumerate(shifted):
            C[i] ^= x
        if 2 * L <= n:
            L = n + 1 - L
            B = T
            b = d
            m = 1
        else:
            m += 1
    while len(C) > 1 and C[-1] == 0:
        C.pop()
    if len(C) - 1 != L:
        return []  # defective locator: degree below the register length -> uncorrectable
    return C


# powers p = 0..127 of x in the codeword polynomial (index t = 127 - p)
_P = np.arange(N)


def _decode_one(cw: np.ndarray, S: list[int], t: int) -> tuple[np.ndarray, int] | None:
    """Correct one codeword given its 8 syndromes; None if uncorrectable."""
    nsyn = 2 * t
    lam = _berlekamp_massey(S[:nsyn])
    L = len(lam) - 1
    if L <= 0 or L > t:
        return None
    # Chien search: roots of Lambda at alpha^(-p) for p in 0..127.
    val = np.zeros(N, dtype=np.int64)
    for k, c in enumerate(lam):
        if c:
            val ^= EXP_NP[(LOG[c] - k * _P) % 255]
    powers = np.nonzero(val == 0)[0]
    if len(powers) != L:
        return None
    # Forney (first consecutive root b = 0): e = X * Omega(X^-1) / Lambda'(X^-1).
    omega = [0] * nsyn
    for i in range(nsyn):
        acc = 0
        for k in range(min(i, L) + 1):
            acc ^= mul(lam[k], S[i - k])
        omega[i] = acc
    out = cw.copy()
    for p in powers:
        p = int(p)
        xinv_log = (-p) % 255
        num = 0
        for i, c in enumerate(omega):
            if c:
                num ^= EXP[(LOG[c] + i * xinv_log) % 255]
        den = 0
        for k in range(1, L + 1, 2):  # formal derivative: odd terms only
            if lam[k]:
                den ^= EXP[(LOG[lam[k]] + (k - 1) * xinv_log) % 255]
        if den == 0:
            return None
        e = mul(EXP[p % 255], gf256.div(num, den))
        if e == 0:
            return None
        out[N - 1 - p] ^= e
    # Verify with all eight syndromes (for T=2 this is the S4..S7 check of §3.2.3.5).
    if int(rs_syndromes_many(out.reshape(1, N))[0]) != 0:
        return None
    return out, L


@dataclass
class RsResult:
    """Outcome of decoding one codeword."""

    ok: bool
    message: bytes
    corrected: int
    codeword: bytes = b""
    positions: list[int] = field(default_factory=list)  # codeword indices (0 = first sent)


def rs_decode(codeword, t: int = 4) -> RsResult:
    """Decode one 128-byte codeword with T=4 (correct <= 4) or T=2 (correct <= 2, verify)."""
    if t not in (2, 4):
        raise ValueError("t must be 2 or 4")
    cw = np.frombuffer(bytes(codeword), dtype=np.uint8)
    if cw.size != N:
        raise ValueError("RS(128,120) codeword must be 128 bytes")
    S = _syndromes(cw)
    if not any(S):
        return RsResult(True, cw[:K].tobytes(), 0, cw.tobytes(), [])
    res = _decode_one(cw, S, t)
    if res is None:
        return RsResult(False, cw[:K].tobytes(), 0, cw.tobytes(), [])
    fixed, _ = res
    pos = [int(i) for i in np.nonzero(fixed != cw)[0]]
    return RsResult(True, fixed[:K].tobytes(), len(pos), fixed.tobytes(), pos)


@dataclass
class BatchDecode:
    """Result of :func:`rs_decode_many`."""

    codewords: np.ndarray  # (M,128) corrected (uncorrectable ones left as received)
    ok: np.ndarray  # (M,) bool
    corrected: np.ndarray  # (M,) int, symbols fixed per codeword
    dirty: int = -1  # codewords with a non-zero syndrome (0: all clean, nothing corrected)

    @property
    def messages(self) -> np.ndarray:
        return self.codewords[:, :K]


_MUL = gf256.MUL
_INV = np.zeros(256, dtype=np.uint8)
_INV[1:] = [gf256.inv(a) for a in range(1, 256)]
# _NEGPOW[k, p] = alpha^(-k*p) for p = 0..127 (Chien/Forney evaluation points)
_NEGPOW = np.array([[EXP[(-k * p) % 255] for p in range(N)] for k in range(NPAR + 1)],
                   dtype=np.uint8)
_POSPOW = np.array([EXP[p % 255] for p in range(N)], dtype=np.uint8)


def _decode_batch(cw: np.ndarray, syn: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised BM / Chien / Forney over the rows of ``cw`` (all with non-zero syndromes).
    Returns (corrected codewords, ok mask)."""
    M = cw.shape[0]
    S = syn.astype("<u8").view(np.uint8).reshape(M, NPAR)
    nsyn = 2 * t
    W = t + 2
    C = np.zeros((M, W), dtype=np.uint8)
    B = np.zeros((M, W), dtype=np.uint8)
    C[:, 0] = 1
    B[:, 0] = 1
    L = np.zeros(M, dtype=np.int64)
    b = np.ones(M, dtype=np.uint8)
    for n in range(nsyn):  # Berlekamp-Massey, one syndrome per step for every row at once
        d = S[:, n].copy()
        for i in range(1, min(n, W - 1) + 1):
            d ^= _MUL[C[:, i], S[:, n - i]]
        xB = np.zeros_like(B)
        xB[:, 1:] = B[:, :-1]
        coef = _MUL[d, _INV[b]]
        newC = C ^ _MUL[coef[:, None], xB]
        nz = d != 0
        grow = nz & (2 * L <= n)
        B = np.where(grow[:, None], C, xB)
        b = np.where(grow, d, b)
        L = np.where(grow, n + 1 - L, L)
        C = np.where(nz[:, None], newC, C)
    deg = np.where(C != 0, np.arange(W)[None, :], 0).max(axis=1)
    # Chien search over the 128 positions of the shortened code
    val = np.zeros((M, N), dtype=np.uint8)
    for k in range(W - 1):
        val ^= _MUL[C[:, k][:, None], _NEGPOW[k][None, :]]
    roots = val == 0
    nroots = roots.sum(axis=1)
    ok = (L > 0) & (L <= t) & (deg == L) & (nroots == L)
    # Forney (first root alpha^0): e = X * Omega(X^-1) / Lambda'(X^-1)
    omega = np.zeros((M, nsyn), dtype=np.uint8)
    for i in range(nsyn):
        for k in range(min(i, W - 1) + 1):
            omega[:, i] ^= _MUL[C[:, k], S[:, i - k]]
    num = np.zeros((M, N), dtype=np.uint8)
    for i in range(nsyn):
        num ^= _MUL[omega[:, i][:, None], _NEGPOW[i][None, :]]
    den = np.zeros((M, N), dtype=np.uint8)
    for k in range(1, W - 1, 2):
        den ^= _MUL[C[:, k][:, None], _NEGPOW[k - 1][None, :]]
    e = _MUL[_POSPOW[None, :], _MUL[num, _INV[den]]]
    e = np.where(roots, e, 0)
    ok &= ~(roots & ((den == 0) | (e == 0))).any(axis=1)
    fixed = cw ^ np.where(ok[:, None], e[:, ::-1], 0).astype(np.uint8)
    # verify with all eight syndromes (for T=2 this is the S4..S7 check of §3.2.3.5)
    ok &= rs_syndromes_many(fixed) == 0
    fixed = np.where(ok[:, None], fixed, cw)
    return fixed, ok


def rs_decode_many(codewords: np.ndarray, t: int = 4, copy: bool = True) -> BatchDecode:
    """Decode a batch: syndromes of every codeword in one numpy pass; the few with a non-zero
    syndrome go through a vectorised Berlekamp-Massey / Chien / Forney decoder together.
    ``copy=False``: a caller that owns a fresh uint8 array lets the corrections go in place."""
    if t not in (2, 4):
        raise ValueError("t must be 2 or 4")
    cw = np.array(codewords, dtype=np.uint8, copy=True) if copy else \
        np.asarray(codewords, dtype=np.uint8)
    M = cw.shape[0]
    ok = np.ones(M, dtype=bool)
    corrected = np.zeros(M, dtype=np.int64)
    syn = rs_syndromes_many(cw)
    dirty = np.nonzero(syn)[0]
    if dirty.size:
        fixed, good = _decode_batch(cw[dirty], syn[dirty], t)
        corrected[dirty] = np.count_nonzero(fixed != cw[dirty], axis=1)
        ok[dirty] = good
        cw[dirty] = fixed
    return BatchDecode(cw, ok, corrected, int(dirty.size))
