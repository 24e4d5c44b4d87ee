"""Where an exported file goes in the hive-partitioned dataset: ``node=<n>/port=<p>/date=<d>/``.

UB 2.0 says nothing about capture campaigns, so the rule naming a capture's node and port is a
setting (docs/analytics.md): either a CSV map (``--partition-map FILE.csv`` with the columns
``capture,node,port``; ``capture`` is the file's name, without directory), or a file-name
pattern (``--name-pattern '{node}_{port}_*.pcap'``: ``{node}`` and ``{port}`` match a run of
characters other than ``/`` and ``_``, ``*`` any run, ``?`` one character).  The date is the UTC
day of each frame's ``ts_ns`` (``YYYY-MM-DD``): a capture that crosses midnight is written as
one file per day.
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass

__all__ = ["PartitionRule", "PARTITION_KEYS", "day_of"]

#: The partition keys ``--partition-by`` accepts, in directory order.
PARTITION_KEYS = ("node", "port", "date")
NS_PER_DAY = 86_400 * 1_000_000_000


def day_of(ts_ns: int) -> str:
    """``YYYY-MM-DD`` (UTC) of an integer-nanosecond time."""
    import datetime
    d = datetime.date(1970, 1, 1) + datetime.timedelta(days=ts_ns // NS_PER_DAY)
    return d.isoformat()


def _pattern_regex(pattern: str) -> re.Pattern:
    out, i = [], 0
    for m in re.finditer(r"\{(node|port)\}|\*|\?", pattern):
        out.append(re.escape(pattern[i:m.start()]))
        tok = m.group(0)
        if tok == "*":
            out.append(".*")
        elif tok == "?":
            out.append(".")
        else:
            out.append(f"(?P<{m.group(1)}>[^/_]+)")
        i = m.end()
    out.append(re.escape(pattern[i:]))
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class PartitionRule:
    """Which partition keys to use (``by``, a subset of :data:`PARTITION_KEYS`) and how a
    capture's node and port are found: ``table`` (``{capture name: (node, port)}``, from a CSV
    map) or ``pattern`` (a file-name pattern).  Picklable, no state."""
    by: tuple = ()
    table: tuple = ()            # ((capture, node, port), ...): a tuple keeps it hashable
    pattern: str | None = None

    def __post_init__(self):
        bad = [k for k in self.by if k not in PARTITION_KEYS]
        if bad:
            raise ValueError(f"unknown partition key {bad[0]!r} (use {', '.join(PARTITION_KEYS)})")
        if ("node" in self.by or "port" in self.by) and not self.table and not self.pattern:
            raise ValueError("partitioning by node/port needs --partition-map or --name-pattern")
        object.__setattr__(self, "by", tuple(k for k in PARTITION_KEYS if k in self.by))

    @classmethod
    def from_csv(cls, by, path) -> "PartitionRule":
        """A rule from a CSV file with the header ``capture,node,port``."""
        rows = []
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                try:
                    rows.append((row["capture"].strip(), row["node"].strip(),
                                 row["port"].strip()))
                except (KeyError, AttributeError):
                    raise ValueError(f"{path}: needs the columns capture,node,port") from None
        return cls(tuple(by), tuple(rows))

    def node_port(self, capture_path) -> tuple:
        """``(node, port)`` of a capture; ValueError when the rule does not name it."""
        name = os.path.basename(str(capture_path))
        for cap, node, port in self.table:
            if cap == name:
                return node, port
        if self.pattern:
            m = _pattern_regex(self.pattern).match(name)
            if m:
                d = m.groupdict()
                return d.get("node"), d.get("port")
        if "node" in self.by or "port" in self.by:
            raise ValueError(f"{name}: no node/port for it (not in the partition map, "
                             f"or not matching the name pattern)")
        return None, None

    def directory(self, capture_path, day: str | None) -> str:
        """The partition directory (relative, '' without partitioning) of a capture's frames
        of one day."""
        node, port = self.node_port(capture_path) if ("node" in self.by or "port" in self.by) \
            else (None, None)
        parts = []
        for k in self.by:
            v = {"node": node, "port": port, "date": day}[k]
            if v is None or v == "":
                raise ValueError(f"{os.path.basename(str(capture_path))}: no {k} for it")
            if "/" in v or v in (".", ".."):
                raise ValueError(f"{k} {v!r} cannot name a directory")
            parts.append(f"{k}={v}")
        return os.path.join(*parts) if parts else ""
