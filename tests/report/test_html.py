"""The HTML report is one self-contained page: embedded images, escaped text, no scripts, no remote links."""

import base64
import io
import re

import pytest
from PIL import Image

from zfnet.report import html
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, VERDICTS, Section, Table, Verdict

RUN_URL = "https://wandb.ai/ent/proj/runs/abc123"


def png(path, size=(40, 20), color=(200, 30, 30)):
    Image.new("RGB", size, color).save(path)
    return path


def decode(uri):
    kind, data = re.fullmatch(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)", uri).groups()
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    assert image.format.lower() == kind
    return image


def sections(tmp_path):
    ran = Section(
        "fig2", "Fig. 2: top-9", "Paper text with `code`.", "visualize stage", status="ran",
        tables=[Table(["model", "value"], [["zfnet", "1 < 2 & 3"]], caption="ours")],
        images=[("plots/top9.png", png(tmp_path / "top9.png"))],
        verdicts=[Verdict("layers <b>grow</b> selective", "zfnet", REPRODUCED, "rule a", "evidence a"),
                  Verdict("another claim", "alexnet", CANNOT_DECIDE, "rule b", "evidence b")])
    not_run = Section(
        "table3", "Table 3: ablations", "Paper table.", "ablations pipeline", status=NOT_RUN,
        images=[("plots/missing.png", tmp_path / "missing.png")],      # never read: the section did not run
        verdicts=[Verdict("row", "alexnet_no7", NOT_RUN, "rule c", "the stage did not run")],
        notes="Run `dvc repro ablations/dvc.yaml`.")
    return [ran, not_run]


def header(**kw):
    return html.Header(title="ZF <report>", scale="tiny", commit="abc123", group="g1",
                       runs=[("train", "train-zfnet", "abc123", RUN_URL), ("report", "report-x", "def456", "")], **kw)


@pytest.fixture
def page(tmp_path):
    return html.render(sections(tmp_path), header())


def test_page_has_every_section_the_summary_and_provenance(page):
    for id_ in ("fig2", "table3", "claims", "provenance"):
        assert page.count(f'<section id="{id_}">') == 1, id_
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "3 verdicts" in page
    assert '<a href="#fig2">fig2</a>' in page and '<a href="#table3">table3</a>' in page


def test_page_is_self_contained(page):
    assert "<script" not in page.lower()
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and [u for u in links if u.startswith(("http:", "https:", "//"))] == [RUN_URL]
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(sources) == 1 and all(s.startswith("data:image/") for s in sources)
    assert decode(sources[0]).size == (40, 20)
    assert "@import" not in page and "url(" not in page


def test_text_is_escaped(page):
    assert "layers &lt;b&gt;grow&lt;/b&gt; selective" in page and "<b>grow</b>" not in page
    assert "1 &lt; 2 &amp; 3" in page
    assert "<title>ZF &lt;report&gt;</title>" in page
    assert "<code>code</code>" in page and "<code>dvc repro ablations/dvc.yaml</code>" in page


def test_not_run_section_shows_the_badge_and_no_figures(tmp_path):
    (section,) = [s for s in sections(tmp_path) if s.id == "table3"]
    text = html._section(section)
    assert 'class="verdict v-not-run"' in text and "did not run" in text and "<img" not in text


def test_verdict_badges(page):
    badges = ["v-reproduced", "v-not-reproduced", "v-not-run", "v-cannot-decide", "v-untrained-too"]
    assert [html.css_class(v) for v in VERDICTS] == badges
    assert len(set(html.css_class(v) for v in VERDICTS)) == 5
    assert f'<span class="verdict v-reproduced">{REPRODUCED}</span>' in page
    assert f'<span class="verdict v-cannot-decide">{CANNOT_DECIDE}</span>' in page
    with pytest.raises(KeyError):
        html.css_class("maybe")
    for cls in badges:
        assert f".{cls} {{" in html.CSS                               # every badge is styled
    assert NOT_REPRODUCED in page                                       # the summary counts every kind


def test_embed_downscales_wide_images_and_keeps_small_ones(tmp_path):
    wide = decode(html.embed(png(tmp_path / "wide.png", (3000, 100))))
    assert wide.size == (html.MAX_WIDTH, round(100 * html.MAX_WIDTH / 3000))
    assert decode(html.embed(png(tmp_path / "small.png", (300, 50)))).size == (300, 50)


def test_run_ids_without_url_are_plain_text(page):
    assert f'<a href="{RUN_URL}">abc123</a>' in page
    assert "<td>def456</td>" in page
