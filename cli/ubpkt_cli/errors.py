"""How every `ubpkt` command fails: the exit codes and one-line messages tshark users expect.

* 2: the input cannot be used: a missing or unreadable file, not a capture, a damaged capture
  (what tshark does: ``tshark -r /nonexistent`` and a damaged file both exit 2); also bad
  arguments (click's usage errors).
* 1: a runtime failure (cannot write the output, a full disk).
* 130: interrupted by Ctrl-C, quietly (no ``Aborted!``), as tshark.
* 0 when the reader of standard output goes away (``| head -1``): the command stops at its next
  write and exits quietly; nothing more is read.

:class:`UbGroup` applies the last three to every sub-command; the commands raise
:class:`InputError` (via :func:`input_error`) for the first.
"""
from __future__ import annotations

import errno
import os
import sys

import click

#: exit codes (see the module doc)
EXIT_INPUT = 2
EXIT_RUNTIME = 1
EXIT_INTERRUPTED = 130


class InputError(click.ClickException):
    """The input file cannot be used: exit 2, one line on stderr."""
    exit_code = EXIT_INPUT


def input_error(path, exc: BaseException) -> InputError:
    """A one-line :class:`InputError` for an exception met opening or reading ``path``."""
    name = "standard input" if str(path) == "-" else str(path)
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{name}: no such file")
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{name}: is a directory")
    if isinstance(exc, PermissionError):
        return InputError(f"{name}: permission denied")
    if isinstance(exc, OSError):
        return InputError(f"{name}: {exc.strerror or exc}")
    return InputError(f"{name}: {exc}")


def report_problems(path, problems, count: int | None = None) -> None:
    """Say on stderr what is wrong with a damaged capture, one line per problem kept (with its
    record or block number and byte offset), and how many more there were."""
    name = "standard input" if str(path) == "-" else str(path)
    for p in problems:
        click.echo(f"ubpkt: {name}: damaged capture: {p}", err=True)
    more = (count or len(problems)) - len(problems)
    if more > 0:
        click.echo(f"ubpkt: {name}: ... and {more} more problems", err=True)


def quiet_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush of data nobody
    will read cannot fail again (after a broken pipe or a full disk)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def reader_gone(fd: int = 1) -> bool:
    """Whether ``fd`` is a pipe whose reader has gone away (``| head -1`` is done): Linux
    reports POLLERR on the write end of such a pipe.  Commands that print only at the end
    (stats) ask this while they read, and stop reading instead of finishing the capture."""
    import select
    import stat
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        p = select.poll()
        p.register(fd, select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in p.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def stdout_console():
    """A rich Console on stdout whose broken pipe is a BrokenPipeError (the group ends the
    command quietly, exit 0), not rich's own ``SystemExit(1)``."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError(errno.EPIPE, "broken pipe")

    return _Console()


class UbGroup(click.Group):
    """The `ubpkt` group: Ctrl-C, a vanished reader and a failing stdout end every sub-command
    the same way (see the module doc), without a traceback or click's ``Aborted!``."""

    def invoke(self, ctx: click.Context):
        try:
            rv = super().invoke(ctx)
            # what is still buffered goes out here, where a vanished reader is handled (not
            # in click's own handler after this returns, which exits 1)
            sys.stdout.flush()
            return rv
        except KeyboardInterrupt:
            quiet_stdout()
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            quiet_stdout()
            sys.exit(0)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG) and \
                    getattr(exc, "filename", None) is None:
                quiet_stdout()
                raise click.ClickException(f"cannot write the output: {exc.strerror}")
            raise
