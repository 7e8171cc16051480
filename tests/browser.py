"""Headless-browser check of a self-contained local HTML page (test helper, `import browser`).

It opens the page from disk in the system Chromium (driven by Playwright, no `playwright install`), and reports
what a reader would see go wrong: images that did not decode, console errors and uncaught exceptions, requests
that failed, any request that leaves the machine (a self-contained page makes none: they are aborted, not sent),
and which `<section id=...>` elements are there. It also saves a full-page screenshot for a human to look at.

    result = check_page(Path("report.html"), Path("report.png"), ["summary", "figures"])
    assert_page_ok(result)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

# Schemes that never leave the machine. `blob:` and `about:` URLs are made by the page itself (about:blank
# frames, object URLs), so they count as local too.
LOCAL_SCHEMES = frozenset({"file", "data", "blob", "about"})
SRC_PREFIX_CHARS = 80  # data: URLs run to megabytes; results keep only their start

# Runs in the page: make lazy images load now, wait (bounded) for every image to finish, then read them.
_INSPECT_JS = """
async (timeoutMs) => {
    const images = Array.from(document.images);
    for (const img of images) {
        if (img.loading === "lazy") img.loading = "eager";
    }
    const settled = Promise.all(images.map((img) => img.decode().catch(() => null)));
    await Promise.race([settled, new Promise((resolve) => setTimeout(resolve, timeoutMs))]);
    return {
        images: images.map((img) => ({
            src: img.currentSrc || img.src || img.getAttribute("src") || "",
            complete: img.complete,
            naturalWidth: img.naturalWidth,
        })),
        sections: Array.from(document.querySelectorAll("section[id]"), (el) => el.id),
    };
}
"""


def chromium_path() -> str | None:
    """The system Chromium executable (Debian's `chromium`, or `chromium-browser` elsewhere), or None."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _src_prefix(src: str) -> str:
    return src if len(src) <= SRC_PREFIX_CHARS else src[:SRC_PREFIX_CHARS] + "..."


def _is_local(url: str) -> bool:
    return urlsplit(url).scheme.lower() in LOCAL_SCHEMES


def check_page(
    html: Path,
    screenshot: Path,
    section_ids: list[str],
    *,
    executable: str | None = None,
    timeout_s: float = 30.0,
    viewport: tuple[int, int] = (1280, 800),
) -> dict:
    """Open `html` in headless Chromium, save a full-page PNG to `screenshot`, and report what went wrong.

    Returns a dict:
      images            [(src_prefix, naturalWidth)] for every <img>, in document order
      broken_images     [src_prefix] of images that did not finish or decoded to width 0
      console_errors    console.error messages and uncaught exceptions ("uncaught: <message>"); Chromium adds
                        "Failed to load resource: <error> (<url>)" for each failed request
      failed_requests   [(url, error text)] of requests that failed, external ones (aborted on purpose) included
      external_requests [url] of every request whose scheme is not file:/data:/blob:/about: (never sent)
      sections          ids of `section[id]` elements, in document order
      missing_sections  the ids of `section_ids` not among `sections`
      title             the page title

    Raises FileNotFoundError if `html` does not exist, RuntimeError if no Chromium is found, and Playwright's
    errors if the page does not load within `timeout_s`. The screenshot is written to a temporary name in its
    folder and renamed, so a crash leaves no half-written PNG behind.
    """
    from playwright.sync_api import sync_playwright  # imported here so that `import browser` never fails

    html = Path(html).resolve()
    if not html.is_file():
        raise FileNotFoundError(f"no HTML page at {html}")
    executable = executable or chromium_path()
    if executable is None:
        raise RuntimeError("no Chromium executable found on PATH (install the `chromium` package)")
    screenshot = Path(screenshot)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    timeout_ms = timeout_s * 1000

    console_errors: list[str] = []
    failed_requests: list[tuple[str, str]] = []
    external_requests: list[str] = []

    def on_request(request) -> None:
        if not _is_local(request.url) and request.url not in external_requests:
            external_requests.append(request.url)

    def on_websocket(ws) -> None:  # websockets bypass routing, so record them here
        if ws.url not in external_requests:
            external_requests.append(ws.url)

    def on_console(msg) -> None:
        if msg.type != "error":
            return
        text, url = msg.text, (msg.location or {}).get("url")
        if text.startswith("Failed to load resource") and url:
            text = f"{text} ({url})"  # Chromium's message does not say which resource
        console_errors.append(text)

    def route(route) -> None:
        # Only non-local URLs are routed here (see the predicate below): never let them reach the network,
        # so an offline machine cannot make the check hang, and an online one sends nothing.
        on_request(route.request)
        route.abort()

    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            context = browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]},
                device_scale_factor=1,
                service_workers="block",
            )
            context.set_default_timeout(timeout_ms)
            context.route(lambda url: not _is_local(url), route)
            page = context.new_page()
            page.on("console", on_console)
            page.on("pageerror", lambda error: console_errors.append(f"uncaught: {error.message or error}"))
            page.on("requestfailed", lambda req: failed_requests.append((req.url, req.failure or "failed")))
            page.on("request", on_request)
            page.on("websocket", on_websocket)

            page.goto(html.as_uri(), wait_until="load", timeout=timeout_ms)
            inspected = page.evaluate(_INSPECT_JS, min(timeout_ms, 10_000))
            title = page.title()

            tmp = screenshot.with_name(f".{screenshot.name}.{os.getpid()}.tmp")
            try:
                page.screenshot(path=tmp, type="png", full_page=True, animations="disabled")
                os.replace(tmp, screenshot)
            finally:
                tmp.unlink(missing_ok=True)
        finally:
            browser.close()

    images = [(_src_prefix(img["src"]), int(img["naturalWidth"])) for img in inspected["images"]]
    broken = [_src_prefix(img["src"]) for img in inspected["images"] if not img["complete"] or img["naturalWidth"] == 0]
    sections = list(inspected["sections"])
    return {
        "images": images,
        "broken_images": broken,
        "console_errors": console_errors,
        "failed_requests": failed_requests,
        "external_requests": external_requests,
        "sections": sections,
        "missing_sections": [s for s in section_ids if s not in sections],
        "title": title,
    }


def assert_page_ok(result: dict) -> None:
    """Fail (AssertionError, so pytest shows it) naming every kind of problem `check_page` found."""
    problems = []
    if result["broken_images"]:
        problems.append(f"{len(result['broken_images'])} broken image(s): {result['broken_images']}")
    if result["console_errors"]:
        problems.append(f"{len(result['console_errors'])} console error(s): {result['console_errors']}")
    if result["external_requests"]:
        problems.append(
            f"page is not self-contained, it requests {len(result['external_requests'])} external URL(s): "
            f"{result['external_requests']}"
        )
    local_failures = [(url, err) for url, err in result.get("failed_requests", []) if _is_local(url)]
    if local_failures:
        problems.append(f"{len(local_failures)} local request(s) failed: {local_failures}")
    if result["missing_sections"]:
        problems.append(f"missing section(s) {result['missing_sections']}; the page has {result['sections']}")
    assert not problems, f"page {result.get('title')!r} has problems:\n  " + "\n  ".join(problems)
