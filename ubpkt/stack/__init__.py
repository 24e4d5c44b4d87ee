"""The reference UB stack: sans-IO transport and transaction engines, endpoints and the hot-path
packet templates they build frames from (UB 2.0 ch. 6, ch. 7)."""
