-- endpoints: `ubpkt stats endpoints` per capture: every address a frame comes from or goes to
-- (once per frame), with packets, bytes, the first frame's time and the duration to the last.
WITH addressed AS (
  SELECT capture, frame, COALESCE(ts_ns, 0) AS t, len,
         CAST($src AS STRING) AS src, CAST($dst AS STRING) AS dst
  FROM frames
),
ends AS (
  SELECT capture, frame, t, len, src AS address FROM addressed WHERE src IS NOT NULL
  UNION ALL
  SELECT capture, frame, t, len, dst AS address FROM addressed
  WHERE src IS NOT NULL AND dst IS NOT NULL AND dst <> src
),
timed AS (
  SELECT e.*,
         FIRST_VALUE(t) OVER (PARTITION BY capture, address ORDER BY frame
                              ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
           AS first_t,
         LAST_VALUE(t) OVER (PARTITION BY capture, address ORDER BY frame
                             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
           AS last_t
  FROM ends e
)
SELECT capture, address, COUNT(*) AS packets, SUM(len) AS bytes,
       MIN(first_t) AS start_ns, MIN(last_t) - MIN(first_t) AS duration_ns
FROM timed
GROUP BY capture, address
