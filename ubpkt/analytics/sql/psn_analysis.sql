-- psn_analysis: one row per RTP data packet (UB 2.0 §6.2.1) with the PSN findings of
-- ubpkt.views.analysis: psn_gap (PSNs skipped before this one), psn_backwards (how far behind
-- the highest PSN), out_of_order (fills an earlier gap), retransmission (a PSN seen before, or
-- below the channel's first PSN), duplicate (a retransmission of the previous packet's PSN).
-- A TP channel is (capture, src, dst, srctpn, dsttpn), in frame order.
-- PSNs are 24 bits and wrap: each is unwrapped against the previous packet of its channel
-- (a step of half the PSN space or more counts as backwards), so the running maximum of the
-- unwrapped PSN is analysis.py's "highest PSN".
WITH packets AS (
  SELECT capture, frame, ts_ns, $src AS src, $dst AS dst,
         rtph_srctpn AS srctpn, rtph_dsttpn AS dsttpn, CAST(rtph_psn AS BIGINT) AS psn
  FROM frames
  WHERE rtph_tpopcode IN ($tp_data_opcodes) AND rtph_psn IS NOT NULL
),
-- each channel numbered once, so the window functions sort integers, not address text
channels AS (
  SELECT c.*, ROW_NUMBER() OVER (ORDER BY capture, src, dst, srctpn, dsttpn) AS ch
  FROM (SELECT DISTINCT capture, src, dst, srctpn, dsttpn FROM packets) c
),
data AS (
  SELECT p.*, c.ch
  FROM packets p JOIN channels c
    ON c.capture = p.capture AND c.src IS NOT DISTINCT FROM p.src
   AND c.dst IS NOT DISTINCT FROM p.dst AND c.srctpn IS NOT DISTINCT FROM p.srctpn
   AND c.dsttpn IS NOT DISTINCT FROM p.dsttpn
),
stepped AS (
  SELECT d.*,
         MOD(psn - LAG(psn) OVER (PARTITION BY ch
                                  ORDER BY frame) + $psn_space, $psn_space) AS fwd
  FROM data d
),
unwrapped AS (
  SELECT s.*,
         CAST(SUM(CASE WHEN fwd IS NULL THEN psn
                       WHEN fwd < $psn_half THEN fwd
                       ELSE fwd - $psn_space END)
                OVER (PARTITION BY ch ORDER BY frame
                      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS u
  FROM stepped s
),
marked AS (
  SELECT w.*,
         MAX(u) OVER (PARTITION BY ch ORDER BY frame
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS high,
         FIRST_VALUE(u) OVER (PARTITION BY ch ORDER BY frame
                              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS first_u,
         LAG(u) OVER (PARTITION BY ch ORDER BY frame) AS last_u,
         ROW_NUMBER() OVER (PARTITION BY ch, u
                            ORDER BY frame) AS nth
  FROM unwrapped w
),
classed AS (
  SELECT m.*,
         CASE WHEN high IS NOT NULL AND u <= high THEN 1 ELSE 0 END AS behind,
         CASE WHEN high IS NOT NULL AND u <= high AND nth = 1 AND u > first_u
              THEN 1 ELSE 0 END AS fills_hole
  FROM marked m
)
SELECT capture, frame, ts_ns, src, dst, srctpn, dsttpn, psn,
       CASE WHEN u > high + 1 THEN u - high - 1 END AS psn_gap,
       CASE WHEN behind = 1 THEN high - u END AS psn_backwards,
       CASE WHEN fills_hole = 1 THEN 1 END AS out_of_order,
       CASE WHEN behind = 1 AND fills_hole = 0 THEN 1 END AS retransmission,
       CASE WHEN behind = 1 AND fills_hole = 0 AND u = last_u THEN 1 END AS duplicate
FROM classed
