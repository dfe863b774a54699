"""Writing the report page: one HTML file with its style, script and summary inline, and its table rows either
inline (small runs) or in script files beside it that the page loads as it needs them.

Rows travel as `<script src>` files rather than JSON fetched at run time because a page opened from `file://` may
not fetch (Chromium refuses cross-origin reads of local files), while it may load scripts. Every value from a run
(model names, transcripts, judge answers) reaches the page as JSON data and is shown with `textContent`; the page's
Content-Security-Policy lets only its own inline script (by hash) and the row files run, and allows no network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

from alignslm_eval.io.atomic import write_text
from alignslm_eval.io.errors import UserError

#: rows per row file: a file parses in a few milliseconds, so a 10,000-row table loads without blocking the page
ROWS_PER_FILE = 500
#: a page whose rows (as JSON) stay under this keeps them inline: one file, nothing beside it to lose
INLINE_ROWS_BYTES = 1_000_000
#: --embed-audio is refused above this: a page of hundreds of MiB of base64 no browser opens comfortably
EMBED_AUDIO_LIMIT_BYTES = 64 * 2**20
AUDIO_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}


@dataclass
class AudioLinks:
    """Turns audio files into what the page's `<audio>` elements play: a path relative to the page (URL-quoted),
    or with `embed` a data: URI. A file that is not there is reported as missing, with the path it was expected
    at."""

    page_dir: Path
    embed: bool = False
    embedded_bytes: int = 0
    _seen: dict[str, dict[str, Any]] = field(default_factory=dict)

    def link(self, path: Optional[str], base: Optional[Path] = None) -> Optional[dict[str, Any]]:
        """{"src": URL} for a file that exists, {"missing": path} otherwise; None when no path was recorded.
        `base`: where a relative recorded path is also looked for (the results file's folder)."""
        if not path:
            return None
        found = locate(path, base)
        if found is None:
            return {"missing": str(path)}
        key = str(found)
        if key not in self._seen:
            self._seen[key] = self._link_existing(found)
        return self._seen[key]

    def _link_existing(self, path: Path) -> dict[str, Any]:
        if self.embed:
            size = path.stat().st_size
            self.embedded_bytes += size
            if self.embedded_bytes > EMBED_AUDIO_LIMIT_BYTES:
                raise UserError(f"--embed-audio: the run's audio passes {EMBED_AUDIO_LIMIT_BYTES // 2**20} MiB (at "
                                f"{path}); leave --embed-audio off so the page links the wavs beside it")
            kind = AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream")
            return {"src": f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"}
        relative = os.path.relpath(path.resolve(), self.page_dir.resolve())
        return {"src": quote(Path(relative).as_posix(), safe="/._-~")}


def locate(recorded: str, base: Optional[Path] = None) -> Optional[Path]:
    """A path a run recorded, found on disk: as it is (absolute, or relative to the current directory), else below
    `base` by its trailing parts (a run recorded as `runs/demo/continuations/...` read from another directory)."""
    path = Path(recorded)
    if path.is_file():
        return path
    if base is not None and not path.is_absolute():
        for start in range(len(path.parts)):
            candidate = Path(base, *path.parts[start:])
            if candidate.is_file():
                return candidate
    return None


def asset(name: str) -> str:
    return resources.files("alignslm_eval.report").joinpath("assets", name).read_text(encoding="utf-8")


def _script_text(data: Any) -> str:
    """JSON to put inside a `<script>` element: `<`, `>` and `&` as escapes, so no text in it can end the element
    or open a comment; U+2028/9 as escapes for older JavaScript parsers."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def json_safe(value: Any) -> Any:
    """`value` with NaN and infinities as None: results files write NaN for an undefined standard error, which
    JSON (and so the page) has no word for."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_page(output: Path, summary: dict[str, Any], tables: dict[str, list[dict[str, Any]]]) -> Path:
    """Write the page to `output`: `summary` (header, metrics, rounds...) inline; `tables` (table id -> rows)
    inline when small, else in `<output stem>_files/rows-*.js` beside it. Returns the page's path."""
    output = Path(output)
    files_dir = output.with_name(f"{output.stem}_files")
    tables = json_safe(tables)
    inline = sum(len(json.dumps(rows, ensure_ascii=False)) for rows in tables.values()) <= INLINE_ROWS_BYTES
    # Row files of an earlier report at this place must not mix with these; only row files are removed.
    for stale in files_dir.glob("rows-*.js"):
        stale.unlink()
    index: dict[str, Any] = {}
    for table_id, rows in tables.items():
        if inline:
            index[table_id] = {"count": len(rows), "rows": rows}
            continue
        files_dir.mkdir(parents=True, exist_ok=True)
        chunks = []
        for n, start in enumerate(range(0, len(rows), ROWS_PER_FILE)):
            name = f"rows-{table_id}-{n}.js"
            chunk_id = f"{table_id}/{n}"
            write_text(files_dir / name, f"alignslmRows({_script_text(chunk_id)},"
                                         f"{_script_text(rows[start:start + ROWS_PER_FILE])});\n")
            chunks.append({"id": chunk_id, "src": quote(f"{files_dir.name}/{name}", safe="/._-~")})
        index[table_id] = {"count": len(rows), "chunks": chunks}
    script = asset("report.js")
    script_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    # No network at all: scripts are the inline one (by hash) and row files; audio and images local or embedded.
    policy = (f"default-src 'none'; script-src 'sha256-{script_hash}' file: 'self'; style-src 'unsafe-inline'; "
              "media-src file: data: 'self'; img-src file: data: 'self'; base-uri 'none'; form-action 'none'")
    title = str(summary.get("title", "alignslm report"))
    fills = {"POLICY": policy, "TITLE": _html_text(title), "STYLE": asset("report.css"),
             "DATA": _script_text(json_safe({**summary, "tables": index})), "SCRIPT": script}
    # One pass: a run's text that happens to read {{SCRIPT}} is data, never a place to fill.
    page = re.sub(r"\{\{([A-Z]+)\}\}", lambda m: fills[m.group(1)], asset("report.html"))
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_text(output, page)
    except OSError as e:
        raise UserError(f"--output {output}: cannot write ({e.strerror or e}); choose another path")
    return output


def _html_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
