-- conversations: `ubpkt stats conv` per capture: every frame with addresses counts in its
-- address pair, and an RTP frame also in its TP channel (both ends as address and TPN); the
-- two ends of a row in the order stats prints them.  start_ns is the time of the first frame,
-- duration_ns the last frame's time minus it (frame order).
WITH addressed AS (
  SELECT capture, frame, COALESCE(ts_ns, 0) AS t, len,
         CAST($src AS STRING) AS src, COALESCE(CAST($dst AS STRING), 'None') AS dst,
         CAST(rtph_srctpn AS BIGINT) AS srctpn, CAST(rtph_dsttpn AS BIGINT) AS dsttpn
  FROM frames
),
ends AS (
  SELECT capture, frame, t, len, 'address pair' AS type,
         CASE WHEN src <= dst THEN src ELSE dst END AS a,
         CAST(NULL AS BIGINT) AS a_tpn,
         CASE WHEN src <= dst THEN dst ELSE src END AS b,
         CAST(NULL AS BIGINT) AS b_tpn
  FROM addressed WHERE src IS NOT NULL
  UNION ALL
  SELECT capture, frame, t, len, 'TP channel' AS type,
         CASE WHEN sk <= dk THEN src ELSE dst END AS a,
         CASE WHEN sk <= dk THEN srctpn ELSE dsttpn END AS a_tpn,
         CASE WHEN sk <= dk THEN dst ELSE src END AS b,
         CASE WHEN sk <= dk THEN dsttpn ELSE srctpn END AS b_tpn
  FROM (SELECT x.*,
               CONCAT('(''', src, ''', ', COALESCE(CAST(srctpn AS STRING), 'None'), ')') AS sk,
               CONCAT('(''', dst, ''', ', COALESCE(CAST(dsttpn AS STRING), 'None'), ')') AS dk
        FROM addressed x WHERE src IS NOT NULL AND srctpn IS NOT NULL) y
),
timed AS (
  SELECT e.*,
         FIRST_VALUE(t) OVER (PARTITION BY capture, type, a, a_tpn, b, b_tpn ORDER BY frame
                              ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
           AS first_t,
         LAST_VALUE(t) OVER (PARTITION BY capture, type, a, a_tpn, b, b_tpn ORDER BY frame
                             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
           AS last_t
  FROM ends e
)
SELECT capture, type, a, a_tpn, b, b_tpn, COUNT(*) AS packets, SUM(len) AS bytes,
       MIN(first_t) AS start_ns, MIN(last_t) - MIN(first_t) AS duration_ns
FROM timed
GROUP BY capture, type, a, a_tpn, b, b_tpn
