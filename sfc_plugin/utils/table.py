"""Plain-text tables of per-video, per-class or per-category results, for the log (every metric's)."""
import io
from typing import Sequence

from rich import box
from rich.console import Console
from rich.table import Table


def format_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render ``rows`` under ``header`` as a text table (floats with 2 decimals)."""
    table = Table(title=title, box=box.ASCII)
    for index, name in enumerate(header):
        table.add_column(name, justify='left' if index == 0 else 'right')
    for row in rows:
        table.add_row(*(f'{value:.2f}' if isinstance(value, float) else str(value) for value in row))
    console = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False)
    console.print(table)
    return console.file.getvalue()
