"""The page file: data can never end its script element, rows go to row files past the inline size, the policy's
hash is the inline script's, audio links resolve from the page (or are embedded)."""

import base64
import hashlib
import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.report import page
from alignslm_eval.report.page import AudioLinks, write_page
from tests.report.runs import HOSTILE


def test_run_text_cannot_end_the_data_element_and_the_policy_hashes_the_script(tmp_path):
    out = write_page(tmp_path / "r.html", {"title": HOSTILE, "kind": "eval", "runs": []}, {"t": [{"text": HOSTILE}]})
    html = out.read_text()
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in data and json.loads(data)["tables"]["t"]["rows"][0]["text"] == HOSTILE
    assert "<script>window.__pwned" not in html and "&lt;script&gt;" in html.split("</title>")[0]
    script = re.search(r"<script>(.*)</script>\s*</body>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html and "connect-src" not in html  # default-src 'none' covers it


def test_large_tables_go_to_row_files_and_stale_ones_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(page, "INLINE_ROWS_BYTES", 10)
    monkeypatch.setattr(page, "ROWS_PER_FILE", 4)
    (tmp_path / "r_files").mkdir()
    (tmp_path / "r_files" / "rows-old-0.js").write_text("stale")
    (tmp_path / "r_files" / "notes.txt").write_text("the user's")
    write_page(tmp_path / "r.html", {"kind": "eval", "runs": []}, {"t": [{"i": i} for i in range(10)]})
    files = sorted(p.name for p in (tmp_path / "r_files").iterdir())
    assert files == ["notes.txt", "rows-t-0.js", "rows-t-1.js", "rows-t-2.js"]
    rows = []
    for name in files[1:]:
        text = (tmp_path / "r_files" / name).read_text()
        chunk_id, body = re.fullmatch(r'alignslmRows\("(t/\d)",(.*)\);\n', text, re.S).groups()
        rows += json.loads(body)
    assert rows == [{"i": i} for i in range(10)]


def test_audio_links_resolve_from_the_page_and_embed_on_request(tmp_path, monkeypatch):
    wav = tmp_path / "a dir" / "x #1.wav"
    wav.parent.mkdir()
    wav.write_bytes(b"RIFF0000WAVE")
    (tmp_path / "pages").mkdir()
    link = AudioLinks(tmp_path / "pages").link(str(wav))
    assert (tmp_path / "pages" / unquote(link["src"])).resolve() == wav.resolve() and "#" not in link["src"]
    assert AudioLinks(tmp_path).link(str(tmp_path / "gone.wav")) == {"missing": str(tmp_path / "gone.wav")}
    embedded = AudioLinks(tmp_path, embed=True).link(str(wav))["src"]
    assert base64.b64decode(embedded.removeprefix("data:audio/wav;base64,")) == wav.read_bytes()
    monkeypatch.setattr(page, "EMBED_AUDIO_LIMIT_BYTES", 4)
    with pytest.raises(UserError, match="--embed-audio"):
        AudioLinks(tmp_path, embed=True).link(str(wav))


def test_a_recorded_relative_path_is_found_beside_the_results_file(tmp_path):
    wav = tmp_path / "runs" / "m" / "continuations" / "k" / "a.wav"
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"x")
    assert page.locate("runs/m/continuations/k/a.wav", tmp_path / "runs" / "m") == tmp_path / "runs" / "m" / \
        "continuations" / "k" / "a.wav"
    assert page.locate("elsewhere/b.wav", tmp_path) is None
