"""Leaderboards: alignslm results files and published reference numbers in one table, plus plots.

    from alignslm_eval.leaderboard import collect, load_reference, build_table, render
    rows, skipped = collect([Path("runs")])
    reference, sources = load_reference()
    print(render(build_table(rows + reference, sources), "md"))

The command line is `alignslm-leaderboard` (`alignslm_eval.cli.leaderboard:main`); plots need matplotlib.
"""

from alignslm_eval.leaderboard.collect import Column, Measurement, Row, collect, load_results, registered_info
from alignslm_eval.leaderboard.reference import DEFAULT_REFERENCE, Source, load_reference
from alignslm_eval.leaderboard.render import RENDERERS, Table, build_table


def render(table: Table, fmt: str = "md") -> str:
    """The table as `md`, `csv`, `html` or `latex` text."""
    return RENDERERS[fmt](table)


__all__ = [
    "DEFAULT_REFERENCE",
    "RENDERERS",
    "Column",
    "Measurement",
    "Row",
    "Source",
    "Table",
    "build_table",
    "collect",
    "load_reference",
    "load_results",
    "registered_info",
    "render",
]
