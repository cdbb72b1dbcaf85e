"""Reading files that people give the command line: review.toml, extraction and decision CSVs, study CSVs.

Every such file is read through `read_user_text`, so that each way a file can be unusable gets one message
that names the file, says what is wrong and how to fix it — never a traceback or a bare
"'utf-8' codec can't decode byte 0xf6":

- a path that does not exist, a folder where a file was expected, something that is not a regular file,
  a file that cannot be read (permissions);
- a file larger than the limit for its kind (checked with stat, before anything is read);
- an empty file; a binary file (NUL bytes); UTF-16/UTF-32 text; text that is not UTF-8 (line and byte offset
  of the first bad byte, and "save it as UTF-8" — Latin-1/Windows-1252 is named when it decodes as such).

A UTF-8 byte order mark is accepted silently. Line endings are normalised to "\\n" (as `Path.read_text` does).
Pure apart from reading the one file: no network, no clock.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
from pathlib import Path

MiB = 1024 * 1024
# Limits by kind of file: far above any real file of that kind, far below what would take minutes to parse.
MAX_CONFIG_BYTES = 1 * MiB  # review.toml (the template is 2 KiB)
MAX_CSV_BYTES = 64 * MiB  # extraction and study CSVs (one row per study arm)
MAX_DECISIONS_BYTES = 256 * MiB  # screening decisions / labelled exports with abstracts (ASReview, SYNERGY)
_SNIFF = 8192


class UserFileError(ValueError):
    """A file given by the user cannot be used; the message names the file, the problem and the fix."""


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} bytes"


def describe_os_error(e: OSError, path: str | Path | None = None) -> str:
    """One line for an OSError about a user's path: the file, what is wrong, what to do.

    Args:
        e: the error (its filename is used when `path` is not given).
        path: the path it is about.
    Returns:
        e.g. "data.csv: permission denied (cannot read it); make it readable, e.g. chmod u+r data.csv".
    """
    p = str(path if path is not None else (e.filename if e.filename is not None else "file"))
    code = e.errno
    if isinstance(e, FileNotFoundError) or code == errno.ENOENT:
        return f"{p}: file not found (no such file or folder); check the path"
    if isinstance(e, IsADirectoryError) or code == errno.EISDIR:
        return f"{p} is a folder, not a file; give the path of the file inside it"
    if isinstance(e, FileExistsError) or code == errno.EEXIST:
        return f"{p} exists and is a file, not a folder; give a folder (or a new name)"
    if isinstance(e, NotADirectoryError) or code == errno.ENOTDIR:
        return f"{p}: a part of this path is a file, not a folder; check the path"
    if isinstance(e, PermissionError) or code in (errno.EACCES, errno.EPERM):
        return f"{p}: permission denied; make it readable (and writable where it is written), e.g. chmod u+rw {p}"
    if code == errno.ENOSPC:
        return f"{p}: no space left on the device; free some space and run again"
    if code == errno.EROFS:
        return f"{p}: the file system is read-only; choose a writable place"
    if isinstance(e, BrokenPipeError):
        return "the output was closed before everything was written (e.g. piped into head)"
    reason = e.strerror or str(e) or type(e).__name__
    return f"{p}: {reason[0].lower() + reason[1:] if reason else 'cannot be used'}"


def check_user_file(path: str | Path, *, what: str = "file", max_bytes: int = MAX_CSV_BYTES) -> Path:
    """Check that `path` is a readable regular file no larger than `max_bytes`, without reading it.

    Args:
        path: the path the user gave.
        what: what the file is, for messages ("review.toml", "extraction CSV").
        max_bytes: the size limit.
    Returns:
        the path.
    Raises:
        UserFileError: a missing path, a folder, not a regular file, unreadable, too large.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise UserFileError(describe_os_error(e, p)) from None
    if stat.S_ISDIR(st.st_mode):
        raise UserFileError(f"{p} is a folder, not a file; give the path of the {what} inside it")
    if not stat.S_ISREG(st.st_mode):
        raise UserFileError(f"{p} is not a regular file (a device, pipe or socket); give the path of the {what}")
    if st.st_size > max_bytes:
        raise UserFileError(
            f"{p}: {_size(st.st_size)} is larger than the {_size(max_bytes)} a {what} may have; is it the right file?"
        )
    if not os.access(p, os.R_OK):
        raise UserFileError(describe_os_error(PermissionError(errno.EACCES, "Permission denied", str(p)), p))
    return p


def decode_user_bytes(data: bytes, source: str, *, what: str = "file") -> str:
    """Decode a user's file as UTF-8 text (a BOM is dropped), or say exactly why it is not.

    Args:
        data: the file's bytes.
        source: the file name for messages.
        what: what the file is, for messages.
    Returns:
        the text, line endings normalised to "\\n".
    Raises:
        UserFileError: UTF-16/UTF-32 text, a binary file, or bytes that are not UTF-8 (line and byte offset).
    """
    for bom, name in (
        (codecs.BOM_UTF32_LE, "UTF-32"),
        (codecs.BOM_UTF32_BE, "UTF-32"),
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
    ):
        if data.startswith(bom) and not data.startswith(codecs.BOM_UTF8):
            raise UserFileError(
                f"{source}: the file is {name} text; save it as UTF-8 (e.g. in Excel: "
                f"Save As → CSV UTF-8; in an editor: encoding UTF-8)"
            )
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    head = data[:_SNIFF]
    if b"\x00" in head:
        # UTF-16 without a BOM has a NUL beside every ASCII letter
        utf16 = head.count(b"\x00") * 3 >= len(head)
        raise UserFileError(
            f"{source}: this is a binary file, not a text {what}"
            + (" (or UTF-16 text: save it as UTF-8)" if utf16 else "; is it the right file?")
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        bad = data[e.start]
        hint = "save it as UTF-8"
        try:
            data.decode("cp1252")
            hint = "it looks like Latin-1 (Windows-1252) text: save it as UTF-8 (e.g. in Excel: Save As → CSV UTF-8)"
        except UnicodeDecodeError:
            pass
        raise UserFileError(
            f"{source}, line {line}, column {column}: not UTF-8 text (byte 0x{bad:02x} at offset {e.start}); {hint}"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_user_text(
    path: str | Path,
    *,
    what: str = "file",
    max_bytes: int = MAX_CSV_BYTES,
    allow_empty: bool = False,
    empty_hint: str = "",
) -> str:
    """Read a file the user gave as UTF-8 text, with one clear message for every way it can be unusable.

    Args:
        path: the path the user gave.
        what: what the file is, for messages ("review.toml", "extraction CSV").
        max_bytes: the size limit, checked before reading.
        allow_empty: return "" for an empty (or whitespace-only) file instead of refusing it.
        empty_hint: what an empty file should hold, appended to its message.
    Returns:
        the text (BOM dropped, line endings normalised).
    Raises:
        UserFileError: see the module docstring.
    """
    p = check_user_file(path, what=what, max_bytes=max_bytes)
    try:
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as e:
        raise UserFileError(describe_os_error(e, p)) from None
    if len(data) > max_bytes:  # grew since stat, or a special file that reports no size
        raise UserFileError(f"{p}: larger than the {_size(max_bytes)} a {what} may have; is it the right file?")
    text = decode_user_bytes(data, str(p), what=what)
    if not allow_empty and not text.strip():
        raise UserFileError(f"{p}: the file is empty" + (f"; {empty_hint}" if empty_hint else ""))
    return text
