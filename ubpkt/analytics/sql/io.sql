-- io: `ubpkt stats io` per capture: frames, bytes and frames with an error issue per interval
-- of $interval_ns ns from the capture's first frame (bucket = floor((ts - first) / interval),
-- exact integer arithmetic).  Empty intervals have no row.
WITH timed AS (
  SELECT capture, frame, len, n_errors, COALESCE(ts_ns, 0) AS t,
         FIRST_VALUE(COALESCE(ts_ns, 0)) OVER (PARTITION BY capture ORDER BY frame
                      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS t0
  FROM frames
),
bucketed AS (
  SELECT capture, len, n_errors,
         CAST((t - t0 - MOD(t - t0, $interval_ns)) / $interval_ns AS BIGINT)
           - CASE WHEN MOD(t - t0, $interval_ns) < 0 THEN 1 ELSE 0 END AS bucket
  FROM timed
)
SELECT capture, bucket, bucket * $interval_ns AS start_ns, $interval_ns AS interval_ns,
       COUNT(*) AS frames, SUM(len) AS bytes,
       SUM(CASE WHEN n_errors > 0 THEN 1 ELSE 0 END) AS errors
FROM bucketed
GROUP BY capture, bucket
