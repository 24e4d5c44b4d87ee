"""Screenshots of dissectors/ub.lua in the real Wireshark GUI, taken under Xvfb.

    python docs/screenshots/make_screenshots.py [--out DIR] [--lua PATH] [--only NAME,...]

Builds the analysis capture (``analysis_capture.py``: a lost packet, its Go-Back-N resend, a
bad ICRC, a Read with and one without its response, a TPNAK), starts its own X server (Xvfb,
on a display number it picks free with ``-displayfd``), and runs ``wireshark`` with the plugin
once per screenshot in a fresh configuration folder (a temporary HOME / XDG_CONFIG_HOME /
WIRESHARK_CONFIG_DIR, so no user setting, profile or installed plugin leaks in) that holds
``dissectors/ub.colorfilters`` as its colouring rules and the pane layout of the shot.  The
window is sized with xdotool and driven from the keyboard (xdotool key); every wait polls (a
window appears: ``xdotool search --sync`` under a timeout; the picture settles: two equal
grabs in a row), none is a fixed long sleep.  Grabs with xwd, writes PNGs with ImageMagick.

Shots (``SHOTS``): ``packet_list``, ``packet_details``, ``expert_info``, ``preferences``.
Everything started here is ended on exit, on error and on Ctrl-C.  A missing tool is a one-line
error (exit 1).  Needs: Xvfb, wireshark (Qt, tested with 4.0), xdotool, xwd, convert.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import analysis_capture  # noqa: E402  (next to this file)

TOOLS = {"Xvfb": "xvfb", "wireshark": "wireshark-qt", "xdotool": "xdotool", "xwd": "x11-apps",
         "convert": "imagemagick"}
#: the X screen; the main window is sized to WINDOW inside it
SCREEN = (1400, 1400)
WINDOW = (1280, 900)
CAPTURE_NAME = "ub_analysis.pcap"
#: packet list columns (title, Wireshark column format): the defaults, with the colouring rule
#: that matched (a custom column) before Info, so the colours explain themselves
COLUMNS = [("No.", "%m", 50), ("Time", "%t", 110), ("Source", "%s", 110),
           ("Destination", "%d", 110), ("Protocol", "%p", 70), ("Length", "%L", 60),
           ("Colouring rule", "%Cus:frame.coloring_rule.name:0:R", 230), ("Info", "%i", -1)]


class ShotError(RuntimeError):
    """A step of the GUI automation failed (the message says which)."""


@dataclass
class Shot:
    """One screenshot: the Wireshark layout it needs, what to do once the capture is shown,
    which window to grab.  ``keys`` are xdotool key groups sent in order to the main window;
    ``dialog`` names the window (title) to wait for, send ``dialog_keys`` to, and grab instead
    of the main window."""
    name: str
    what: str
    prefs: dict = field(default_factory=dict)
    recent: dict = field(default_factory=dict)
    args: tuple = ()
    keys: tuple = ()
    dialog: str | None = None
    dialog_keys: tuple = ()
    dialog_size: tuple | None = None
    window: tuple = WINDOW


D = analysis_capture.DETAILS_FRAME
SHOTS = [
    Shot("packet_list", "packet list: UB columns, colouring rules on the analysis capture",
         prefs={"gui.layout_content_2": "NONE", "gui.layout_content_3": "NONE"},
         window=(1280, 470)),
    Shot("packet_details", f"packet details of frame {D} (a UBoE Read), UnifiedBus expanded",
         prefs={"gui.layout_content_3": "NONE"},
         recent={"gui.geometry_main_upper_pane": "125"},
         args=("-g", str(D)),
         # Ctrl+/ focuses the display filter; two Tabs reach the details tree (focus order:
         # filter, list, details); Home selects the first item, four Downs the fifth
         # (Frame, Ethernet, IP, UDP, UnifiedBus); Shift+Right expands its subtrees
         keys=(("ctrl+slash",), ("Tab", "Tab"), ("Home", "Down", "Down", "Down", "Down"),
               ("shift+Right",)),
         window=(1280, 1150)),
    Shot("expert_info", "Analyze > Expert Information: the UB expert items by severity, "
         "each group opened on its frames",
         # Alt+A opens Analyze; Up wraps to its last item, Expert Information.  In the dialog,
         # from the last group upwards: Right opens a group, Up reaches the group above
         # (still closed); more rounds than groups are harmless
         keys=(("alt+a",), ("Up", "Return")), dialog="Expert Information",
         dialog_keys=(("End",), ("Right", "Up") * 16), dialog_size=(1100, 480)),
    Shot("preferences", "Edit > Preferences > Protocols > UB: the plugin's preferences",
         # the page tree has the focus: type-ahead to Protocols, open it, type-ahead to UB
         keys=(("ctrl+shift+p",),), dialog="Preferences",
         dialog_keys=(tuple("Protocols"), ("Right",), ("U", "B")), dialog_size=(900, 340)),
]


def need_tools() -> None:
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            raise ShotError(f"{tool} not found (Debian package {package})")


class Session:
    """The processes this script starts (Xvfb, wireshark): each is ended, by its own id, in
    :meth:`close` (called on exit, on error and on a signal)."""

    def __init__(self, tmp: Path, timeout: float):
        self.tmp = tmp
        self.timeout = timeout
        self.procs: list[subprocess.Popen] = []
        self.display = ""

    # -- processes ---------------------------------------------------------------------------
    def start_x(self) -> None:
        r, w = os.pipe()
        log = open(self.tmp / "xvfb.log", "wb")
        proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
             "-nolisten", "tcp", "-noreset"], pass_fds=(w,), stdout=log, stderr=log)
        self.procs.append(proc)
        os.close(w)
        number = b""
        deadline = time.monotonic() + self.timeout
        while not number.endswith(b"\n"):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise ShotError("Xvfb did not start (see its log: "
                                f"{(self.tmp / 'xvfb.log').read_text(errors='replace')[-200:]!r})")
            chunk = os.read(r, 16)
            if not chunk:
                raise ShotError("Xvfb closed -displayfd without a display number")
            number += chunk
        os.close(r)
        self.display = f":{int(number)}"

    def env(self) -> dict:
        home = self.tmp / "home"
        return {**os.environ, "DISPLAY": self.display, "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "WIRESHARK_CONFIG_DIR": str(home / ".config" / "wireshark"),
                "XDG_RUNTIME_DIR": str(self.tmp / "run"), "LANG": "C.UTF-8",
                "QT_QPA_PLATFORM": "xcb"}

    def run(self, *cmd: str, check: bool = True, timeout: float | None = None) -> str:
        res = subprocess.run(cmd, env=self.env(), capture_output=True,
                             timeout=timeout or self.timeout)
        if check and res.returncode != 0:
            raise ShotError(f"{' '.join(cmd)}: exit {res.returncode}: "
                            f"{res.stderr.decode(errors='replace').strip()[-300:]}")
        return res.stdout.decode(errors="replace")

    def start_wireshark(self, lua: Path, pcap: Path, args: tuple) -> subprocess.Popen:
        log = open(self.tmp / "wireshark.log", "ab")
        proc = subprocess.Popen(["wireshark", "-X", f"lua_script:{lua}", "-r", str(pcap),
                                 *args], env=self.env(), stdout=log, stderr=log,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in reversed(list(self.procs)):
            try:
                self.stop(proc)
            except Exception:                      # noqa: BLE001 -- keep ending the others
                pass

    # -- windows -----------------------------------------------------------------------------
    def find_window(self, name: str, proc: subprocess.Popen) -> str:
        """The id of the first visible window whose title contains ``name`` (waits for it)."""
        try:
            out = self.run("xdotool", "search", "--sync", "--onlyvisible", "--name", name,
                           timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise ShotError(f"no window named {name!r} within {self.timeout:g} s"
                            + (f" (wireshark exited {proc.returncode})"
                               if proc.poll() is not None else "")) from None
        return out.split()[0]

    def grab(self, window: str) -> bytes:
        return subprocess.run(["xwd", "-silent", "-id", window], env=self.env(),
                              capture_output=True, check=True, timeout=self.timeout).stdout

    def settle(self, window: str, quiet: int = 3) -> bytes:
        """Grab the window until ``quiet`` grabs in a row are equal (it has finished drawing);
        returns the last grab."""
        deadline = time.monotonic() + self.timeout
        last, same = None, 0
        while True:
            img = self.grab(window)
            same = same + 1 if img == last else 0
            if same >= quiet - 1:
                return img
            if time.monotonic() > deadline:
                raise ShotError(f"window {window} kept changing for {self.timeout:g} s")
            last = img
            time.sleep(0.25)


def _width_key(fmt: str) -> str:
    """How the recent file names a column in ``column.width``: the format, a custom column as
    ``"%Cus:<field>"`` (quoted, without occurrence and resolution)."""
    return f'"{":".join(fmt.split(":")[:2])}"' if fmt.startswith("%Cus:") else fmt


def write_config(conf: Path, shot: Shot, colorfilters: Path) -> None:
    """A fresh Wireshark configuration folder for ``shot``."""
    if conf.exists():
        shutil.rmtree(conf)
    conf.mkdir(parents=True)
    shutil.copy(colorfilters, conf / "colorfilters")
    prefs = {"gui.layout_type": "2", "gui.layout_content_1": "PLIST",
             "gui.layout_content_2": "PDETAILS", "gui.layout_content_3": "PBYTES",
             "gui.packet_list_show_minimap": "FALSE",
             "gui.column.format": ", ".join(f'"{t}", "{f}"' for t, f, _ in COLUMNS), **shot.prefs}
    (conf / "preferences").write_text("".join(f"{k}: {v}\n" for k, v in prefs.items()))
    recent = {"gui.time_format": "RELATIVE", "gui.time_precision": "AUTO",
              "gui.packet_list_colorize": "TRUE", **shot.recent}
    (conf / "recent").write_text("".join(f"{k}: {v}\n" for k, v in recent.items())
                                 + "column.width: " + ", ".join(f"{_width_key(f)}, {w}"
                                                                for _, f, w in COLUMNS) + "\n")
    w, h = shot.window
    common = {"gui.geometry_main_x": "0", "gui.geometry_main_y": "0",
              "gui.geometry_main_width": str(w), "gui.geometry_main_height": str(h),
              "gui.geometry_main_maximized": "FALSE", "privs.warn_if_elevated": "FALSE",
              "sys.warn_if_no_capture": "FALSE", "gui.last_used_profile": "Default"}
    (conf / "recent_common").write_text("".join(f"{k}: {v}\n" for k, v in common.items()))


def to_png(xwd: bytes, out: Path, tmp: Path) -> None:
    raw = tmp / "grab.xwd"
    raw.write_bytes(xwd)
    # a palette PNG: a GUI grab has few colours, the file is a quarter of an RGB PNG
    subprocess.run(["convert", f"xwd:{raw}", "-strip", "-define", "png:compression-level=9",
                    f"PNG8:{out}"], check=True,
                   capture_output=True, timeout=60)


def take(sess: Session, shot: Shot, lua: Path, pcap: Path, colorfilters: Path,
         out: Path) -> Path:
    write_config(sess.tmp / "home" / ".config" / "wireshark", shot, colorfilters)
    proc = sess.start_wireshark(lua, pcap, shot.args)
    try:
        main = sess.find_window(pcap.name, proc)
        sess.run("xdotool", "windowmove", main, "0", "0")
        sess.run("xdotool", "windowsize", "--sync", main, *map(str, shot.window))
        sess.run("xdotool", "windowfocus", "--sync", main)
        sess.settle(main)
        for group in shot.keys:
            # one group at a time: a menu or a focus change is processed before the next
            sess.run("xdotool", "key", "--delay", "120", *group)
        target = main
        if shot.dialog:
            target = sess.find_window(shot.dialog, proc)
            sess.run("xdotool", "windowmove", target, "0", "0")
            if shot.dialog_size:
                sess.run("xdotool", "windowsize", "--sync", target,
                         *map(str, shot.dialog_size))
            sess.run("xdotool", "windowfocus", "--sync", target)
            sess.settle(target)
            for group in shot.dialog_keys:
                sess.run("xdotool", "key", "--delay", "120", *group)
                # a new group starts a new type-ahead search (Qt's interval is 400 ms)
                sess.settle(target)
        path = out / f"{shot.name}.png"
        to_png(sess.settle(target), path, sess.tmp)
        return path
    finally:
        sess.stop(proc)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE, help="folder for the PNGs and the capture")
    ap.add_argument("--lua", type=Path, default=ROOT / "dissectors" / "ub.lua")
    ap.add_argument("--colorfilters", type=Path, default=ROOT / "dissectors" / "ub.colorfilters")
    ap.add_argument("--only", default="", help="comma-separated shot names "
                    f"({', '.join(s.name for s in SHOTS)})")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a window")
    a = ap.parse_args(argv)
    names = [n for n in a.only.split(",") if n]
    unknown = set(names) - {s.name for s in SHOTS}
    if unknown:
        ap.error(f"unknown shot(s): {', '.join(sorted(unknown))}")
    shots = [s for s in SHOTS if not names or s.name in names]

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    sess = None
    try:
        need_tools()
        for f in (a.lua, a.colorfilters):
            if not f.is_file():
                raise ShotError(f"{f}: no such file")
        a.out.mkdir(parents=True, exist_ok=True)
        pcap = analysis_capture.write(a.out / CAPTURE_NAME)
        with tempfile.TemporaryDirectory(prefix="ub-shots-") as tmp:
            sess = Session(Path(tmp), a.timeout)
            (sess.tmp / "run").mkdir(mode=0o700)
            try:
                sess.start_x()
                for shot in shots:
                    path = take(sess, shot, a.lua.resolve(), pcap, a.colorfilters, a.out)
                    print(f"{path}: {shot.what}", file=sys.stderr)
            finally:
                sess.close()
    except (ShotError, subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        print(f"make_screenshots: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("make_screenshots: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
