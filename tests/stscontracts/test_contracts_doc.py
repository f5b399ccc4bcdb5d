"""docs/CONTRACTS.md §0 agrees with the contracts package, row for row.

The names table lists every string constant of stscontracts/names.py with its
value; the metric registry table every row of stscontracts.metrics.METRICS
with what follows from its direction; the schema table every kind of
stscontracts.documents. A row that disagrees, is missing or is extra fails.
"""

from __future__ import annotations

import re

import pytest

from stscontracts import documents, metrics, names

CELL_CODE = re.compile(r"`([^`]*)`")


def table(doc: str, heading: str) -> list[list[str]]:
    """The cells of the first table after ``heading`` (header and separator rows left out)."""
    start = doc.index(f"\n{heading}\n")
    rows, started = [], False
    for line in doc[start:].splitlines()[1:]:
        if line.startswith("|"):
            started = True
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif started:
            break
    return rows[2:]


def code(cell: str) -> str:
    """The text inside a cell's backticks, exactly (a value may end in a space)."""
    match = CELL_CODE.fullmatch(cell)
    assert match, f"expected one `code` value, got {cell!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def doc(repo_root) -> str:
    return (repo_root / "docs" / "CONTRACTS.md").read_text(encoding="utf-8")


def test_the_names_table_is_names_py(doc):
    documented = {code(row[0]): code(row[1]) for row in table(doc, "### Names")}
    actual = {key: value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)}
    assert documented == actual


def test_the_metric_table_is_the_registry(doc):
    def flag(value: bool) -> str:
        return "yes" if value else ""

    documented = [row for row in table(doc, "### The metric registry (`stscontracts/metrics.py`)")]
    actual = [[f"`{m.name}`", m.problem_type, m.direction, f"`{m.comparison_operator}`", m.alarm_statistic,
               flag(m.gate), flag(m.constrained), flag(m.monitored)] for m in metrics.METRICS]
    assert documented == actual


def test_the_schema_table_is_the_documents_module(doc):
    files = {kind: name for name, kind in documents.FILE_KINDS.items()}
    documented = table(doc, "### Schemas (`stscontracts/schemas/`, `stscontracts/documents.py`)")
    actual = [[f"`{kind}`", f"`{kind}.schema.json`", f"`{files[kind]}`" if kind in files else ""] for kind in documents.KINDS]
    assert documented == actual
    assert all((documents.SCHEMA_DIR / code(row[1])).is_file() for row in documented)

