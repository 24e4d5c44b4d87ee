-- transactions: per capture, the `transactions` counts of `ubpkt stats --json`: matched
-- responses, requests left unanswered at the end (missing TAACKs), responses without their
-- request.  A key is still pending at the end when its last epoch holds a request.
WITH per_key AS (
  SELECT capture, ini, tgt, tassn,
         SUM(CASE WHEN is_req = 0 AND epoch_opened = 1 THEN 1 ELSE 0 END) AS matched,
         CASE WHEN MAX(CASE WHEN is_req = 1 THEN epoch END) = SUM(closes) THEN 1 ELSE 0 END
           AS pending
  FROM ta_events
  GROUP BY capture, ini, tgt, tassn
),
per_capture AS (
  SELECT capture, SUM(matched) AS matched, SUM(pending) AS pending
  FROM per_key GROUP BY capture
),
responses AS (
  SELECT capture, COUNT(*) AS seen
  FROM frames
  WHERE atah_taopcode IN ($ta_response_opcodes)
    AND (btah_taopcode IS NULL OR btah_taopcode NOT IN ($ta_request_opcodes))
  GROUP BY capture
)
SELECT COALESCE(p.capture, r.capture) AS capture,
       COALESCE(p.matched, 0) AS responses,
       COALESCE(p.pending, 0) AS unanswered,
       COALESCE(r.seen, 0) - COALESCE(p.matched, 0) AS unmatched_responses
FROM per_capture p FULL OUTER JOIN responses r ON p.capture = r.capture
