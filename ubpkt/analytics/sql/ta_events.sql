-- ta_events: transaction requests and responses (UB 2.0 §7.2.1-2) keyed as
-- ubpkt.views.analysis does: (capture, initiator, target, INI_TASSN).  A request (BTAH opcode
-- that expects a response) opens its key when nothing is pending there; a response (ATAH) looks
-- for its request back from its target (key dst, src) and else with the request's own
-- addresses; it closes the key when its opcode answers the key's latest request and the
-- requester context (INI_RC_Type, INI_RC_ID) agrees.  `epoch` counts the closing responses
-- before an event; the first request of an epoch is the pending one, so a closing response is
-- matched when its epoch starts with a request.
WITH req AS (
  SELECT capture, frame, ts_ns, $src AS ini, $dst AS tgt, CAST(btah_ini_tassn AS BIGINT) AS tassn,
         CAST(btah_taopcode AS BIGINT) AS op,
         CAST(btah_ini_rc_type AS BIGINT) AS rc_type, CAST(btah_ini_rc_id AS BIGINT) AS rc_id,
         COALESCE(CAST(btah_taopcode_name AS STRING), CAST(btah_taopcode AS STRING)) AS opcode
  FROM frames
  WHERE btah_taopcode IN ($ta_request_opcodes) AND btah_ini_tassn IS NOT NULL
    AND NOT (btah_taopcode IN ($ta_no_taack_opcodes) AND COALESCE(btah_no_taack, 0) <> 0)
),
resp AS (
  SELECT capture, frame, ts_ns, $src AS src, $dst AS dst, CAST(atah_ini_tassn AS BIGINT) AS tassn,
         CAST(atah_taopcode AS BIGINT) AS rop,
         CAST(atah_ini_rc_type AS BIGINT) AS rc_type, CAST(atah_ini_rc_id AS BIGINT) AS rc_id
  FROM frames
  WHERE atah_taopcode IN ($ta_response_opcodes)
    AND (btah_taopcode IS NULL OR btah_taopcode NOT IN ($ta_request_opcodes))
),
opened AS (
  SELECT capture, ini, tgt, tassn, MIN(frame) AS first_frame
  FROM req GROUP BY capture, ini, tgt, tassn
),
resp_keyed AS (
  SELECT r.capture, r.frame, r.ts_ns, r.tassn, r.rop, r.rc_type, r.rc_id,
         CASE WHEN o.first_frame < r.frame THEN r.dst ELSE r.src END AS ini,
         CASE WHEN o.first_frame < r.frame THEN r.src ELSE r.dst END AS tgt
  FROM resp r LEFT JOIN opened o
    ON o.capture = r.capture AND o.ini IS NOT DISTINCT FROM r.dst
   AND o.tgt IS NOT DISTINCT FROM r.src AND o.tassn = r.tassn
),
events AS (
  SELECT capture, ini, tgt, tassn, frame, ts_ns, 1 AS is_req, op, rc_type, rc_id, opcode,
         CAST(NULL AS BIGINT) AS rop
  FROM req
  UNION ALL
  SELECT capture, ini, tgt, tassn, frame, ts_ns, 0 AS is_req, CAST(NULL AS BIGINT) AS op,
         rc_type, rc_id, CAST(NULL AS STRING) AS opcode, rop
  FROM resp_keyed
),
grouped AS (
  SELECT e.*,
         CAST(SUM(is_req) OVER (PARTITION BY capture, ini, tgt, tassn ORDER BY frame
                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT)
           AS rgrp
  FROM events e
),
candidate AS (
  SELECT g.*,
         MAX(CASE WHEN is_req = 1 THEN op END)
           OVER (PARTITION BY capture, ini, tgt, tassn, rgrp) AS c_op,
         MAX(CASE WHEN is_req = 1 THEN rc_type END)
           OVER (PARTITION BY capture, ini, tgt, tassn, rgrp) AS c_rc_type,
         MAX(CASE WHEN is_req = 1 THEN rc_id END)
           OVER (PARTITION BY capture, ini, tgt, tassn, rgrp) AS c_rc_id
  FROM grouped g
),
closing AS (
  SELECT c.*,
         CASE WHEN is_req = 0 AND rgrp > 0 AND ($response_of_c_op) = rop
                   AND NOT (rc_type IS NOT NULL AND c_rc_type IS NOT NULL
                            AND (rc_type IS DISTINCT FROM c_rc_type
                                 OR rc_id IS DISTINCT FROM c_rc_id))
              THEN 1 ELSE 0 END AS closes
  FROM candidate c
),
epochs AS (
  SELECT k.*,
         CAST(COALESCE(SUM(closes) OVER (PARTITION BY capture, ini, tgt, tassn ORDER BY frame
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                       0) AS BIGINT) AS epoch
  FROM closing k
  WHERE is_req = 1 OR closes = 1
)
SELECT capture, ini, tgt, tassn, frame, ts_ns, is_req, closes, epoch, op, rop, rc_type, rc_id,
       FIRST_VALUE(is_req) OVER w AS epoch_opened,
       FIRST_VALUE(frame) OVER w AS request_frame,
       FIRST_VALUE(ts_ns) OVER w AS request_ts_ns,
       FIRST_VALUE(opcode) OVER w AS request_opcode,
       FIRST_VALUE(rc_id) OVER w AS request_rc_id
FROM epochs
WINDOW w AS (PARTITION BY capture, ini, tgt, tassn, epoch ORDER BY frame
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
