"""The progress display of long reads (decode, stats): a bar with the percentage of the file
read, the frames decoded so far, the read speed and the time left (rich columns), on standard
error and only when standard error is a terminal (never in pipes, logs or tests' captures), for
files over :data:`MIN_SIZE` bytes."""
from __future__ import annotations

from contextlib import contextmanager

from ubpkt.capture.stream import file_size

#: Files under this size are read too quickly for a progress display to help (ubpkt's choice).
MIN_SIZE = 8 << 20


def make_progress(console):
    """A rich Progress with ubpkt's columns: what, bar, percentage, frames, speed, time left."""
    from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                    TextColumn("{task.fields[frames]:,} frames"), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=console, transient=True)


def wanted(path, quiet: bool, console) -> bool:
    """Whether to show the display: not quiet, stderr a terminal, a file of MIN_SIZE or more."""
    return not quiet and console.is_terminal and file_size(path) >= MIN_SIZE


@contextmanager
def progress_display(path, quiet: bool, what: str = "decoding", console=None):
    """Yields ``update(bytes_read, frames=None)`` for the reader to call, or None when no
    display is wanted (see :func:`wanted`); the display is removed when the block ends."""
    if quiet or file_size(path) < MIN_SIZE:   # decided without loading rich (start-up time)
        yield None
        return
    from rich.console import Console
    err = console or Console(stderr=True)
    if not wanted(path, quiet, err):
        yield None
        return
    prog = make_progress(err)
    task = prog.add_task(what, total=file_size(path), frames=0)

    def update(pos: int, frames: int | None = None) -> None:
        if frames is None:
            prog.update(task, completed=pos)
        else:
            prog.update(task, completed=pos, frames=frames)

    with prog:
        yield update
