"""The reports in a real headless browser (Debian's chromium driven by Playwright): opened from file:// with no
console message and no request but file:// ones; one row per sample whose audio exists on disk; sorting; the
metric cells are the results file's values; injected markup stays text; missing wavs are shown."""

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from alignslm_eval.cli.eval import main as eval_cli
from alignslm_eval.report import page as page_module
from alignslm_train.cli import main as train_cli
from tests.report.runs import HOSTILE, synthetic_run

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium), as .ci/run does")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Opened:
    """A report page opened from file://, with every console message, page error and request it made."""

    def __init__(self, browser, path: Path):
        self.messages, self.requests = [], []
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.page.on("console", lambda m: self.messages.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.messages.append(f"error: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector("body[data-ready]", timeout=30_000)

    def check_offline_and_quiet(self) -> None:
        assert self.messages == []
        assert self.requests and all(url.startswith("file://") for url in self.requests)

    def audio_files(self, selector: str) -> list[Path]:
        urls = self.page.eval_on_selector_all(selector, "els => els.map(a => a.src)")
        return [Path(unquote(urlsplit(url).path)) for url in urls]


def report(cli, argv: list[str], capsys) -> Path:
    assert cli(["report", *argv]) == 0, capsys.readouterr().err
    return Path(capsys.readouterr().out.strip().removeprefix("report: "))


@pytest.mark.slow
def test_demo_report(browser, demo_results, tmp_path, capsys):
    page_path = report(eval_cli, [str(demo_results.parent), "--output", str(tmp_path / "demo.html")], capsys)
    opened = Opened(browser, page_path)
    opened.check_offline_and_quiet()
    results = json.loads(demo_results.read_text())
    page = opened.page
    for task, entry in results["tasks"].items():
        cells = page.eval_on_selector_all(
            f'section[data-task="{task}"] table.metrics tr[data-metric]',
            "rows => rows.map(r => [r.dataset.metric, r.dataset.group, r.querySelector('td.value').dataset.value])")
        expected = [(m, "", v["value"]) for m, v in entry["result"]["metrics"].items()]
        expected += [(b, g, v["value"]) for b, groups in entry["result"].get("breakdowns", {}).items()
                     for g, v in groups.items()]
        assert sorted((m, g, float(v)) for m, g, v in cells) == sorted(expected)
    section = 'section[data-task="continuation"]'
    rows = page.locator(f"{section} tr.sample")
    assert rows.count() == results["tasks"]["continuation"]["dataset"]["n_samples"]
    wavs = opened.audio_files(f"{section} tr.sample audio")
    assert len(wavs) == 2 * rows.count() and all(p.is_file() for p in wavs)
    # Playable: the browser reads the continuation's header and finds a duration.
    duration = page.eval_on_selector(f"{section} tr.sample td:nth-child(4) audio", """a => new Promise(done => {
        a.addEventListener('loadedmetadata', () => done(a.duration)); a.preload = 'metadata'; a.load(); })""")
    assert duration >= 0
    values = f"{section} td[data-metric=genppl]"
    page.click(f"{section} th[data-sort=genppl]")
    ascending = page.eval_on_selector_all(values, "tds => tds.map(td => td.dataset.value ?? null)")
    scored = [float(v) for v in ascending if v is not None]
    assert scored == sorted(scored) and len(scored) >= 2
    assert ascending[: len(scored)] == [v for v in ascending if v is not None]  # unscored rows last
    page.click(f"{section} th[data-sort=genppl]")
    descending = [float(v) for v in page.eval_on_selector_all(values, "tds => tds.map(td => td.dataset.value ?? null)")
                  if v is not None]
    assert descending == sorted(scored, reverse=True)
    page.select_option(f"{section} select.filter", "unscored")
    unscored = sum(1 for line in open(results["tasks"]["continuation"]["files"]["samples"])
                   if any(s["value"] is None for s in json.loads(line)["scores"].values()))
    assert page.locator(f"{section} tr.sample").count() == unscored
    choices = page.locator('section[data-task="swuggy"] tr.choice')
    assert choices.count() == min(50, results["tasks"]["swuggy"]["dataset"]["n_choices"])
    page.screenshot(path=str(tmp_path / "demo-report.png"), full_page=True)
    opened.check_offline_and_quiet()  # clicking, sorting and loading audio fetched nothing from the network


def test_injected_markup_in_names_transcripts_and_answers_stays_text(browser, tmp_path, capsys):
    run = synthetic_run(tmp_path / "runs" / "hostile", 6, model_name=HOSTILE, text=HOSTILE, answer=HOSTILE)
    opened = Opened(browser, report(eval_cli, [str(run.parent)], capsys))
    opened.check_offline_and_quiet()
    page = opened.page
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0 and page.locator("main script").count() == 0
    assert HOSTILE in page.locator("h1").text_content()
    assert page.locator("table.header-table td").first.text_content() == HOSTILE
    texts = page.eval_on_selector_all("tr.sample td:nth-child(3) .text", "els => els.map(e => e.textContent)")
    assert texts == [f"{HOSTILE} {i}" for i in range(6)]
    answers = page.eval_on_selector_all("td[data-metric=semantic_rating] .answer", "els => els.map(e => e.textContent)")
    assert answers and all(a.startswith(HOSTILE) for a in answers)


def test_missing_wavs_are_shown_and_row_files_load(browser, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(page_module, "INLINE_ROWS_BYTES", 0)  # rows from files beside the page, as a large run's
    monkeypatch.setattr(page_module, "ROWS_PER_FILE", 5)
    run = synthetic_run(tmp_path / "runs" / "tiny", 12)
    gone = sorted((run.parent / "continuations").rglob("*.wav"))[::4]
    for path in gone:
        path.unlink()
    page_path = report(eval_cli, [str(run.parent)], capsys)
    assert len(list((page_path.parent / "report_files").glob("rows-*.js"))) == 3
    opened = Opened(browser, page_path)
    opened.check_offline_and_quiet()
    shown = opened.page.eval_on_selector_all("tr.sample .missing", "els => els.map(e => e.textContent)")
    assert sorted(Path(t.removeprefix("missing: ")).name for t in shown) == sorted(p.name for p in gone)
    assert opened.page.locator("tr.sample").count() == 12
    opened.page.select_option("select.filter", "missing audio")
    assert opened.page.locator("tr.sample").count() == len(gone)


@pytest.mark.slow
def test_training_report(browser, training_run, tmp_path, capsys):
    page_path = report(train_cli, [str(training_run), "--output", str(tmp_path / "train.html")], capsys)
    opened = Opened(browser, page_path)
    opened.check_offline_and_quiet()
    page = opened.page
    assert page.locator("section.round").count() == 2
    for k in (1, 2):
        section = f'section.round[data-round="{k}"]'
        n_pairs = sum(1 for _ in open(training_run / f"round-{k}" / "pairs.jsonl"))
        assert page.locator(f"{section} tr.pair").count() == n_pairs > 0
        wavs = opened.audio_files(f"{section} tr.pair audio")
        assert len(wavs) == 3 * n_pairs and all(p.is_file() for p in wavs)
        assert page.locator(f"{section} .histogram").count() == 2
    assert page.locator(".chart.line").count() >= 1 + 2  # the eval curve, and each round's DPO log
    page.screenshot(path=str(tmp_path / "train-report.png"), full_page=True)
