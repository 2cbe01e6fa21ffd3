"""The web page at `/`, driven in headless Chromium (Debian's) by Playwright: the model list
loads, a generation shows live progress and lands in the gallery with its parameters and a
download link, and a size the server refuses shows its error naming the field.

Usage: web_page_test.py ZFLOW_BINARY   (run with the Python that has playwright installed)
"""
import shutil
import sys

from playwright.sync_api import expect, sync_playwright

from serve_fixture import zflow_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def main():
    with zflow_server(sys.argv[1]) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")

        expect(page.locator("#model option")).to_have_count(1)
        expect(page.locator("#model")).to_have_value("tiny")

        page.fill("#prompt", "a lighthouse at dusk")
        page.fill("#width", "48")
        page.fill("#height", "32")
        page.fill("#steps", "3")
        page.fill("#seed", "77")
        page.fill("#n", "2")
        page.click("#generate")
        expect(page.locator("figure.result")).to_have_count(2, timeout=30000)
        expect(page.locator("#status")).to_contain_text("done in")
        expect(page.locator("#progress")).to_have_attribute("value", "1")

        first = page.locator("figure.result").first
        size = first.locator("img").evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert size == [48, 32], size
        caption = first.locator("figcaption").inner_text()
        assert "a lighthouse at dusk" in caption and "Steps: 3" in caption and "Seed: 77" in caption, caption
        link = first.locator("a")
        assert link.get_attribute("download").endswith(".png"), link.get_attribute("download")
        assert link.get_attribute("href").startswith("data:image/png;base64,")

        # The server's refusal reaches the page, naming the field (4096 passes the form's own
        # checks, multiple of 16, but is over the server's --max-size).
        page.fill("#width", "4096")
        page.click("#generate")
        expect(page.locator("#error")).to_contain_text("width")
        expect(page.locator("figure.result")).to_have_count(2)

        # The model is now loaded, and the list says so.
        page.reload()
        expect(page.locator("#model option")).to_have_text("tiny (loaded)")

        assert not errors, errors
        browser.close()
    print("web page test: model list, generation with progress, gallery, errors: ok")


if __name__ == "__main__":
    main()
