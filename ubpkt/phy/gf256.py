"""GF(2^8) arithmetic with primitive polynomial x^8+x^4+x^3+x^2+1 (0x11D), alpha = 2.

UB 2.0 §3.2.2.1: RS-FEC symbols are 8-bit, bit k is the coefficient of alpha^k.
"""
from __future__ import annotations

import numpy as np

PRIM = 0x11D

EXP = [0] * 512
LOG = [0] * 256
_x = 1
for _i in range(255):
    EXP[_i] = _x
    LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= PRIM
for _i in range(255, 512):
    EXP[_i] = EXP[_i - 255]
del _x, _i

EXP_NP = np.array(EXP, dtype=np.int64)
LOG_NP = np.array(LOG, dtype=np.int64)


def mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("GF(256) division by zero")
    if a == 0:
        return 0
    return EXP[(LOG[a] - LOG[b]) % 255]


def pow_alpha(e: int) -> int:
    return EXP[e % 255]


def inv(a: int) -> int:
    return div(1, a)


def _mul_table() -> np.ndarray:
    a = np.arange(256)
    la = LOG_NP[a]
    t = EXP_NP[(la[:, None] + la[None, :]) % 255]
    t[0, :] = 0
    t[:, 0] = 0
    return t.astype(np.uint8)


MUL = _mul_table()
