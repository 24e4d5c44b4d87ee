"""The reference profile: every choice the UB 2.0 text leaves open, in one place.

Nothing here is a spec fact.  Each attribute names the gap it fills (``G<n>`` refers to the gap
list of the project's spec notes, §12) and can be changed per decode/encode call or loaded from a
JSON file (``ubpkt decode --profile FILE``).  Two profiles ship: ``SPEC`` (the reference profile)
and ``NS3`` (the dialect of the ns-3-UB simulator, selected for pcap linktype 147).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace

from .errors import ProfileError

__all__ = ["Profile", "Tuning", "TransportTuning", "TransactionTuning", "SPEC", "NS3", "load_profile", "PROFILES",
           "profile_for"]


@dataclass(frozen=True)
class TransportTuning:
    """The reference stack's transport engines (UB 2.0 ch. 6).  Spec ranges in the comments."""

    #: §6.4.2: "gbn" (Go-Back-N) or "sr" (selective retransmission), with or without fast
    #: retransmission (on a TPNAK / a TPSACK gap) besides the RTO, which is always on.
    retransmission: str = "gbn"
    fast_retransmit: bool = True
    #: §6.4.1: the out-of-order PSN range the receiver accepts: 128, 256, 512, 1024 or 2048.
    oor_window: int = 1024
    #: §6.4.2.1: "static" (one of 512 us, 16 ms, 128 ms, 4 s) or "dynamic": Base_time x
    #: 2^(N x retransmissions), Base_time 4 us .. 2.097152 s.
    rto_mode: str = "static"
    rto_static_ns: int = 512_000
    rto_base_ns: int = 20_000
    rto_exp_n: int = 3
    #: consecutive timeout retransmissions before the channel reports the retry error (§6.4.2.1)
    retry_limit: int = 7
    #: RNR: how often a sender retries after an RNR TPNAK (7 = for ever, as the URMA API's
    #: rnr_retry); the RNR timer code a receiver sends (timeout 2 us x 2^code, codes 0..19).
    rnr_retry: int = 7
    rnr_timer_code: int = 3
    #: first congestion control: a fixed window of unacknowledged TP packets per channel (§6.6.1.1
    #: describes window-based control; the window size is this implementation's choice).
    window: int = 512
    #: ACK coalescing: the sender sets the A bit (ACK required) on every Nth packet and on the
    #: last packet of a transaction; the receiver acknowledges A packets (and any gap) at once.
    ack_every: int = 16
    #: whether a receiver folds the packets taken since its last response into one cumulative
    #: TPACK (True), or answers every in-order data packet with its own TPACK, each with its
    #: PSN, TPMSN and CETPH (False: what ns-3-UB does, dialect notes §5.6).
    ack_coalesce: bool = True
    #: TPSACK bitmap size in bits (64..1024, §6.2.3) for selective retransmission.
    sack_bitmap_bits: int = 256


@dataclass(frozen=True)
class TransactionTuning:
    """The reference stack's transaction engines (UB 2.0 ch. 7)."""

    #: payload bytes per TP packet (segmentation by MTU, §7.3): 256 .. 8192 in the URMA MTU enum
    mtu: int = 4096
    #: requests in flight per initiator before post() is refused (a resource limit)
    max_outstanding: int = 4096
    #: receive buffers posted per target queue for Send (§7.4 Send, RNR when none, §6.2.1 RSPST)
    recv_queue_depth: int = 256
    #: TAACKs a target may aggregate into one (ATAH RSPINFO counts the extra ones, Table 7-3)
    taack_aggregate: int = 8
    #: atomics remembered for replay (executed once; a retried atomic gets the saved result)
    atomic_replay_entries: int = 1024
    #: how long (ns) a target holds a TAACK to aggregate more before sending it anyway
    taack_hold_ns: int = 2000
    #: aggregate the TAACKs of consecutive transactions too (contiguous TASSNs of one
    #: initiator-target pair, §7.3.1.1), not only the segments of one: fewer responses, each
    #: completion up to taack_hold_ns later
    taack_across_transactions: bool = True


