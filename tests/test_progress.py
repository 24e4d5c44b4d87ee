"""The progress display (issue 12): percentage, frame count and time left, on stderr only when
stderr is a terminal, for long files."""
from __future__ import annotations

import io

from rich.console import Console

from ubpkt_cli.progress import MIN_SIZE, make_progress, progress_display, wanted


def _term():
    return Console(file=io.StringIO(), force_terminal=True, width=140)


def test_columns_show_percentage_frames_and_eta():
    con = _term()
    prog = make_progress(con)
    task = prog.add_task("decoding", total=1000, frames=0)
    prog.update(task, completed=250, frames=12345)
    text = "".join(seg.text for seg in con.render(prog.make_tasks_table(prog.tasks)))
    assert "decoding" in text and "25%" in text and "12,345 frames" in text
    # the time-left column: a clock (h:mm:ss) or rich's placeholder before a speed is known
    import re
    assert "-:--:--" in text or re.search(r"\d:\d\d:\d\d", text)


def test_only_on_a_terminal_and_for_long_files(tmp_path):
    big = tmp_path / "big.pcap"
    with open(big, "wb") as f:
        f.truncate(MIN_SIZE)
    small = tmp_path / "small.pcap"
    small.write_bytes(b"x" * 100)
    pipe = Console(file=io.StringIO(), force_terminal=False)
    assert wanted(big, False, _term())
    assert not wanted(big, True, _term())          # -q
    assert not wanted(big, False, pipe)            # stderr not a terminal
    assert not wanted(small, False, _term())
    assert not wanted("-", False, _term())         # standard input: no size to show


def test_display_updates_and_goes_away(tmp_path):
    big = tmp_path / "big.pcap"
    with open(big, "wb") as f:
        f.truncate(MIN_SIZE)
    con = _term()
    with progress_display(big, False, console=con) as update:
        assert update is not None
        update(MIN_SIZE // 2, 4096)
        update(MIN_SIZE)                 # a reader that knows only the bytes read
    with progress_display(big, False, console=Console(file=io.StringIO())) as update:
        assert update is None
