"""The headless-browser page check (tests/browser.py) catches each kind of problem it is meant to catch."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

import browser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _need_chromium():
    if browser.chromium_path() is None:
        pytest.skip("no chromium executable on PATH (apt-get install chromium); the browser check cannot run")


def _png_data_url(size=(4, 3)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _page(tmp_path, body: str, title: str = "test page"):
    html = tmp_path / "page.html"
    html.write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head><body>{body}</body></html>',
        encoding="utf-8",
    )
    return html


def _check(tmp_path, body: str, section_ids=(), **kwargs):
    shot = tmp_path / "shots" / "page.png"
    result = browser.check_page(_page(tmp_path, body), shot, list(section_ids), **kwargs)
    return result, shot


def _problems(result) -> str:
    """assert_page_ok's message, which must exist: the page under test has a problem."""
    with pytest.raises(AssertionError) as failure:
        browser.assert_page_ok(result)
    return str(failure.value)


def test_good_page_passes_and_screenshot_is_png(tmp_path):
    body = (
        f'<section id="intro"><h1>Intro</h1><img alt="red" src="{_png_data_url((4, 3))}"></section>'
        # a lazy image far below the fold must still be loaded and measured
        f'<section id="results"><div style="height:3000px"></div><img alt="lazy" loading="lazy" src="{_png_data_url((2, 2))}"></section>'
    )
    result, shot = _check(tmp_path, body, ["intro", "results"])

    browser.assert_page_ok(result)
    assert result["title"] == "test page"
    assert result["sections"] == ["intro", "results"]
    assert result["missing_sections"] == []
    assert [width for _, width in result["images"]] == [4, 2]
    assert result["images"][0][0].startswith("data:image/png;base64,")
    assert result["broken_images"] == [] and result["console_errors"] == [] and result["external_requests"] == []
    assert shot.is_file() and shot.stat().st_size > 0
    assert shot.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in shot.parent.iterdir()] == ["page.png"], "the temporary screenshot was left behind"


@pytest.mark.parametrize("src", ["data:image/png;base64,iVBORw0KGgoAAAAA", "missing.png"], ids=["bad-data", "no-file"])
def test_broken_image_is_reported(tmp_path, src):
    result, _ = _check(tmp_path, f'<img alt="ok" src="{_png_data_url()}"><img alt="broken" src="{src}">')

    assert len(result["images"]) == 2
    assert len(result["broken_images"]) == 1
    expected = src if src.startswith("data:") else (tmp_path / src).as_uri()  # an img's src is its absolute URL
    assert result["broken_images"] == [browser._src_prefix(expected)]
    assert "1 broken image(s)" in _problems(result)
    if src == "missing.png":  # a missing file is also a failed request, and Chromium logs it naming the file
        assert result["failed_requests"] == [((tmp_path / src).as_uri(), "net::ERR_FILE_NOT_FOUND")]
        assert result["console_errors"] == [
            f"Failed to load resource: net::ERR_FILE_NOT_FOUND ({(tmp_path / src).as_uri()})"
        ]
        assert "local request(s) failed" in _problems(result)


def test_console_error_is_reported(tmp_path):
    result, _ = _check(tmp_path, '<script>console.error("x")</script><script>console.log("fine")</script>')

    assert result["console_errors"] == ["x"]
    assert "1 console error(s): ['x']" in _problems(result)


def test_uncaught_exception_is_reported(tmp_path):
    result, _ = _check(tmp_path, '<script>throw new Error("y")</script>')

    assert len(result["console_errors"]) == 1
    assert result["console_errors"] == ["uncaught: y"]
    assert "1 console error(s)" in _problems(result)


def test_external_request_is_reported_and_not_sent(tmp_path):
    result, shot = _check(tmp_path, '<script src="https://cdn.example.com/x.js"></script><p>text</p>', timeout_s=15)

    assert result["external_requests"] == ["https://cdn.example.com/x.js"]
    # aborted by the check's route (ERR_FAILED), not sent to the network (that would be ERR_NAME_NOT_RESOLVED offline)
    assert result["failed_requests"] == [("https://cdn.example.com/x.js", "net::ERR_FAILED")]
    assert "not self-contained" in _problems(result)
    assert shot.is_file()


def test_missing_section_is_reported(tmp_path):
    result, _ = _check(tmp_path, '<section id="intro"></section><div id="results"></div>', ["intro", "results"])

    assert result["sections"] == ["intro"]
    assert result["missing_sections"] == ["results"]
    with pytest.raises(AssertionError, match="results"):
        browser.assert_page_ok(result)
