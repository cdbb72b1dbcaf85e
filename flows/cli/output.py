"""The one way the command line prints: everything is text, never markup, never raw control codes, never a secret.

Titles, abstracts, study ids, file contents and server errors come from outside. Printed as rich markup, a
PubMed title holding `[/]` raises MarkupError and stops a whole screening session; printed raw, an ANSI escape
or a bidi override in a record rewrites what the terminal shows; an error echoed by a server may carry the
NCBI api_key. So every console the CLI uses is a `SafeConsole`:

- a string given to it (directly, or as a table cell, a column heading, a title) is plain text — its markup
  and emoji codes are not interpreted — after `clean`: redacted (`livingmeta.redaction.redact_text`), ANSI/ESC
  sequences removed, other C0/C1 control characters and bidi controls shown as visible escapes (`\\x07`,
  `\\u202e`); newline and tab are kept;
- a rich `Text` given to `print` is cleaned the same way with its styles kept (our own styling is built as
  `Text`, see `styled`/`line`);
- every segment it finally writes is redacted and loses any control code still in it (a last guard for a
  Text nested in a panel or grid that was built without `clean`).

JSON output goes through `print_json` (redacted; json.dumps escapes control characters itself).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Iterable

from rich.console import Console
from rich.segment import Segment
from rich.text import Text

from livingmeta.redaction import redact_data, redact_text

# ESC-introduced sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other two-byte escapes;
# also the 8-bit CSI (U+009B).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
                   r"|\x1b[ -/]*[0-~]?|\x9b[0-?]*[ -/]*[@-~]?")
# C0 and C1 controls except tab and newline (a lone CR would let a line overwrite itself), DEL, and the bidi
# embedding/override/isolate controls and marks that reorder what the terminal shows (the "Trojan source" set)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


# table and panel borders and padding: nothing to redact or strip (most segments of a table)
_LAYOUT_ONLY = frozenset(" \n─━│┃┄┅┆┇┈┉┊┋┌┍┎┏┐┑┒┓└┕┖┗┘┙┚┛├┝┞┟┠┡┢┣┤┥┦┧┨┩┪┫┬┭┮┯┰┱┲┳┴┵┶┷┸┹┺┻┼┽┾┿╀╁╂╃╄╅╆╇╈╉╊╋"
                         "═║╒╓╔╕╖╗╘╙╚╛╜╝╞╟╠╡╢╣╤╥╦╧╨╩╪╫╬╭╮╯╰╴╵╶╷╸╹╺╻╼╽╾╿")


def _visible(m: re.Match) -> str:
    c = m.group(0)
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def clean(value: Any) -> str:
    """`value` as text that is safe to print: redacted, ANSI sequences removed, controls shown as escapes.

    Newlines and tabs are kept; `\\r\\n` becomes `\\n`.
    """
    text = redact_text(value if isinstance(value, str) else str(value))
    if not _CONTROLS.search(text):  # ESC is one of them
        return text
    text = _ANSI.sub("", text.replace("\r\n", "\n"))
    return _CONTROLS.sub(_visible, text)


def clean_text(text: Text) -> Text:
    """A rich Text cleaned like `clean`, keeping the styles of the parts that stay."""
    plain = text.plain
    if clean(plain) == plain:
        return text
    out = Text(style=text.style, justify=text.justify, overflow=text.overflow, no_wrap=text.no_wrap, end=text.end)
    # clean piece by piece, each piece keeping its spans' styles (a secret split across styles is rare:
    # the whole plain text is redacted first below when that happens)
    whole = clean(plain)
    pieces = text.divide(sorted({s.start for s in text.spans} | {s.end for s in text.spans}))
    rebuilt = "".join(clean(p.plain) for p in pieces)
    if rebuilt != whole:  # cleaning the pieces apart differs (e.g. a secret across a style boundary): drop styles
        return Text(whole, style=text.style, end=text.end)
    for p in pieces:
        style = p.spans[0].style if p.spans else ""
        out.append(clean(p.plain), style=style or None)
    return out


def styled(value: Any, style: str | None = None) -> Text:
    """Data as a Text (cleaned), optionally styled: `styled(title, "bold")`."""
    return Text(clean(value), style=style or "")


def line(*parts: Any) -> Text:
    """One message of parts: strings are data (plain text, cleaned), Text parts keep their style.

    `line(styled("error:", "bold red"), " ", message)` replaces `f"[bold red]error:[/] {message}"`.
    """
    out = Text()
    for p in parts:
        if isinstance(p, Text):
            out.append_text(clean_text(p))
        else:
            out.append(clean(p))
    return out


class SafeConsole(Console):
    """A rich Console that prints every string as cleaned plain text (never markup) — see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("highlight", False)
        kwargs.setdefault("markup", False)
        kwargs.setdefault("emoji", False)
        super().__init__(*args, **kwargs)

    def render_str(self, text: str, *, style: Any = "", justify: Any = None, overflow: Any = None,
                   emoji: bool | None = None, markup: bool | None = None, highlight: bool | None = None,
                   highlighter: Any = None) -> Text:
        # every str on its way to the terminal passes here: print(str), table cells, headings and titles
        return Text(clean(text), style=style or "", justify=justify, overflow=overflow)

    def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: A003 - rich's name
        kwargs["markup"] = False
        kwargs["emoji"] = False
        kwargs.setdefault("highlight", False)
        objs = [clean_text(o) if isinstance(o, Text) else o for o in objects]
        super().print(*objs, **kwargs)

    _rendering = False

    def render(self, renderable: Any, options: Any = None) -> Iterable[Segment]:
        # the last guard, for a Text built from data without `clean` and nested in a panel or grid: no control
        # code and no secret leaves, even if a border then shifts (strings never get here unclean). Only the
        # outermost render checks segments: nested renders yield through it.
        if self._rendering:
            yield from super().render(renderable, options)
            return
        self._rendering = True
        try:
            for seg in super().render(renderable, options):
                text = seg.text
                if seg.control is None and text and not _LAYOUT_ONLY.issuperset(text):
                    text = redact_text(text)
                    if _CONTROLS.search(text):
                        text = _CONTROLS.sub("", _ANSI.sub("", text))
                    if text != seg.text:
                        seg = Segment(text, seg.style)
                yield seg
        finally:
            self._rendering = False


