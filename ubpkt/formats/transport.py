"""Transport headers: RTPH, UTPH, CTPH, CETPH, SAETPH, UPIH, EIDH, CIPH (UB 2.0 ch. 6, App B)."""
from .core import Field as F, Header, R, register
from . import enums as E

# UB 2.0 §6.2.1 Fig 6-8, Table 6-2.  TPOpcode[7] is the "last packet" flag (ub.rtph.last).
RTPH = register(Header("rtph", "rtph", "Reliable Transport Header", "UB 2.0 §6.2.1", (
    F("last", 1), F("tpopcode", 7, enum=E.TPOPCODE), F("tpver", 2), F("padding", 2, auto=True),
    F("nlp", 4, enum=E.RTPH_NLP), F("srctpn", 24), F("dsttpn", 24), F("a", 1), F("f", 1), R(6),
    F("psn", 24), F("rspst", 3, enum=E.TP_RSPST), F("rspinfo", 5), F("tpmsn", 24))))
# ns-3-UB labels byte 8 bit 6 "ErrorFlag"; it is the spec's F bit and is always 0 there.
UTPH = register(Header("utph", "utph", "Unreliable Transport Header", "UB 2.0 §6.2.1", (
    F("last", 1), F("tpopcode", 7, enum=E.TPOPCODE), F("tpver", 2), F("padding", 2, auto=True),
    F("nlp", 4, enum=E.RTPH_NLP), R(16), R(96))))
CTPH = register(Header("ctph", "ctph", "Compact Transport Header", "UB 2.0 §6.2.1", (
    F("tpopcode", 2, enum=E.CTP_OPCODE), F("padding", 2, auto=True),
    F("nlp", 4, enum=E.CTPH_NLP))))

# UB 2.0 §6.2.2: congestion extension headers (which variant a channel uses: reference profile).
CETPH_LDCP = register(Header("cetph_ldcp", "cetph", "CETPH (LDCP)", "UB 2.0 §6.2.2", (
    F("ack_seq", 32), F("ce_seq", 32))))
CETPH_CAQM = register(Header("cetph_caqm", "cetph", "CETPH (CAQM)", "UB 2.0 §6.2.2", (
    F("ack_seq", 32), R(6), F("loc", 1), F("i", 1), F("c", 8), F("hint", 16))))
# ns-3-UB's CAQM CETPH (bit-field union, x86-64 GCC): Hint, C, then I and Loc (dialect §5.2).
CETPH_CAQM_NS3 = register(Header("cetph_caqm_ns3", "cetph", "CETPH (CAQM, ns-3-UB)",
                                 "UB 2.0 §6.2.2", (
    F("ack_seq", 32), F("hint", 16), F("c", 8), F("i", 1), F("loc", 1), R(6))))
CETPH_CNP = register(Header("cetph_cnp", "cetph", "CETPH (CNP)", "UB 2.0 §6.2.2", (
    F("ecn", 2, enum=E.CNP_ECN), F("loc", 1), R(5), R(120))))

# UB 2.0 §6.2.3: SAETPH, followed by a bitmap of 8 << bitmapsize bytes.
SAETPH = register(Header("saetph", "saetph", "Selective ACK Extended TPH", "UB 2.0 §6.2.3", (
    R(5), F("bitmapsize", 3, enum={k: f"{v}bit" for k, v in E.SACK_BITMAP_BITS.items()}),
    F("maxrcvpsn", 24))))

# UB 2.0 App B.3: UPIH, 16- and 32-bit forms.
UPIH16 = register(Header("upih16", "upih", "UPI Header (16 bit)", "UB 2.0 App B.3", (
    R(1), F("upi", 15))))
UPIH32 = register(Header("upih32", "upih", "UPI Header (32 bit)", "UB 2.0 App B.3", (
    R(8), F("upi", 24))))
# UB 2.0 App B.4: EIDH, 20-bit compact EIDs (40 bits) or 128-bit EIDs (256 bits), MSB first.
EIDH40 = register(Header("eidh40", "eidh", "EID Header (20-bit EIDs)", "UB 2.0 App B.4", (
    F("seid", 20), F("deid", 20))))
EIDH256 = register(Header("eidh256", "eidh", "EID Header (128-bit EIDs)", "UB 2.0 App B.4", (
    F("seid", 128, fmt="eid"), F("deid", 128, fmt="eid"))))

# CIPH: the spec gives only its semantics (UB 2.0 §11); this layout is the reference profile's
# placeholder (profile G9), not a spec fact.  NLP: 0 UPI32+EID256+TAH, 1 UPI16+EID40+TAH, 2 TAH.
CIPH = register(Header("ciph", "ciph", "Confidentiality/Integrity Protection Header "
                       "(reference-profile placeholder)", "UB 2.0 §11 (layout: profile G9)", (
    F("cip_id", 16), R(4), F("nlp", 4, enum={0: "UPI32_EID256_TAH", 1: "UPI16_EID40_TAH",
                                             2: "TAH"}), R(8), F("sn", 32))))
