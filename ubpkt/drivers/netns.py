"""Two network namespaces joined by a veth pair, made and removed by us (``ubpkt loopback
--driver veth``, the raw Ethernet tests).

:class:`VethLab` creates namespaces ``ubpkt-<tag>-a`` and ``ubpkt-<tag>-b`` (``tag``: the pid
and a counter, so concurrent runs do not meet), a veth pair ``ubv<tag>a``/``ubv<tag>b`` with
one end in each, locally administered MACs, IPv4 addresses of its own ``10.212.<n>.0/24``
(they exist only inside those namespaces), a jumbo MTU so a 4 KiB UB payload fits in one frame,
and the loopback interface up.  :meth:`VethLab.remove` deletes both namespaces, which takes the
veth pair with them; it runs on leaving the ``with`` block, on an error while creating, and
from ``atexit`` for anything still standing (Ctrl-C included: KeyboardInterrupt unwinds
through the ``with``).

:func:`enter` moves the calling thread (only it: ``setns(2)`` acts on one thread) into a
namespace and back, so a socket opened inside stays there while the rest of the process runs
where it was.  Needs root (``CAP_SYS_ADMIN`` and ``CAP_NET_ADMIN``) and ``ip`` (iproute2);
:class:`NetnsError` otherwise, one line.
"""
from __future__ import annotations

import atexit
import ctypes
import errno
import itertools
import os
import shutil
import subprocess
from contextlib import contextmanager

__all__ = ["NetnsError", "VethLab", "enter", "netns_unavailable", "list_netns"]

CLONE_NEWNET = 0x40000000
_NETNS_DIR = "/run/netns"
_count = itertools.count()
_live: set = set()          # namespaces this process made and has not removed yet


class NetnsError(OSError):
    """Namespaces cannot be made or entered here (one line: not root, no ``ip``...)."""


def netns_unavailable() -> str | None:
    """Why this process cannot make network namespaces, or None when it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    if not os.path.exists("/proc/thread-self/ns/net"):
        return "no network namespace support (/proc/thread-self/ns/net)"
    return None


def list_netns() -> list[str]:
    """The names of the named network namespaces (``ip netns list``)."""
    try:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise NetnsError(e, f"setns: {os.strerror(e)}")


@contextmanager
def enter(name: str):
    """Run the body of the ``with`` in network namespace ``name`` (this thread only)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        try:
            fd = os.open(os.path.join(_NETNS_DIR, name), os.O_RDONLY)
        except OSError as exc:
            raise NetnsError(exc.errno or errno.ENOENT,
                             f"network namespace {name}: {exc.strerror}") from None
        try:
            _setns(fd)
        finally:
            os.close(fd)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()
        raise NetnsError(errno.EIO, f"ip {' '.join(args)}: {msg[0] if msg else r.returncode}")


class VethLab:
    """Two namespaces and a veth pair between them (module doc).  ``ns``, ``ifaces``,
    ``macs``, ``ips``: pairs (A, B)."""

    def __init__(self, tag: str | None = None, mtu: int = 9000):
        n = next(_count)
        tag = tag or f"{os.getpid()}{n}"
        if len(f"ubv{tag}a") > 15:
            raise ValueError(f"tag {tag!r}: too long for an interface name")
        self.tag = tag
        self.ns = (f"ubpkt-{tag}-a", f"ubpkt-{tag}-b")
        self.ifaces = (f"ubv{tag}a", f"ubv{tag}b")
        self.macs = ("02:75:62:00:00:0a", "02:75:62:00:00:0b")
        sub = (os.getpid() + n) % 250 + 1
        self.ips = (f"10.212.{sub}.1", f"10.212.{sub}.2")
        self.mtu = mtu
        self.created = False

    def create(self) -> "VethLab":
        why = netns_unavailable()
        if why:
            raise NetnsError(errno.EPERM, why)
        try:
            for ns in self.ns:
                _ip("netns", "add", ns)
                _live.add(ns)
            self.created = True
            a, b = self.ifaces
            _ip("link", "add", a, "netns", self.ns[0], "type", "veth", "peer", "name", b,
                "netns", self.ns[1])
            for ns, ifn, mac, ip in zip(self.ns, self.ifaces, self.macs, self.ips):
                _ip("-n", ns, "link", "set", ifn, "address", mac, "mtu", str(self.mtu))
                _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", ifn)
                _ip("-n", ns, "link", "set", ifn, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        """Delete both namespaces (and with them the veth pair); never raises."""
        for ns in self.ns:
            if ns in _live or self.created:
                try:
                    subprocess.run(["ip", "netns", "del", ns], capture_output=True,
                                   timeout=20)
                except (OSError, subprocess.SubprocessError):
                    pass
                _live.discard(ns)
        self.created = False

    def __enter__(self) -> "VethLab":
        return self.create()

    def __exit__(self, *exc) -> None:
        self.remove()

    def describe(self) -> dict:
        return {"namespaces": list(self.ns), "ifaces": list(self.ifaces),
                "macs": list(self.macs), "ips": list(self.ips), "mtu": self.mtu}


@atexit.register
def _cleanup() -> None:
    for ns in list(_live):
        try:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            pass
        _live.discard(ns)
