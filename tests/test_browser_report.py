"""The report in a real browser: headless Chromium (Debian package) driven over the DevTools protocol.

Skips with the reason when `chromium` is not installed (`apt-get install -y chromium`; .ci/run installs it).
Launch flags follow ../shared/docs/FIELD-NOTES.md (no background networking, fresh profile).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from test_report_seed import REVIEW_TITLE, SCRIPT_TITLE, seed_review

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless browser check needs Debian's `chromium` "
                                "(apt-get install -y chromium); it is not installed on this machine")


class DevTools:
    """A minimal Chrome DevTools Protocol client (one page session, synchronous)."""

    def __init__(self, ws_url: str):
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=64 * 2**20, open_timeout=30)
        self.next_id, self.events, self.session = 0, [], None

    def call(self, method: str, timeout: float = 30, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            data = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if data.get("id") == self.next_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})
            self.events.append(data)

    def wait_for(self, event: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for e in self.events:
            if e.get("method") == event:
                return e
        while time.monotonic() < deadline:
            data = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            self.events.append(data)
            if data.get("method") == event:
                return data
        raise TimeoutError(event)


@pytest.fixture()
def browser(tmp_path):
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"chromium did not start: {proc.stderr.read().decode(errors='replace')[-2000:]}")
        time.sleep(0.1)
    port, path = port_file.read_text().splitlines()[:2]
    dt = DevTools(f"ws://127.0.0.1:{port}{path}")
    try:
        yield dt
    finally:
        dt.ws.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_report_renders_in_chromium_without_errors(browser, tmp_path):
    from tasks.publish import publish

    wh, out = tmp_path / "warehouse.duckdb", tmp_path / "out"
    seed_review(wh)
    html = Path(publish.fn("unused", "rev", str(wh), str(out))["report"])

    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    browser.session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable")
    browser.call("Page.navigate", url=html.as_uri())
    browser.wait_for("Page.loadEventFired", timeout=60)

    def evaluate(expr: str):
        return browser.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")

    forest = evaluate("""(() => { const f = document.querySelector('figure.plot-forest svg');
        if (!f) return null; const r = f.getBoundingClientRect();
        return {w: r.width, h: r.height, paths: f.querySelectorAll('path, use').length}; })()""")
    assert forest and forest["w"] > 300 and forest["h"] > 200 and forest["paths"] > 50, forest
    assert evaluate("document.getElementById('review-title').textContent") == REVIEW_TITLE
    assert SCRIPT_TITLE in evaluate("document.querySelector('.record-title').textContent")
    assert evaluate("document.scripts.length") == 0
    assert evaluate("document.querySelectorAll('figure.plot svg').length") == 6

    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
    assert len(shot) > 1000

    events = browser.events
    errors = [e for e in events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert errors == [], errors
    assert not [e for e in events if e.get("method") == "Page.javascriptDialogOpening"]  # no alert(1) ran
    requested = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    assert requested and all(u.startswith("file://") for u in requested), requested  # nothing left the machine


def _open(browser, url: str, width: int):
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    browser.session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        browser.call(f"{domain}.enable")
    browser.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
                 mobile=width < 600)
    browser.call("Page.navigate", url=url)
    browser.wait_for("Page.loadEventFired", timeout=60)

    def evaluate(expr: str):
        return browser.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")
    return evaluate


def _page_errors(events):
    return [e for e in events if e.get("method") == "Runtime.exceptionThrown"
            or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]


@pytest.mark.parametrize("width", [1280, 390])
def test_methodologists_report_elements_at_desktop_and_phone_width(browser, tmp_path, width):
    """Issue 16: arm columns, favours labels, heterogeneity line, SoF rows, a TSA curve of >= 50 points and its
    assumptions are in the page as text a reader (and a screen reader) gets, at 1280 and 390 px wide."""
    from tasks.publish import publish

    wh, out = tmp_path / "warehouse.duckdb", tmp_path / "out"
    seeded = seed_review(wh)
    html = Path(publish.fn("unused", "rev", str(wh), str(out))["report"])
    evaluate = _open(browser, html.as_uri(), width)

    forest = evaluate("""(() => { const s = document.querySelector('figure.plot-forest svg');
        const t = [...s.querySelectorAll('text')].map(x => x.textContent);
        const r = s.getBoundingClientRect();
        return {texts: t, title: s.getAttribute('aria-label'), w: r.width,
                svgTitle: (s.querySelector('title') || {}).textContent}; })()""")
    texts = forest["texts"]
    first = seeded["rows"][0]
    assert {"IVIG", "placebo", "Events/Total"} <= set(texts)
    assert f"{first['treat_events']}/{first['treat_total']}" in texts
    assert f"{first['control_events']}/{first['control_total']}" in texts
    assert "Favours placebo" in texts and "Favours IVIG" in texts
    het = [t for t in texts if t.startswith("Heterogeneity: ")]
    assert het and "Tau²" not in het[0] and "I² = " in het[0]  # common-effect model: no tau²
    assert any(t.startswith("Test for overall effect: Z = ") for t in texts)
    assert forest["title"] == "Forest plot: Responders: odds ratio" == forest["svgTitle"]

    sof = evaluate("""[...document.querySelectorAll('#grade-sof tbody tr')].map(r =>
        [...r.querySelectorAll('td')].map(c => c.textContent.trim()))""")
    assert len(sof) == 2 and sof[0][0].startswith("Responders") and sof[1][0].startswith("Pain")
    assert sof[1][1] == "not estimable (not analysed in this version)"
    assert "per 1,000" in sof[0][3] and sof[0][5] == f"{seeded['results'][2]['meta']['participants']:,} (12 studies)"
    assert sof[0][6].startswith("⊕⊕⊕◯ Moderate")

    tsa = evaluate("""(() => { const g = document.querySelector('figure.plot-tsa svg g[id$="tsa-boundary"] path');
        const d = g ? g.getAttribute('d') : '';
        const a = [...document.querySelectorAll('figure.plot-tsa svg text')].map(x => x.textContent).join(' | ');
        const list = [...document.querySelectorAll('.tsa-text li')].map(x => x.textContent);
        return {points: (d.match(/[ML]\\s*-?[\\d.]+/g) || []).length, svg: a, list: list}; })()""")
    assert tsa["points"] >= 50, tsa["points"]
    for part in ("α = 0.05", "Control event proportion 0.3;", "minimal important difference", "D² = 20%", "RIS"):
        assert part in tsa["svg"] and any(part in li for li in tsa["list"]), part

    layout = evaluate("""(() => ({doc: document.documentElement.scrollWidth, view: window.innerWidth,
        font: Math.min(...[...document.querySelectorAll('td, p, li')].map(e =>
            parseFloat(getComputedStyle(e).fontSize)))}))()""")
    assert layout["doc"] <= layout["view"] + 1, layout  # wide tables and figures scroll in their own box
    assert layout["font"] >= 12, layout
    # figure text stays readable on screen (>= 8.5 px for the smallest footnote, 7.5 pt; rows are 9 pt): a narrow
    # screen scrolls the figure sideways in its box instead of shrinking a 10-inch forest plot to 390 px
    smallest = evaluate("""(() => { const s = document.querySelector('figure.plot-forest svg');
        const scale = s.getBoundingClientRect().width / s.viewBox.baseVal.width;
        return Math.min(...[...s.querySelectorAll('text')].map(t =>
            parseFloat(getComputedStyle(t).fontSize) * scale)); })()""")
    assert smallest >= 8.5, smallest
    assert _page_errors(browser.events) == []
