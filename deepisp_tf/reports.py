"""One report writer for every tool: a document as JSON + Markdown (+ CSV per table), atomically.

A report is a JSON-friendly document (settings, rows, means, ...) plus named `Table`s built from
its rows. `write_report(folder, name, document, markdown, tables)` writes, each atomically
(`deepisp_tf.atomic`):

    <name>.json           the document, strict JSON (a non-finite float becomes "inf"/"nan"),
                          with every table's columns and rows under "tables"
    <name>.md             the Markdown the tool prints (its tables rendered by `Table.markdown`)
    <name>[_<table>].csv  one CSV per table (no suffix for a table named like the report)

Because the tables' columns travel in the JSON, a README table is regenerated from a runner's
output without re-running it:

    python -m deepisp_tf.reports runs/quickstart/eval/synthetic/report.json [TABLE]

TF-free (numpy is not even needed), so the runtime, the benchmarks and android_bench use it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import sys
from typing import Any, Mapping, Sequence

from deepisp_tf import atomic

MISSING = "–"


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a table.

    Attributes:
      key: the row field it shows.
      title: its Markdown header (CSV headers are the keys).
      fmt: how a number is shown in Markdown: a format spec (".2f", "d"), "" for str(), or
        "auto" (3 decimals below 10, 2 below 100, else 1).
      numeric: right-aligned in Markdown.
    """

    key: str
    title: str = ""
    fmt: str = ""
    numeric: bool = False

    @property
    def header(self) -> str:
        """Return the Markdown header (the key when no title is given)."""
        return self.title or self.key


def format_value(value: Any, fmt: str = "") -> str:
    """Format one cell for Markdown: None or "" -> MISSING, numbers by `fmt` (`Column.fmt`)."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if fmt == "auto":
        if isinstance(value, int):
            return str(value)
        if abs(value) < 10:
            return f"{value:.3f}"
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"
    return format(value, fmt) if fmt else str(value)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@dataclasses.dataclass(frozen=True)
class Table:
    """Rows (mappings of key -> value) under columns; rendered as Markdown, CSV or JSON.

    Attributes:
      columns: every column, in CSV/JSON order.
      rows: the rows; a key a row lacks is a missing cell.
      markdown_keys: the columns shown in Markdown, in that order (default: all).
      footer: a summary row (e.g. the mean): bold in Markdown, the last line of the CSV.
    """

    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, Any], ...]
    markdown_keys: tuple[str, ...] | None = None
    footer: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, columns: Sequence[Column], rows: Sequence[Mapping[str, Any]],
           markdown_keys: Sequence[str] | None = None,
           footer: Mapping[str, Any] | None = None) -> "Table":
        """Build a table from any sequences (copied into tuples)."""
        keys = {column.key for column in columns}
        unknown = [key for key in markdown_keys or () if key not in keys]
        if unknown:
            raise ValueError(f"markdown_keys {unknown} are not columns of the table")
        return cls(tuple(columns), tuple(rows),
                   None if markdown_keys is None else tuple(markdown_keys),
                   None if footer is None else dict(footer))

    def markdown(self) -> str:
        """Return the table as GitHub Markdown (header, alignment row, one line per row)."""
        by_key = {column.key: column for column in self.columns}
        shown = [by_key[key] for key in self.markdown_keys] if self.markdown_keys \
            else list(self.columns)
        lines = ["| " + " | ".join(_escape(column.header) for column in shown) + " |",
                 "|" + "|".join("---:" if column.numeric else "---" for column in shown) + "|"]
        lines += ["| " + " | ".join(_escape(format_value(row.get(column.key), column.fmt))
                                    for column in shown) + " |" for row in self.rows]
        if self.footer is not None:
            cells = [_escape(format_value(self.footer.get(column.key), column.fmt))
                     if self.footer.get(column.key) is not None else "" for column in shown]
            lines.append("| " + " | ".join(f"**{cell}**" if cell else "" for cell in cells)
                         + " |")
        return "\n".join(lines)

    def csv(self) -> str:
        """Return the table as CSV text: a header of the keys, raw values ("" when missing)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([column.key for column in self.columns])
        for row in (*self.rows, *([self.footer] if self.footer is not None else [])):
            writer.writerow(["" if row.get(column.key) is None else row[column.key]
                             for column in self.columns])
        return buffer.getvalue()

    def to_json(self) -> dict[str, Any]:
        """Return {"columns", "rows", "markdown_keys", "footer"}, JSON-friendly."""
        return {"columns": [dataclasses.asdict(column) for column in self.columns],
                "rows": [dict(row) for row in self.rows],
                "markdown_keys": None if self.markdown_keys is None else list(self.markdown_keys),
                "footer": None if self.footer is None else dict(self.footer)}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "Table":
        """Invert `to_json` (also after a JSON round trip)."""
        return cls.of([Column(**column) for column in value["columns"]], value["rows"],
                      value.get("markdown_keys"), value.get("footer"))


