"""Checks run on every page the browser tests visit."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from tests.browser.conftest import AXE, PHONE

#: WCAG 2.0/2.1 A and AA rules (RGAA 4.1 maps onto them) plus axe best practices
#: (landmarks, one main, headings order).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def run_axe(page: Any) -> list[dict[str, Any]]:
    # Injected through the DevTools protocol (not a <script> tag): the pages' CSP
    # forbids any script, and stays enforced during the test.
    page.evaluate("() => { " + _axe_source() + "\n; window.axe = axe; }")
    result: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const r = await window.axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
        }""",
        AXE_TAGS,
    )
    return result


def check_page(page: Any, artifacts: Path, name: str) -> None:
    """Screenshot at phone width, then: lang/dir set, landmarks, no sideways scroll,
    and zero serious or critical axe-core violations."""
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    html = page.locator("html")
    lang = html.get_attribute("lang")
    assert lang in ("fr", "en", "ar"), lang
    assert html.get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    for landmark in ("header", "main", "footer", "nav"):
        assert page.locator(landmark).count() >= 1, f"{name}: no <{landmark}>"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: {width}px wide, scrolls sideways on a phone"
    bad = [v for v in run_axe(page) if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: axe-core violations: {bad}"


def path_of(page: Any) -> str:
    return re.sub(r"^https?://[^/]+", "", page.url).split("?")[0]


def go(page: Any, selector: str) -> None:
    """Click a link or a submit button and wait for the page it loads."""
    with page.expect_navigation():
        page.locator(selector).first.click()