def make_console(stderr: bool = False, **kwargs: Any) -> SafeConsole:
    """A console for one command (e.g. a fixed width); prints like `console`/`err_console`."""
    return SafeConsole(stderr=stderr, **kwargs)


console = SafeConsole()
err_console = SafeConsole(stderr=True)


def say(*parts: Any, err: bool = False, **kwargs: Any) -> None:
    """Print one message (parts as in `line`) on standard output, or standard error with err=True."""
    (err_console if err else console).print(line(*parts), soft_wrap=kwargs.pop("soft_wrap", True), **kwargs)


def error(message: Any) -> None:
    """Print `error: message` on standard error (the message is data: cleaned, never markup)."""
    err_console.print(line(styled("error:", "bold red"), " ", message), soft_wrap=True)


def warning(message: Any, label: str = "warning:") -> None:
    """Print `warning: message` (or another label) on standard error."""
    err_console.print(line(styled(label, "bold yellow"), " ", message), soft_wrap=True)


def print_json(data: Any, **kwargs: Any) -> None:
    """Print data as JSON on standard output, redacted (json.dumps escapes control characters)."""
    kwargs.setdefault("default", str)
    sys.stdout.write(json.dumps(redact_data(_jsonable(data, kwargs["default"])), **kwargs) + "\n")


def _jsonable(data: Any, default: Any) -> Any:
    # redact_data walks dicts/lists/strings; dates and other objects become their JSON text first
    return json.loads(json.dumps(data, default=default))


def write_text(text: str) -> None:
    """Write file-like output (CSV, RIS) to standard output: redacted, and unchanged otherwise when it goes
    to a file or a pipe (it is data for a program); on a terminal its control codes are shown as escapes."""
    text = redact_text(text)
    if sys.stdout.isatty():
        text = _CONTROLS.sub(_visible, _ANSI.sub("", text))
    sys.stdout.write(text)
