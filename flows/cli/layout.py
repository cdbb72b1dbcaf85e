"""Tables for the terminal that stay readable at any width.

A wide table squeezed into an 80-column terminal truncates every cell to "…", which hides the very numbers
people came for. `print_table` prints the table when it fits and otherwise one block per row, one
"column: value" line each, so nothing is ever cut.
"""

from __future__ import annotations

from typing import Any, Sequence

from rich.console import Console
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from flows.cli.output import clean, styled


def fmt_cell(column: str, value: Any) -> str:
    """A value for the terminal: 3 significant digits for estimates, p as 0.023 or <0.001, I² in percent."""
    # livingmeta.report's package imports jinja2: only a table of numbers needs the formatters
    from livingmeta.report.document import fmt_count, fmt_p, fmt_percent, fmt_value

    if value is None or value == "":
        return "–" if value is None else ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        name = column.lower()
        if name in ("p", "p_value", "q_p") or name.startswith("p_") or name.endswith(" p"):
            return fmt_p(value)
        if name in ("i2", "i²"):
            return fmt_percent(value)
        if name in ("k", "participants", "n", "found", "new", "changed", "unchanged", "deleted", "version"):
            return fmt_count(value)
        return fmt_value(value) if isinstance(value, float) else str(value)
    return str(value)


def _natural_width(columns: Sequence[str], cells: Sequence[Sequence[str]], wrap: Sequence[str]) -> int:
    """Width of the table with every non-wrapping cell whole (rich would squeeze them to "…" instead)."""
    total = 1  # the left border
    for i, c in enumerate(columns):
        texts = [c] + [r[i] for r in cells]
        if c in wrap:
            need = max(12, *(cell_len(w) for t in texts for w in t.split() or [""]))
        else:
            need = max(cell_len(line) for t in texts for line in t.splitlines() or [""])
        total += need + 3  # padding either side and the border after it
    return total


def print_table(console: Console, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                title: str | None = None, key_column: int = 0, wrap: Sequence[str] = ()) -> None:
    """Print rows as a table when it fits the terminal, else as one block per row (never truncated).

    Args:
        console: where to print (its width decides the layout).
        columns: column headings.
        rows: cell values, already formatted or formatted by `fmt_cell`.
        title: printed above the table or the blocks.
        key_column: the column that names each block in the narrow layout (a blank key continues the
            block above, e.g. a study's second record).
        wrap: columns of free text (titles) that may wrap onto several lines instead of forcing the
            narrow layout.
    """
    # every cell is data (titles, ids from sources): cleaned text, never markup, measured as it will be shown
    cells = [[clean(c if isinstance(c, str) else fmt_cell(columns[i], c)) for i, c in enumerate(r)] for r in rows]
    columns = [clean(c) for c in columns]
    wrap = [clean(c) for c in wrap]
    table = Table(title=styled(title) if title else None)
    for c in columns:
        if c in wrap:
            table.add_column(Text(c), overflow="fold", min_width=12)
        else:
            table.add_column(Text(c), no_wrap=True, overflow="fold")
    for r in cells:
        table.add_row(*(Text(v) for v in r))
    if _natural_width(columns, cells, wrap) <= console.width:
        console.print(table)
        return
    if title:
        console.print(styled(title, "bold"))
    for r in cells:
        if r[key_column]:
            console.print(Text(f"── {r[key_column]} ", style="bold"))
        block = Table.grid(padding=(0, 2))
        block.add_column(style="dim", no_wrap=True)
        block.add_column(overflow="fold")  # long values wrap under themselves, ids are never cut
        for i, (c, v) in enumerate(zip(columns, r)):
            if i != key_column and v != "":
                block.add_row(Text(f"  {c}"), Text(v))
        console.print(block)
