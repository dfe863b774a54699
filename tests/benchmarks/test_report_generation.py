"""The report of a 10,000-sample run: generation time and page size, and the page's first render in headless
chromium (navigation to the first page of rows drawn, rows loaded from the files beside the page).

Run with `python -m pytest tests/benchmarks/test_report_generation.py --benchmark-enable -s` for the figures; under
the default (disabled) mode generation runs once, and the render is still timed and bounded.
"""

import time
from pathlib import Path

import pytest

from alignslm_eval.report import ReportOptions, build_eval_report
from tests.report.runs import synthetic_run

N_SAMPLES = 10_000
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def large_run(tmp_path_factory):
    return synthetic_run(tmp_path_factory.mktemp("large") / "runs" / "big-lm", N_SAMPLES, seconds=0.02)


def page_bytes(page: Path) -> int:
    files = page.with_name(f"{page.stem}_files")
    return page.stat().st_size + sum(p.stat().st_size for p in files.glob("*"))


@pytest.mark.slow
def test_report_of_10000_samples(benchmark, large_run, tmp_path):
    output = tmp_path / "report.html"
    started = time.perf_counter()
    page, _ = benchmark(lambda: build_eval_report([large_run.parent], ReportOptions(output=output)))
    took = time.perf_counter() - started  # one build when benchmarks are disabled; see the table when enabled
    size = page_bytes(page)
    print(f"\nreport of {N_SAMPLES} samples: built in {took:.2f} s; page {page.stat().st_size / 1e6:.2f} MB + row "
          f"files, {size / 1e6:.2f} MB in all")
    # The rows live beside the page, not in it: the page itself stays small whatever the run's size.
    assert page.stat().st_size < 200_000 < size

    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium, as .ci/run does")
    # the baseline, side by side: a run of one page of rows; the ratio says what the other 9,950 rows cost
    small = build_eval_report([synthetic_run(tmp_path / "small" / "runs" / "small-lm", 50, seconds=0.02).parent],
                              ReportOptions(output=tmp_path / "small.html"))[0]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            small_ms, _ = _render(browser, small, 50)
            ready_ms, sort_ms = _render(browser, page, N_SAMPLES)
        finally:
            browser.close()
    print(f"first render in headless chromium: {ready_ms:.0f} ms for {N_SAMPLES} samples, {small_ms:.0f} ms for 50 "
          f"(ratio {ready_ms / small_ms:.2f}); sorting {N_SAMPLES} rows: {sort_ms:.0f} ms")


def _render(browser, page: Path, n: int) -> tuple[float, float]:
    """(ms to the first page of rows drawn, ms to sort every row by a score), checking what was drawn."""
    tab = browser.new_page()
    errors = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(page.resolve().as_uri())
    tab.wait_for_selector("body[data-ready]", timeout=60_000)
    ready_ms = tab.evaluate("window.__alignslmReadyMs")
    assert errors == [] and tab.locator("tr.sample").count() == min(n, 50)
    assert tab.locator("span.range").first.text_content().strip() == f"rows 1–{min(n, 50)} of {n}"
    sort_ms = tab.evaluate("""() => { const t = performance.now();
        document.querySelector('th[data-sort=semantic_rating]').click(); return performance.now() - t; }""")
    tab.close()
    return ready_ms, sort_ms
