"""Small helpers shared by the command lines (``pipelines.*``, ``zoo.*``, ``extractors.weights``).

Import-light on purpose: only the standard library at import time (``--help`` of every CLI must
return in well under a second, so torch and Beam are imported inside the functions that need
them, never here). Every check returns a one-line message (or None) instead of raising, so a
CLI can print ``error: <message>`` and exit 2 before any work::

    from pipelines import cli

    msg = cli.check_device(args.device) or cli.check_writable_dir(args.out)
    if msg:
        return cli.fail(msg)

Conventions: user errors are one line on stderr starting with ``error:`` and exit status 2
(:func:`fail`); Ctrl-C is one line and exit status 130 (:func:`interrupted`).
"""
from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Optional

#: Exit status of a bad command line, model, dataset, device or output path.
EXIT_USAGE = 2
#: Exit status after Ctrl-C (128 + SIGINT), the shell's convention.
EXIT_INTERRUPTED = 130

#: Loggers of libraries whose import-time or worker chatter is hidden unless ``--verbose``:
#: Beam's "apitools not found" (root logger) and "Could not find a compatible bson package"
#: (``apache_beam.io.mongodbio``), "Logging handler created" (Beam workers), absl, gRPC, h5py, PIL,
#: and the Dask scheduler and client of ``--runner dask`` (``distributed``: INFO lines per worker).
QUIET_LOGGERS = ("apache_beam", "absl", "grpc", "h5py", "PIL", "matplotlib", "urllib3", "fsspec", "numexpr",
                 "distributed", "dask")


def quiet_library_logs(verbose: bool = False) -> None:
    """Hide libraries' log chatter (warnings and info) unless ``verbose``.

    Call it first thing in ``main()``, before torch or Beam is imported: Beam logs "apitools not
    found" through the root logger while it is being imported. Without ``verbose`` the root logger
    and :data:`QUIET_LOGGERS` let only errors through, and child processes inherit quiet gRPC /
    absl / TensorFlow settings through the environment; with ``verbose`` everything at INFO and
    above is shown (``LEVEL:logger:message``, the format people know from Beam).
    """
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s", force=True)
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        return
    logging.getLogger().setLevel(logging.ERROR)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for key, value in (("GRPC_VERBOSITY", "ERROR"), ("TF_CPP_MIN_LOG_LEVEL", "2"), ("ABSL_MIN_LOG_LEVEL", "2")):
        os.environ.setdefault(key, value)


def fail(message: str) -> int:
    """Print ``error: <message>`` on stderr; returns :data:`EXIT_USAGE` (2) for ``return fail(...)``."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def interrupted(message: str = "interrupted") -> int:
    """Print one line for Ctrl-C on stderr; returns :data:`EXIT_INTERRUPTED` (130)."""
    print(f"\n{message}", file=sys.stderr)
    return EXIT_INTERRUPTED


def check_device(device: str) -> Optional[str]:
    """None when torch can use ``device``, else a one-line reason.

    ``cpu`` never imports torch. ``cuda`` / ``cuda:N`` import torch (the caller needs it anyway)
    and ask whether a CUDA device (device N) is visible: on a machine without one the message is
    ``--device cuda: torch sees no CUDA device``. Anything else must parse as a torch device.
    """
    device = str(device).strip()
    if device == "cpu":
        return None
    if device.startswith("cuda"):
        index = device[5:] if device.startswith("cuda:") else ""
        if device != "cuda" and not index.isdigit():
            return f"--device {device}: not a device name (cpu, cuda, cuda:N)"
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            return f"--device {device}: torch sees no CUDA device"
        if index and int(index) >= count:
            return f"--device {device}: torch sees {count} CUDA device{'s' if count != 1 else ''} (cuda:0-{count - 1})"
        return None
    import torch

    try:
        torch.device(device)
    except (RuntimeError, ValueError):
        return f"--device {device}: not a device name (cpu, cuda, cuda:N)"
    return None


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and not p.is_symlink():
        if p.parent == p:
            break
        p = p.parent
    return p


def check_writable_dir(path, what: str = "--out") -> Optional[str]:
    """None when ``path`` is (or can be created as) a folder this process can write into, else
    a one-line reason naming it. Nothing is left behind: a missing folder is not created (the
    check makes and removes a temporary folder in the nearest existing parent).

    Refused: ``path`` or one of its parents is a file; the nearest existing parent is not
    writable (permissions, a read-only or pseudo file system such as ``/proc``).
    """
    if path is None:
        return None
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        return f"{what} {path}: is a file, not a folder"
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        return f"{what} {path}: cannot create it, {base} is a file"
    try:
        tempfile.TemporaryDirectory(dir=base, prefix=".affectzoo-probe-").cleanup()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return f"{what} {path}: cannot write in {base} ({reason})"
    return None


def check_writable_file(path, what: str = "--out") -> Optional[str]:
    """None when the file ``path`` can be written (its folder exists or can be created and is
    writable; ``path`` is not a folder), else a one-line reason naming it."""
    if path is None:
        return None
    path = Path(path).expanduser()
    if path.is_dir():
        return f"{what} {path}: is a folder; give a file name"
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        return f"{what} {path}: cannot create it, {parent} is a file"
    msg = check_writable_dir(parent, what)
    if msg:
        return msg.replace(f"{what} {parent}:", f"{what} {path}:", 1)
    if path.exists() and not os.access(path, os.W_OK):
        return f"{what} {path}: the file is not writable"
    return None


def did_you_mean(name: str, choices: Iterable[str], n: int = 1) -> Optional[str]:
    """The closest of ``choices`` to ``name`` (``difflib``, cutoff 0.6), quoted, or None.

    ``did_you_mean("acm", ["accm", "sistcm"])`` -> ``"'accm'"``; with ``n`` > 1 the matches
    are joined with ``or``.
    """
    matches = difflib.get_close_matches(str(name), list(choices), n=n, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in choices}
        matches = [lowered[m] for m in difflib.get_close_matches(str(name).lower(), list(lowered), n=n, cutoff=0.6)]
    return " or ".join(repr(m) for m in matches) if matches else None


def unknown(kind: str, name: str, choices: Iterable[str], listing: Optional[str] = None) -> str:
    """One-line message for an unknown name: ``unknown model 'acm'; did you mean 'accm'?``.

    Without a close match the known names are listed (or ``listing``, e.g. ``see python -m
    zoo.train --list``, when given).
    """
    choices = sorted(choices)
    hint = did_you_mean(name, choices)
    if hint:
        return f"unknown {kind} {name!r}; did you mean {hint}?"
    return f"unknown {kind} {name!r}; " + (listing or f"known: {', '.join(choices)}")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help text with ``(default: X)`` appended once: only for options with a meaningful
    default (not None / False) whose help does not already state one. Descriptions keep their
    line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or "default" in text.lower():
            return text
        if action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        if isinstance(action.default, (list, tuple)) and not action.default:
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """Add ``-v/--verbose`` (show library logs and warnings, see :func:`quiet_library_logs`)."""
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show the libraries' log messages (Beam, gRPC, FFmpeg) too")
