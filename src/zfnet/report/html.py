"""The report as one self-contained HTML page: inline CSS, images embedded as data URIs, no scripts,
no network; it opens offline from disk.

    page = render(sections, header)      # a str; write it with zfnet.io's atomic writer
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from zfnet.report.spec import (
    CANNOT_DECIDE,
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
    UNTRAINED_TOO,
    VERDICTS,
    Section,
    Table,
    Verdict,
)

MAX_WIDTH = 1100  # px: figures are downscaled to this width before embedding (the PNGs under plots/ keep theirs)

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1180px; padding: 0 20px 60px; color: #1b1b1b; }
h1 { margin-top: 28px; } h2 { border-top: 2px solid #ddd; padding-top: 18px; margin-top: 36px; }
table { border-collapse: collapse; margin: 10px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } caption { caption-side: top; text-align: left; font-style: italic; padding: 4px 0; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 12px; }
figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #e3e3e3; }
figcaption { font-size: 12px; color: #555; } code { background: #f3f3f3; padding: 0 3px; }
.verdict { font-weight: 600; padding: 1px 6px; border-radius: 3px; white-space: nowrap; }
.v-reproduced { background: #d7f0d8; color: #11521a; } .v-not-reproduced { background: #f8d6d4; color: #7a1712; }
.v-not-run { background: #e8e8e8; color: #444; } .v-cannot-decide { background: #fbeec8; color: #6b4e00; }
.v-untrained-too { background: #e4e0f5; color: #3d2b7a; }
.paper { background: #f7f7fb; border-left: 4px solid #8a8fd1; padding: 6px 12px; }
.ours { background: #f6fbf6; border-left: 4px solid #7cb47f; padding: 6px 12px; }
nav a { margin-right: 10px; } .rule { font-size: 12px; color: #555; }
"""


@dataclass
class Header:
    """What the page says about where its numbers came from."""

    title: str
    scale: str
    commit: str = "unknown"
    experiment: str = ""                    # the DVC experiment name, when run by `dvc exp run`
    group: str = ""
    runs: list[tuple[str, str, str, str]] = field(default_factory=list)  # (job_type, name, id, url or "")
    notes: list[str] = field(default_factory=list)


def css_class(verdict: str) -> str:
    return "v-" + {REPRODUCED: "reproduced", NOT_REPRODUCED: "not-reproduced", NOT_RUN: "not-run",
                   CANNOT_DECIDE: "cannot-decide", UNTRAINED_TOO: "untrained-too"}[verdict]


