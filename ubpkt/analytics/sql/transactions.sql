-- transactions: per capture, the `transactions` counts of `ubpkt stats --json`: matched
-- responses, requests left unanswered at the end (missing TAACKs), responses without their
-- request.
WITH per_key AS (
  SELECT capture, ini, tgt, tassn,
         CASE WHEN MAX(CASE WHEN is_req = 1 THEN epoch END) = SUM(closes) THEN 1 ELSE 0 END
           AS pending
  FROM ta_events
  GROUP BY capture, ini, tgt, tassn
),
responses AS (
  SELECT capture, COUNT(*) AS seen
  FROM frames
  WHERE atah_taopcode IN ($ta_response_opcodes)
    AND (btah_taopcode IS NULL OR btah_taopcode NOT IN ($ta_request_opcodes))
  GROUP BY capture
),
matched AS (
  SELECT capture, COUNT(*) AS n FROM latency GROUP BY capture
),
open_keys AS (
  SELECT capture, SUM(pending) AS n FROM per_key GROUP BY capture
),
captures AS (
  SELECT capture FROM responses UNION SELECT capture FROM open_keys
)
SELECT c.capture,
       COALESCE(m.n, 0) AS responses,
       COALESCE(o.n, 0) AS unanswered,
       COALESCE(r.seen, 0) - COALESCE(m.n, 0) AS unmatched_responses
FROM captures c
LEFT JOIN matched m ON m.capture = c.capture
LEFT JOIN open_keys o ON o.capture = c.capture
LEFT JOIN responses r ON r.capture = c.capture