def finite(value: Any) -> Any:
    """Return `value` for strict JSON: numpy scalars (and 0-d arrays) as Python numbers, without
    importing numpy; non-finite floats (an identical image's inf PSNR) as strings."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def json_text(value: Any) -> str:
    """Return `value` as strict, indented JSON text (non-finite floats as strings)."""
    return json.dumps(finite(value), indent=2, allow_nan=False) + "\n"


def report_paths(folder: str, name: str, tables: Sequence[str] = ()) -> dict[str, str]:
    """Return {"json": ..., "md": ..., "csv" or "csv:<table>": ...} of a report's files."""
    paths = {"json": os.path.join(folder, f"{name}.json"),
             "md": os.path.join(folder, f"{name}.md")}
    for table in tables:
        suffix = "" if table == name else f"_{table}"
        paths["csv" if table == name else f"csv:{table}"] = os.path.join(
            folder, f"{name}{suffix}.csv")
    return paths


def write_report(folder: str, name: str, document: Mapping[str, Any], markdown: str,
                 tables: Mapping[str, Table] | None = None) -> dict[str, str]:
    """Write <name>.json, <name>.md and one CSV per table into `folder`, each atomically.

    Args:
      folder: the report folder (created).
      name: the file stem ("report", "results", "run").
      document: the JSON document; the tables are added under "tables" (a document that
        already has a "tables" key is refused).
      markdown: the Markdown text (usually built with the tables' `markdown()`).
      tables: named tables; each also becomes a CSV file.

    Returns:
      The paths written (`report_paths`).
    """
    tables = dict(tables or {})
    if tables and "tables" in document:
        raise ValueError(f"{name}: the document already has a 'tables' key")
    paths = report_paths(folder, name, list(tables))
    for table_name, table in tables.items():
        atomic.write_text(paths["csv" if table_name == name else f"csv:{table_name}"],
                          table.csv())
    content = {**document, **({"tables": {key: table.to_json() for key, table in tables.items()}}
                              if tables else {})}
    atomic.write_text(paths["json"], json_text(content))
    atomic.write_text(paths["md"], markdown if markdown.endswith("\n") else markdown + "\n")
    return paths


def read_json(path: str) -> dict[str, Any] | None:
    """Return the JSON object in `path`, or None when the file does not exist."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def tables_of(path: str) -> dict[str, Table]:
    """Return the tables stored in a report's JSON file, by name."""
    document = read_json(path)
    if document is None:
        raise FileNotFoundError(f"{path}: no such report")
    return {name: Table.from_json(value) for name, value in (document.get("tables") or {}).items()}


def main(argv: Sequence[str]) -> int:
    """Print the Markdown of a report's tables: `python -m deepisp_tf.reports FILE [TABLE]`."""
    if len(argv) not in (1, 2):
        print("usage: python -m deepisp_tf.reports REPORT.json [TABLE]", file=sys.stderr)
        return 2
    tables = tables_of(argv[0])
    wanted = argv[1:] or list(tables)
    missing = [name for name in wanted if name not in tables]
    if missing or not tables:
        print(f"{argv[0]}: no table {missing or ''} (tables: {sorted(tables)})", file=sys.stderr)
        return 1
    print("\n\n".join(tables[name].markdown() for name in wanted))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