def _text(value: str) -> str:
    """Escape, then render `code` spans (the only markup the sections' texts use)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(value)))


def _badge(verdict: str) -> str:
    return f'<span class="verdict {css_class(verdict)}">{html.escape(verdict)}</span>'


def _table(table: Table) -> str:
    head = "".join(f"<th>{_text(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    caption = f"<caption>{_text(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdicts(verdicts: list[Verdict], with_section: list[str] | None = None) -> str:
    """The verdicts as a table; the page's summary (`with_section`) links each to its section instead of its rule."""
    columns = ["claim", "subject", "verdict", "evidence"] + ([] if with_section else ["rule"])
    if with_section:
        columns.insert(0, "section")
    rows = []
    for i, v in enumerate(verdicts):
        cells = [_text(v.claim), _text(v.subject), _badge(v.verdict), _text(v.evidence)]
        if with_section:
            cells.insert(0, f'<a href="#{with_section[i]}">{with_section[i]}</a>')
        else:
            cells.append(f'<span class="rule">{_text(v.rule)}</span>')
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{c}</th>" for c in columns)
    return f'<table class="verdicts"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def embed(path: Path) -> str:
    """A data URI of the image, downscaled to MAX_WIDTH; PNG or JPEG, whichever is smaller."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.width > MAX_WIDTH:
            image = image.resize((MAX_WIDTH, round(image.height * MAX_WIDTH / image.width)), Image.LANCZOS)
        encoded = {}
        for kind, options in (("png", {"optimize": True}), ("jpeg", {"quality": 88})):
            buffer = io.BytesIO()
            image.save(buffer, format=kind.upper(), **options)
            encoded[kind] = buffer.getvalue()
    kind = min(encoded, key=lambda k: len(encoded[k]))
    return f"data:image/{kind};base64," + base64.b64encode(encoded[kind]).decode("ascii")


def _section(section: Section) -> str:
    parts = [f'<section id="{section.id}">', f"<h2>{_text(section.title)}</h2>",
             f'<div class="paper"><b>Paper.</b> {_text(section.paper)}</div>']
    if section.status != "ran":
        parts.append(f'<div class="ours"><b>Ours:</b> {_badge(NOT_RUN)} the stages behind this section did not run. '
                     f"{_text(section.notes)}</div>")
    else:
        parts.append(f'<div class="ours"><b>Ours.</b> {_text(section.config)}</div>')
        if section.notes:
            parts.append(f"<p>{_text(section.notes)}</p>")
        parts += [_table(t) for t in section.tables]
        if section.images:
            parts.append('<div class="figures">' + "".join(
                f'<figure><img alt="{html.escape(caption)}" src="{embed(path)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>" for caption, path in section.images) + "</div>")
    if section.verdicts:
        parts.append("<h3>Claims</h3>" + _verdicts(section.verdicts))
    parts.append("</section>")
    return "\n".join(parts)


def _summary(sections: list[Section]) -> str:
    verdicts = [v for s in sections for v in s.verdicts]
    where = [s.id for s in sections for _ in s.verdicts]
    counts = Counter(v.verdict for v in verdicts)
    line = ", ".join(f"{_badge(k)} {counts.get(k, 0)}" for k in VERDICTS)
    return (f'<section id="claims"><h2>Every claim</h2><p>{len(verdicts)} verdicts: {line}.</p>'
            "<p>Each verdict is computed from the metrics files by the rule printed beside it in its section. "
            f"{_badge(NOT_RUN)}: the stage did not run, or the claim needs the paper's own data. "
            f"{_badge(CANNOT_DECIDE)}: a number it needs is missing or NaN, or its confidence interval is too wide "
            "to tell. "
            f"{_badge(UNTRAINED_TOO)}: the claim also holds for the same network untrained (the negative control), "
            "so it says nothing about learning and is not counted as reproduced.</p>"
            + _verdicts(verdicts, where) + "</section>")


def _header(header: Header) -> str:
    runs = "".join(
        f"<tr><td>{_text(job)}</td><td>{_text(name)}</td><td>"
        + (f'<a href="{html.escape(url)}">{_text(run_id)}</a>' if url else _text(run_id)) + "</td></tr>"
        for job, name, run_id, url in header.runs)
    experiment = f", DVC experiment <code>{html.escape(header.experiment)}</code>" if header.experiment else ""
    notes = "".join(f"<p>{_text(n)}</p>" for n in header.notes)
    return (f'<section id="provenance"><h2>Where these numbers come from</h2>'
            f"<p>Scale: {_text(header.scale)}.</p><p>Git commit <code>{html.escape(header.commit)}</code>{experiment}. "
            f"W&amp;B group <code>{html.escape(header.group or 'none')}</code> ({len(header.runs)} runs).</p>{notes}"
            f"<details><summary>W&amp;B runs</summary><table><thead><tr><th>stage</th><th>run</th><th>id</th></tr></thead>"
            f"<tbody>{runs}</tbody></table></details></section>")


def render(sections: list[Section], header: Header) -> str:
    nav = " ".join(f'<a href="#{s.id}">{html.escape(s.id)}</a>' for s in sections)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(header.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(header.title)}</h1>",
        f'<nav><a href="#claims">claims</a> <a href="#provenance">provenance</a> {nav}</nav>',
        _summary(sections), _header(header), *(_section(s) for s in sections), "</body></html>", ""])
