-- psn_channels: per TP channel and capture, the PSN counts of `ubpkt stats` (its "TP channels
-- (RTP data)" table): packets, gaps, missing PSNs, retransmissions, out of order, duplicates.
SELECT capture, src, dst, srctpn, dsttpn,
       COUNT(*) AS packets,
       COUNT(psn_gap) AS gaps,
       COALESCE(SUM(psn_gap), 0) AS missing,
       COUNT(retransmission) AS retransmissions,
       COUNT(out_of_order) AS out_of_order,
       COUNT(duplicate) AS duplicates
FROM psn_analysis
GROUP BY capture, src, dst, srctpn, dsttpn
