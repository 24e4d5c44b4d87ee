"""Reference profile for the points the UB 2.0 PHY chapter leaves open.

Every choice that the specification text does not fix (it is either vendor-defined or shown only in
a figure) lives here, in one frozen dataclass with documented defaults, so that nothing in
``ubpkt.phy`` is a silent constant.  Construct a variant with ``dataclasses.replace``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["PhyProfile", "DEFAULT_PROFILE", "default_seed_table"]


def default_seed_table() -> tuple[int, ...]:
    """Default per-lane PRBS23 seeds, indexed by lane ID 0..7 (entry 8 = NULL lane).

    Profile choice (gap G1): all-ones 23-bit register XOR the lane ID shifted into the upper bits,
    so every lane starts from a different non-zero state.
    """
    return tuple(0x7FFFFF ^ (lane << 15) ^ lane for lane in range(9))


@dataclass(frozen=True)
class PhyProfile:
    """Reference-profile parameters of the PHY (not from the spec unless said so).

    Scrambler (UB 2.0 §3.2.2.4 says additive, per lane, seeded from the lane ID, LSB first; the
    polynomial is the PRBS23 one of §3.2.6; LFSR form and seeds are figure-only):

    * ``prbs_taps``: the recurrence ``b[n] = b[n-23] ^ b[n-18]`` (x^23 + x^18 + 1).
    * ``scrambler_seeds``: the initial 23 bits ``b[0..22]`` (bit k of the seed = ``b[k]``) per lane
      ID; entry 8 is used for the NULL lane ID.
    * The LFSR advances only over scrambled symbols (LTB and DLL data); it holds during AMCTL and
      EEIB symbols (choice).
    * ``sdf_scrambler_offset``: a lane file produced by ``ubpkt phy tx`` starts at the AMCTL with
      SDF; the scrambler state carried over from training is not in the file, so the first data
      symbol uses keystream position ``sdf_scrambler_offset`` (in scrambled symbols since the seed
      load) on every lane; default 0 = freshly loaded seed (choice).

    LTB CRC-16 (polynomial 0x5935 from §3.4.1.1; the rest is gap G2): ``ltb_crc_init`` 0xFFFF,
    processed MSB first over symbols 0..11, no reflection, no final XOR; CRC[7:0] (CRCL) goes in
    symbol 12 and CRC[15:8] in symbol 13 as the spec's tables name them.

    AMCTL (§3.2.4):

    * ``period0`` (vendor-defined in the spec; 6656 is the figure of public course material),
      ``period1`` = 640 (the spec's default), ``training_period`` = 512 (= 32 LTBs, from the spec).
      A period is the number of non-AMCTL symbols per lane between two AMCTLs.
    * ``byte_a_first``: within each eBCH-16 word Byte_A goes on the lane before Byte_B (gap G4);
      the 16-bit group [63:48] is sent first.
    * ``lock_confirm_count``: valid AMCTLs needed in AMCTL_Confirm (spec: configurable) = 2.
    * ``lock_loss_count``: consecutive misses in AMCTL_Lock_Count before slip/retrain = 3.
    * ``end_search_max_bit_errors``: bit errors tolerated in the 32-bit END while sliding (eBCH-16
      then confirms, 3 per word) = 6.
    * ``quick_degrade_misses``: consecutive AMCTL misses that trigger quick width degradation
      (§3.4.2.4: 0 < N < 255, default 3).

    PAM4 (§3.2.5.1 and Table 3-6): the bit pair (bit 2k+1, bit 2k) of a symbol forms UI k, odd bit
    the MSB, UI 0 first (gap G20, same rule as the AMCTL table).  Gray coding applies to scrambled
    symbols and to the AMCTL (Table 3-6); EEIB levels are the raw pair values (Tables 3-18/3-19).

    Lane IDs (§3.2.4.2): the RX takes a lane's ID once two consecutive AMCTLs carry the same
    valid LID.  ``lid_single_amctl_capture`` (choice, default on): a *finite* lane capture whose
    lane carries only one AMCTL (the stream ended before the second was due) takes that LID; the
    spec's rule is for a running link, where the next AMCTL always comes.  The report lists such
    lanes (``lane_ids_single_amctl``).

    Probe (§3.4.3.2): on partial termination the port waits and detects again;
    ``probe_redetect_blocks`` (implementation-defined wait) = 4 block times.

    ``precode``: the §3.3.2 precoder on scrambled UIs (on by default; the spec makes the PMA
    provide it, whether a given link enables it is a vendor/config matter).
    """

    prbs_taps: tuple[int, int] = (23, 18)
    scrambler_seeds: tuple[int, ...] = field(default_factory=default_seed_table)
    sdf_scrambler_offset: int = 0
    ltb_crc_poly: int = 0x5935
    ltb_crc_init: int = 0xFFFF
    ltb_pad: int = 0x5A
    period0: int = 6656
    period1: int = 640
    training_period: int = 512
    byte_a_first: bool = True
    lock_confirm_count: int = 2
    lock_loss_count: int = 3
    end_search_max_bit_errors: int = 6
    quick_degrade_misses: int = 3
    precode: bool = True
    lid_single_amctl_capture: bool = True
    probe_redetect_blocks: int = 4

    def seed_for_lane(self, lane_id: int | None) -> int:
        """Scrambler seed for a lane ID (``None`` or 0xFF = NULL lane)."""
        if lane_id is None or lane_id == 0xFF:
            return self.scrambler_seeds[8]
        return self.scrambler_seeds[lane_id]

    def with_(self, **kw) -> "PhyProfile":
        return replace(self, **kw)


DEFAULT_PROFILE = PhyProfile()