@dataclass(frozen=True)
class Tuning:
    """How this implementation's engines run: thresholds, timers, buffer sizes and what they
    advertise.  None of it changes how a packet is laid out or read; the data link (UB 2.0 ch. 4)
    and the stack (ch. 6-7) take their settings from here.  Spec recommendations: "rec.".
    """

    #: §4.7.3.3 rec.: retry thresholds; WAIT timeout (ns; rec. > 2 x link delay, 1 us..10 s).
    num_retry_threshold: int = 15
    num_phy_reinit_threshold: int = 4
    retry_wait_timeout_ns: int = 10_000
    #: A block left incomplete with no new flit for this long (ns) is treated like a failed
    #: block (Go-Back-N request).  Only matters when the PHY does not fill an idle link with
    #: Null blocks (§4.3.3.2); a corrupted LCH/PLENGTH would otherwise wait for ever.
    rx_stall_timeout_ns: int = 10_000
    #: Retry buffer depth advertised in Init (flits; not negotiated, §4.3.3.9).
    retry_buf_depth: int = 2048
    #: §4.7.3.2.4: flits of the retry buffer kept back for an ACK-carrying Crd_Ack (lock-out
    #: prevention threshold).
    retry_lockout_reserve: int = 2
    #: Init advertisement (bitmaps, bit k = 2**k; §4.4 Table 4-9 / default capabilities).
    dll_feature_id: int = 1
    dll_vl_enable: int = 0x0001
    dll_data_ack_grain: int = 0x20
    dll_ctrl_ack_grain: int = 0x01
    dll_flow_ctrl_size: int = 0x08
    dll_data_credit_grain: int = 0x04
    dll_ctrl_credit_grain: int = 0x01
    dll_packet_min_interval: int = 0
    dll_init_flits: int = 5
    #: §4.6.1: receive buffer in cells, split evenly over the enabled VLs (exclusive mode) and
    #: advertised in Crd_Ack T=1 blocks; RXBUF_VL_SHARE advertised; whether this end, as a sender,
    #: uses shared credits when the peer allows it, and the exclusive reserve per VL then.
    rx_buffer_cells: int = 1024
    rxbuf_vl_share: int = 0
    use_shared_credits: bool = False
    shared_reserve_cells: int = 8
    #: §4.6.3: force a Crd_Ack when this many cells are owed on one VL, or this many flits are
    #: un-ACKed, even while DLLDPs are queued.
    crd_ack_force_cells: int = 32
    ack_force_flits: int = 128
    #: §4.8.1 DL Protocol Error: credits outstanding without any return for this long (ns).
    credit_return_timeout_ns: int = 100_000_000
    #: The receiving network layer consumes a DLLDP as soon as it is delivered (frees its cells).
    rx_auto_release: bool = True
    # -- the reference stack (ubpkt.stack; UB 2.0 ch. 6-7) --
    transport: TransportTuning = field(default_factory=TransportTuning)
    transaction: TransactionTuning = field(default_factory=TransactionTuning)


