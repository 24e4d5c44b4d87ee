"""``loopback --plot FILE.png``: throughput, link retries and link width over simulated time, from
the time series of a ``--link phy`` report (``report["link"]["series"]``).

matplotlib is an optional extra (``pip install 'ubpkt[plot]'``): :func:`require_matplotlib`
says so in one line before a run starts, and only this module imports it.
"""
from __future__ import annotations

__all__ = ["PlotUnavailable", "require_matplotlib", "plot_link"]

INSTALL_HINT = "pip install 'ubpkt[plot]' (or: pip install matplotlib)"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def require_matplotlib():
    """The pyplot module on the non-interactive Agg backend, or :class:`PlotUnavailable`."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(f"--plot needs matplotlib: {INSTALL_HINT}") from None
    return plt


def _rates(series: list) -> tuple[list, list]:
    """Payload Gbit/s delivered in each sampling interval (at the interval's end)."""
    ts, gbps = [], []
    for prev, cur in zip(series, series[1:]):
        dt = cur["t_ns"] - prev["t_ns"]
        if dt > 0:
            ts.append(cur["t_ns"] / 1e3)
            gbps.append((cur["delivered_bytes"] - prev["delivered_bytes"]) * 8 / dt)
    return ts, gbps


def plot_link(report: dict, path: str) -> None:
    """Write the three panels for a loopback report made with ``--link phy``."""
    plt = require_matplotlib()
    link = report.get("link", {})
    series = link.get("series") or []
    if len(series) < 2:
        raise ValueError("--plot: the run left fewer than two samples of the link")
    t = [s["t_ns"] / 1e3 for s in series]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, sharex=True, figsize=(8, 7))
    rt, gbps = _rates(series)
    ax1.plot(rt, gbps, drawstyle="steps-pre")
    ax1.set_ylabel("payload Gbit/s")
    cfg = report.get("config", {})
    ax1.set_title(f"ubpkt loopback --link phy: {cfg.get('transport')} {cfg.get('op')}, "
                  f"x{cfg.get('lanes')} {cfg.get('fec')}, BER {cfg.get('ber')}")
    ax2.plot(t, [s["retries"] for s in series], drawstyle="steps-post", color="tab:red")
    ax2.set_ylabel("link retries (total)")
    ax3.plot(t, [s["width_ab"] for s in series], drawstyle="steps-post", label="A->B")
    ax3.plot(t, [s["width_ba"] for s in series], drawstyle="steps-post", linestyle="--",
             label="B->A")
    ax3.set_ylabel("link width (lanes)")
    ax3.set_xlabel("simulated time (us)")
    ax3.set_yticks([1, 2, 4, 8])
    ax3.legend(loc="lower right")
    for ev in link.get("lane_schedule", ()):
        for ax in (ax1, ax2, ax3):
            ax.axvline(ev["at_ns"] / 1e3, color="grey", linestyle=":", linewidth=1)
        ax3.annotate(f"{ev['event']} {ev['lane']}", (ev["at_ns"] / 1e3, 8),
                     fontsize=8, rotation=90, va="top")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
