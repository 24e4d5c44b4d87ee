-- srt: service response time per request TA opcode over the whole dataset, as
-- `ubpkt stats srt`: count, min, avg (integer ns, rounded down), max and the p50/p90/p99
-- response times.  A percentile is the sorted sample at index round(p/100 * (n - 1)), the
-- rounding half to even on the double value (Python's round), so the figures are the same.
WITH ranked AS (
  SELECT opcode, response_time_ns,
         ROW_NUMBER() OVER (PARTITION BY opcode ORDER BY response_time_ns) - 1 AS k,
         COUNT(*) OVER (PARTITION BY opcode) AS n
  FROM latency
),
picks AS (
  SELECT r.*,
         CAST(50 AS DOUBLE) / CAST(100 AS DOUBLE) * CAST(n - 1 AS DOUBLE) AS x50,
         CAST(90 AS DOUBLE) / CAST(100 AS DOUBLE) * CAST(n - 1 AS DOUBLE) AS x90,
         CAST(99 AS DOUBLE) / CAST(100 AS DOUBLE) * CAST(n - 1 AS DOUBLE) AS x99
  FROM ranked r
),
rounded AS (
  SELECT p.*,
         FLOOR(x50) + CASE WHEN x50 - FLOOR(x50) > 0.5
                             OR (x50 - FLOOR(x50) = 0.5 AND MOD(FLOOR(x50), 2) = 1)
                           THEN 1 ELSE 0 END AS k50,
         FLOOR(x90) + CASE WHEN x90 - FLOOR(x90) > 0.5
                             OR (x90 - FLOOR(x90) = 0.5 AND MOD(FLOOR(x90), 2) = 1)
                           THEN 1 ELSE 0 END AS k90,
         FLOOR(x99) + CASE WHEN x99 - FLOOR(x99) > 0.5
                             OR (x99 - FLOOR(x99) = 0.5 AND MOD(FLOOR(x99), 2) = 1)
                           THEN 1 ELSE 0 END AS k99
  FROM picks p
)
SELECT opcode,
       COUNT(*) AS count,
       MIN(response_time_ns) AS min_ns,
       CAST(FLOOR(CAST(SUM(response_time_ns) AS DOUBLE) / CAST(COUNT(*) AS DOUBLE)) AS BIGINT)
         AS avg_ns,
       MAX(response_time_ns) AS max_ns,
       MAX(CASE WHEN k = k50 THEN response_time_ns END) AS p50_ns,
       MAX(CASE WHEN k = k90 THEN response_time_ns END) AS p90_ns,
       MAX(CASE WHEN k = k99 THEN response_time_ns END) AS p99_ns
FROM rounded
GROUP BY opcode
