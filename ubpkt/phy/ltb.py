"""Link management blocks: the four LTBs and the EEIB (UB 2.0 §3.4.1, Tables 3-12..3-19).

Every LTB is 16 symbols: symbols 0..11 carry the fields, 12/13 CRC[7:0]/CRC[15:8] over symbols
0..11 (polynomial 0x5935; init/bit order are profile choices, gap G2), 14/15 the 0x5A pad.
Reserved bits are sent as 0 and ignored on receive (they are not kept by the decoders).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from .profile import DEFAULT_PROFILE, PhyProfile

__all__ = [
    "ltb_crc16", "DLTB", "CLTB", "RLTB", "ELTB", "encode_ltb", "decode_ltb", "LtbError",
    "width_code", "width_from_code", "eeib", "EEIB_COUNT", "DLTB_TYPES", "CLTB_TYPES",
    "RLTB_TYPES", "ELTB_TYPE", "LANE0_CODES", "EQ_MODES", "FEC_MODES",
]


class LtbError(ValueError):
    pass


def _crc_table(poly: int) -> list[int]:
    t = []
    for b in range(256):
        c = b << 8
        for _ in range(8):
            c = ((c << 1) ^ poly) if c & 0x8000 else (c << 1)
        t.append(c & 0xFFFF)
    return t


_CRC_TABLES: dict[int, list[int]] = {}


def ltb_crc16(body: bytes, profile: PhyProfile = DEFAULT_PROFILE) -> int:
    """CRC-16 over LTB symbols 0..11 (profile: MSB first, init 0xFFFF, no final XOR)."""
    t = _CRC_TABLES.get(profile.ltb_crc_poly)
    if t is None:
        t = _CRC_TABLES[profile.ltb_crc_poly] = _crc_table(profile.ltb_crc_poly)
    c = profile.ltb_crc_init
    for b in body:
        c = ((c << 8) & 0xFFFF) ^ t[((c >> 8) ^ b) & 0xFF]
    return c


DLTB_TYPES = {0xA0: "discovery_active", 0xA1: "discovery_confirm", 0xE0: "rxeq_optimize"}
CLTB_TYPES = {0xB0: "config_active", 0xB1: "config_check", 0xB2: "config_confirm"}
RLTB_TYPES = {0xC0: "retrain_active", 0xC1: "retrain_confirm", 0xC2: "retrain_lp1_phy_up",
              0xC3: "retrain_eq_initial"}
ELTB_TYPE = 0xD0
LANE0_CODES = {0: 0b000, 1: 0b001, 3: 0b011, 7: 0b100}  # physical lane -> RX_Lane0_ID code
_LANE0_BY_CODE = {v: k for k, v in LANE0_CODES.items()}
EQ_MODES = {0: "full_eq", 1: "only_highest_rate_eq", 2: "skip_eq"}
FEC_MODES = {0: "bypass", 1: "rs_t2", 2: "rs_t4"}
_WIDTHS = {1: 0x01, 2: 0x02, 4: 0x04, 8: 0x08}
EEIB_COUNT = {"2.578125": 1, "4.0": 1, "25.78125": 2, "53.125": 4, "106.25": 8}


def width_code(width: int) -> int:
    """Link width -> the one-hot TLW/RLW code (x1/x2/x4/x8)."""
    return _WIDTHS[width]


def width_from_code(code: int) -> int | None:
    """TLW/RLW bits [5:0] -> width, None when reserved."""
    for w, c in _WIDTHS.items():
        if code & 0x3F == c:
            return w
    return None


@dataclass
class DLTB:
    """Discovery LTB (Table 3-12); also used in RXEQ_Optimize."""

    type: int = 0xA0
    link_id: int = 0xFF
    lane_id: int = 0xFF
    tlw: int = 0x08
    rlw: int = 0x08
    data_rates: int = 0x001  # bit n = Data Rate n (DR0..DR8)
    fec_support: int = 0b11  # b0 RS T=2, b1 RS T=4
    port_type: int = 0  # 1 = primary
    random_value: int = 0  # 1..127, 0 = NULL
    fec_interleave_support: int = 0  # b0 x1 .. b3 x8
    rx_lane0: int = 0  # physical lane of logical RX lane 0 (0, 1, 3 or 7)
    max_link_width: int = 8

    def body(self) -> bytes:
        b = bytearray(12)
        b[0] = self.type
        b[1] = self.link_id
        b[2] = self.lane_id
        b[3] = self.tlw & 0x3F
        b[4] = self.rlw & 0x3F
        b[5] = self.data_rates & 0xFF
        b[6] = (self.data_rates >> 8) & 0x01
        b[7] = self.fec_support & 0x03
        b[8] = (self.port_type & 1) | ((self.random_value & 0x7F) << 1)
        b[10] = self.fec_interleave_support & 0x0F
        b[11] = LANE0_CODES[self.rx_lane0] | ({1: 0, 2: 1, 4: 2, 8: 3}[self.max_link_width] << 3)
        return bytes(b)

    @classmethod
    def from_body(cls, b: bytes) -> "DLTB":
        code = b[11] & 7
        if code not in _LANE0_BY_CODE:
            raise LtbError(f"reserved RX_Lane0_ID code {code}")
        mlw = (b[11] >> 3) & 7
        if mlw > 3:
            raise LtbError(f"reserved MAX_LINK_WIDTH code {mlw}")
        return cls(type=b[0], link_id=b[1], lane_id=b[2], tlw=b[3] & 0x3F, rlw=b[4] & 0x3F,
                   data_rates=b[5] | ((b[6] & 1) << 8), fec_support=b[7] & 3,
                   port_type=b[8] & 1, random_value=b[8] >> 1,
                   fec_interleave_support=b[10] & 0x0F, rx_lane0=_LANE0_BY_CODE[code],
                   max_link_width=1 << mlw)


@dataclass
class CLTB:
    """Config LTB (Table 3-13)."""

    type: int = 0xB0
    link_id: int = 0xFF
    lane_id: int = 0xFF
    tlw: int = 0x08
    rlw: int = 0x08
    eq_mode: int = 2  # 0 Full_EQ, 1 Only_Highest_Data_Rate_EQ, 2 Skip_EQ
    fec_mode: int = 2  # 0 bypass, 1 RS T=2, 2 RS T=4
    fec_interleave: int = 0

    def body(self) -> bytes:
        b = bytearray(12)
        b[0], b[1], b[2] = self.type, self.link_id, self.lane_id
        b[3], b[4] = self.tlw & 0x3F, self.rlw & 0x3F
        b[6] = (self.eq_mode & 3) | ((self.fec_mode & 7) << 2) | ((self.fec_interleave & 1) << 5)
        return bytes(b)

    @classmethod
    def from_body(cls, b: bytes) -> "CLTB":
        return cls(type=b[0], link_id=b[1], lane_id=b[2], tlw=b[3] & 0x3F, rlw=b[4] & 0x3F,
                   eq_mode=b[6] & 3, fec_mode=(b[6] >> 2) & 7, fec_interleave=(b[6] >> 5) & 1)


@dataclass
class RLTB:
    """Retrain LTB (Table 3-14).  ``eq_ctrl1..3`` hold symbols 2..4 raw (their meaning depends on
    the type and modulation: post/pre-cursor/cursor, or Local_HS/Local_LS/Remote_Initial_TX_Preset
    for Retrain.EQ_Initial)."""

    type: int = 0xC0
    eq_ctrl1: int = 0
    eq_ctrl2: int = 0
    eq_ctrl3: int = 0
    data_rates: int = 0x001
    change_speed: int = 0
    fec_mode: int = 2
    fec_crc_reject: int = 0
    ber_status: int = 0
    fec_interleave: int = 0
    fec_interleave_reject: int = 0
    request_eq: int = 0
    crc_mode: int = 1  # 0 no CRC, 1 CRC30
    local_tx_preset: int = 0
    first_pre_cursor: int = 0

    def body(self) -> bytes:
        b = bytearray(12)
        b[0] = self.type
        b[2] = self.eq_ctrl1 & 0x3F
        b[3] = self.eq_ctrl2 & 0xFF
        b[4] = self.eq_ctrl3 & 0xFF
        b[5] = self.data_rates & 0xFF
        b[6] = ((self.data_rates >> 8) & 1) | ((self.change_speed & 1) << 7)
        b[7] = (self.fec_mode & 7) | ((self.fec_crc_reject & 1) << 3) | \
            ((self.ber_status & 3) << 4) | ((self.fec_interleave & 1) << 6) | \
            ((self.fec_interleave_reject & 1) << 7)
        b[9] = (self.request_eq & 1) << 7
        b[10] = (self.crc_mode & 7) | ((self.local_tx_preset & 0xF) << 4)
        b[11] = self.first_pre_cursor & 0x3F
        return bytes(b)

    @classmethod
    def from_body(cls, b: bytes) -> "RLTB":
        return cls(type=b[0], eq_ctrl1=b[2] & 0x3F, eq_ctrl2=b[3], eq_ctrl3=b[4],
                   data_rates=b[5] | ((b[6] & 1) << 8), change_speed=b[6] >> 7,
                   fec_mode=b[7] & 7, fec_crc_reject=(b[7] >> 3) & 1, ber_status=(b[7] >> 4) & 3,
                   fec_interleave=(b[7] >> 6) & 1, fec_interleave_reject=b[7] >> 7,
                   request_eq=b[9] >> 7, crc_mode=b[10] & 7, local_tx_preset=b[10] >> 4,
                   first_pre_cursor=b[11] & 0x3F)


@dataclass
class ELTB:
    """Equalization LTB (Table 3-15)."""

    type: int = ELTB_TYPE
    eq_reject: int = 0
    eq_phase: int = 0  # 0 Coarsetune_Active, 1 Coarsetune_Confirm, 2/3 Active/Passive
    preset_mode: int = 0
    tx_preset: int = 0
    eq_ctrl2: int = 0  # pre-cursor (NRZ) or 2nd/3rd pre-cursor (PAM4), raw
    post_cursor: int = 0
    cursor: int = 0
    first_pre_cursor: int = 0

    def body(self) -> bytes:
        b = bytearray(12)
        b[0] = self.type
        b[1] = (self.eq_reject & 1) << 5
        b[2] = (self.eq_phase & 3) | ((self.preset_mode & 1) << 3) | ((self.tx_preset & 0xF) << 4)
        b[3] = self.eq_ctrl2 & 0xFF
        b[4] = self.post_cursor & 0x3F
        b[5] = self.cursor & 0xFF
        b[6] = self.first_pre_cursor & 0x3F
        return bytes(b)

    @classmethod
    def from_body(cls, b: bytes) -> "ELTB":
        return cls(type=b[0], eq_reject=(b[1] >> 5) & 1, eq_phase=b[2] & 3,
                   preset_mode=(b[2] >> 3) & 1, tx_preset=b[2] >> 4, eq_ctrl2=b[3],
                   post_cursor=b[4] & 0x3F, cursor=b[5], first_pre_cursor=b[6] & 0x3F)


def encode_ltb(ltb, profile: PhyProfile = DEFAULT_PROFILE) -> bytes:
    """Any LTB dataclass -> its 16 symbols (before scrambling)."""
    body = ltb.body()
    crc = ltb_crc16(body, profile)
    return body + bytes([crc & 0xFF, crc >> 8, profile.ltb_pad, profile.ltb_pad])


def decode_ltb(symbols: bytes, profile: PhyProfile = DEFAULT_PROFILE):
    """16 descrambled symbols -> DLTB/CLTB/RLTB/ELTB; raises :class:`LtbError` on a CRC failure
    or an unknown type."""
    s = bytes(symbols)
    if len(s) != 16:
        raise LtbError("an LTB has 16 symbols")
    crc = ltb_crc16(s[:12], profile)
    if s[12] != crc & 0xFF or s[13] != crc >> 8:
        raise LtbError("LTB CRC mismatch")
    t = s[0]
    if t in DLTB_TYPES:
        return DLTB.from_body(s)
    if t in CLTB_TYPES:
        return CLTB.from_body(s)
    if t in RLTB_TYPES:
        return RLTB.from_body(s)
    if t == ELTB_TYPE:
        return ELTB.from_body(s)
    raise LtbError(f"reserved LTB type 0x{t:02X}")


def ltb_fields(ltb) -> dict:
    return {f.name: getattr(ltb, f.name) for f in fields(ltb)}


def eeib(rate: str) -> bytes:
    """The EEIB sequence for a data rate ('2.578125', '4.0', '25.78125', '53.125', '106.25').

    Tables 3-16..3-19: runs of 0x00 then 0xFF symbols; the sequence length is EEIB_COUNT x 16
    symbols; the run length gives 8/32 equal bits (NRZ) or 32/64 equal levels (PAM4)."""
    run = {"2.578125": 1, "4.0": 1, "25.78125": 4, "53.125": 8, "106.25": 16}
    if rate not in run:
        raise ValueError(f"no EEIB defined for rate {rate!r} (custom rates are vendor-defined)")
    r = run[rate]
    n = 16 * EEIB_COUNT[rate]
    return bytes(0x00 if (i // r) % 2 == 0 else 0xFF for i in range(n))