@dataclass(frozen=True)
class Profile:
    """The wire choices: every point where the UB 2.0 text leaves a format or a rule open, and
    the ns-3-UB dialect's departures.  ``tuning`` holds the runtime settings."""

    name: str = "spec"
    #: G12: byte order of the 4 ICRC bytes; "little" stores crc32 least significant byte first,
    #: as RoCEv2 does.
    icrc_byteorder: str = "little"
    #: Whether ICRCs are present at all (the ns-3-UB simulator sends none).
    icrc: bool = True
    #: §10.4.3.1 leaves the enumeration-packet ICRC to the administrator.
    enum_icrc: bool = False
    #: CFG-5 GUID-addressed frames: no ICRC is described for them (App F.2).
    cfg5_icrc: bool = False
    #: CFG-5 protocol 0x0109 (LLDP): App F.2 gives no layout; ub-lldpd, its only sender, puts an
    #: Ethernet header (01:80:c2:00:00:0e, its MAC, 0x88CC) before the TLVs.  On: a payload that
    #: starts with that destination address is read as that header, anything else as bare TLVs;
    #: off: always bare TLVs.
    cfg5_lldp_eth: bool = True
    #: Where BitMap[i] of a TPSACK's SAETPH sits (UB 2.0 §6.2.3 gives BitMap[0] = RTPH.PSN; its
    #: Field[i] notation counts from the least significant bit): ``field_lsb`` (the bitmap as
    #: one big-endian number, BitMap[i] its bit i), ``byte_lsb`` (ns-3-UB: byte i/8, bit i%8
    #: from that byte's LSB) or ``msb_first`` (BitMap[0] first on the wire).
    #: ``ubpkt.formats.sack``.
    sack_bit_order: str = "field_lsb"
    #: Which CETPH variant a TP channel uses, LDCP or CAQM (§6.2.2 makes it per channel).
    cetph_variant: str = "caqm"
    #: G13: full or compact TAH on CFG 6/7 packets (CFG 9 always uses the compact forms).
    cna_tah_form: str = "full"
    #: G10: whether TP responses (TPACK/TPNAK/TPSACK) carry an ATAH after their extension headers
    #: (a TAACK opcode with the INI_TASSN of the acknowledged data packet, as ns-3-UB sends it).
    tp_response_atah: bool = False
    #: Whether a TP response repeats the acknowledged data packet's TPOpcode[7] (last) and A
    #: bit (ns-3-UB copies the data packet's RTPH into its ACK); off: both 0 (UB 2.0 §6.2.1
    #: defines TPOpcode[7] for data packets only).
    tp_response_echo: bool = False
    #: How a target answers over RTP in the full form (UB 2.0 §7.2.2, §7.4): ``atah`` (the
    #: spec's ATAH, with its extension headers), or ``btah_maetah`` (ns-3-UB: the response
    #: TAOpcode in a BTAH with the request's INI_TASSN/INI_RC, then a MAETAH whose Length is the
    #: data bytes that follow; a TAACK carries one dummy zero byte, Length 1).  That form has no
    #: RSPST/RSPINFO: no TAACK aggregation, and an error answer is marked by BTAH.Poison 1
    #: (reference-profile choice: ns-3-UB sends no error responses).
    ta_response_form: str = "atah"
    #: Whether a sender pads the TP body to 4 bytes (RTPH/UTPH/CTPH Padding, UB 2.0 §6.2.1);
    #: ns-3-UB sends unpadded bodies with Padding 0.
    pad_tp_body: bool = True
    #: Bytes of a Write covered by one TASSN: 0 = one TASSN (and one TAACK) per MTU packet (the
    #: reference reading of §7.3.1.1); N = one TASSN per N bytes, all its packets sharing it,
    #: RTPH Last on its final packet, one TAACK after that packet (ns-3-UB: 64 KiB TA segments).
    write_tassn_bytes: int = 0
    #: Optional headers the BTAH flags cannot announce (§7.4 Table 7-2/7-4): whether Read,
    #: atomic requests and their responses carry TAIDETAH and OFSTETAH.
    read_taidetah: bool = False
    read_ofstetah: bool = False
    atomic_taidetah: bool = False
    read_response_taidetah: bool = False
    read_response_ofstetah: bool = False
    atomic_response_taidetah: bool = False
    #: UDP destination ports recognised as UB (4792 per §5.2.3; 4791 was used by pre-2.0 UDMA).
    ub_udp_ports: tuple = (4792,)
    #: Treat every UDP datagram over a CFG 3/4 native packet as UB, whatever its port (ns-3-UB).
    any_udp_port_is_ub: bool = False
    #: G6/§4.7.2: DLLCBs in packet captures end with a BCRC, whose CRC30 also covers the two
    #: information bits before it.  "Covers all data before the CRC30 field" is read as: every
    #: block byte before BCRC byte 16, then the reserved bit and ERROR_FLAG (the two bits that
    #: precede CRC30 in transmission order), register preset to all ones.
    dllcb_bcrc: bool = True
    bcrc_covers_info: bool = True
    #: Check the LPH PLENGTH against the packet length (CRC-mode framing).
    check_plength: bool = True
    crc_mode: bool = True
    #: Dialect quirks (ns-3-UB): LPH RT bits swapped, little-endian CNA16 words, ns-3's CETPH,
    #: ATAH and compact MAETAH layouts, Crd_Ack credits in reverse VL order.
    lph_rt_swapped: bool = False
    cna_little_endian: bool = False
    ns3_layouts: bool = False
    crd_ack_vl0_first: bool = False
    #: CCI word bits of ns-3-UB's CNA headers can be uninitialised stack bytes: don't-care.
    cci_dont_care_on_cna: bool = False
    #: §5.3: UDP checksum 0, IPv4 DF set; deviations are warnings unless relaxed (ns-3-UB).
    check_udp_zero_checksum: bool = True
    check_ipv4_df: bool = True
    #: §5.3.3.1: NPI 0 is invalid for IP packets (ns-3-UB never sets it).
    check_npi: bool = True
    #: A CTP CNP carries the 16-byte CNP CETPH (ns-3-UB's carries nothing after the CTPH).
    ctp_cnp_cetph: bool = True
    #: G9: CIPH placeholder layout is used when an NLP announces CIPH; its ICV length (bytes).
    ciph_icv_len: int = 12

    # -- data-link layer (ubpkt.link; UB 2.0 ch. 4).  Spec recommendations are marked "rec." --
    #: Non-CRC mode: False = §4.7.3.2.2 as written (RcvPtr counts every correct flit, resending
    #: starts at the failed flit, possibly inside a block); True = restart at the failed block's
    #: first flit (RcvPtr per accepted block, as in CRC mode).
    noncrc_block_granular_retry: bool = False
    #: Runtime tuning of the engines (not a wire choice): see :class:`Tuning`.
    tuning: "Tuning" = field(default_factory=lambda: Tuning())

    def with_(self, **kw) -> "Profile":
        """A copy with attributes replaced; :class:`Tuning` attributes may be given here too."""
        tune = {k: kw.pop(k) for k in list(kw) if k in _TUNING_KEYS}
        for k, v in tune.items():
            if isinstance(v, dict):     # a nested section given as a mapping (JSON profiles)
                tune[k] = replace(getattr(self.tuning, k), **v)
        if tune:
            kw["tuning"] = replace(kw.get("tuning", self.tuning), **tune)
        return replace(self, **kw)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


