-- latency: one row per matched request/response pair (what `decode -2` writes as
-- ub.analysis.request_in / response_time_ns): initiator, target, INI_RC_ID, INI_TASSN, the
-- request's TA opcode, and the response time in ns (response time - request time).
SELECT capture, request_frame, frame AS response_frame, ini AS initiator, tgt AS target,
       request_rc_id AS ini_rc_id, tassn AS ini_tassn, request_opcode AS opcode,
       request_ts_ns, ts_ns AS response_ts_ns, ts_ns - request_ts_ns AS response_time_ns
FROM ta_events
WHERE is_req = 0 AND epoch_opened = 1
