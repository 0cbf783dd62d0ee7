"""Where gelu-audit keeps what it computed or measured between runs: one directory per user.

The 16-bit reference tables (``references.cache``) and the facts measured about this machine's
PyTorch (``implementations.kept_facts``) live there. Foundation: imports only ``errors``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from gelu_audit.errors import EnvironmentUnavailableError


def default_cache_dir() -> Path:
    """``$GELU_AUDIT_CACHE_DIR``, else the platform's user cache directory + ``gelu-audit``.
    Raises EnvironmentUnavailableError (one line, exit 2) where neither can be named: a ``~user``
    that does not exist, or no home directory at all."""
    override = os.environ.get("GELU_AUDIT_CACHE_DIR")
    try:
        if override:
            return Path(override).expanduser()
        if os.name == "nt":
            base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        elif os.uname().sysname == "Darwin":
            base = Path.home() / "Library" / "Caches"
        else:
            base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except (RuntimeError, KeyError) as error:  # expanduser / home() without a home
        where = f"GELU_AUDIT_CACHE_DIR={override!r}" if override else "the user cache directory"
        raise EnvironmentUnavailableError(
            f"{where}: {str(error).rstrip('.')}; set GELU_AUDIT_CACHE_DIR to a folder (or pass --cache-dir)"
        ) from None
    return base / "gelu-audit"


TEMPORARY_SUFFIX = ".tmp"
"""What a file being written is called until its rename (one left behind: a killed writer)."""


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file atomically (temporary file, then rename), so readers never see half a
    file; the caller's OSError (a full disk, a read-only folder) leaves nothing behind.

    The temporary file is created as any new file is (mode 0666 less the umask, the folder's
    default ACLs), not ``mkstemp``'s private 0600: a reference store shared by a team is
    readable by it (a file another user cannot read would look damaged to them, and be
    recomputed). Its name is the file's, 8 random hex digits and ``.tmp``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f"{path.name}{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            break
        except FileExistsError:  # pragma: no cover - 1 in 2^32
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