_TUNING_KEYS = frozenset(f.name for f in fields(Tuning))

SPEC = Profile()

NS3 = Profile(
    name="ns3", icrc=False, enum_icrc=False, tp_response_atah=True, any_udp_port_is_ub=True,
    dllcb_bcrc=False, check_plength=False, lph_rt_swapped=True, cna_little_endian=True,
    ns3_layouts=True, crd_ack_vl0_first=True, cci_dont_care_on_cna=True,
    check_udp_zero_checksum=False, check_ipv4_df=False, cna_tah_form="compact", check_npi=False,
    ctp_cnp_cetph=False, tp_response_echo=True, ta_response_form="btah_maetah",
    write_tassn_bytes=65536, pad_tp_body=False, sack_bit_order="byte_lsb",
    tuning=Tuning(transport=TransportTuning(ack_coalesce=False)),
)

PROFILES = {"spec": SPEC, "ns3": NS3}


def load_profile(path_or_name: str) -> Profile:
    """A shipped profile by name, or a JSON file of overrides (an optional "base" key names the
    profile it starts from)."""
    if path_or_name in PROFILES:
        return PROFILES[path_or_name]
    with open(path_or_name, encoding="utf-8") as fh:
        data = json.load(fh)
    base = PROFILES[data.pop("base", "spec")]
    tuning = data.pop("tuning", {})
    if not isinstance(tuning, dict):
        raise ProfileError("tuning: an object of Tuning attributes expected")
    known = {f.name for f in fields(Profile)} | _TUNING_KEYS
    unknown = (set(data) - known) | (set(tuning) - _TUNING_KEYS)
    if unknown:
        raise ProfileError(f"unknown profile keys: {', '.join(sorted(unknown))}")
    if "ub_udp_ports" in data:
        data["ub_udp_ports"] = tuple(data["ub_udp_ports"])
    return base.with_(**data, **tuning)


def profile_for(linktype: int | None, profile: Profile | None = None) -> Profile:
    """``profile`` when given, else the one a capture link type implies: ns-3-UB trace records
    (pcap link type 147) are read in the ns3 dialect, everything else in the reference
    profile."""
    if profile is not None:
        return profile
    from .record import LINKTYPE_NS3
    return NS3 if linktype == LINKTYPE_NS3 else SPEC
