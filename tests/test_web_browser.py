"""The web app in a real browser: headless Chromium (Debian package) over the DevTools protocol, against the app
served by uvicorn on 127.0.0.1. Sign in, screen ten records with the keyboard (exclusion reasons are one key),
see hostile titles as text, resolve a conflict, enter and correct extraction, see the dashboard after a cycle
publishes; at 1280 and 390 px, with no console error. Skips, saying why, when chromium is not installed.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from test_browser_report import CHROMIUM, browser  # noqa: F401  (the fixture)
from test_web_app import PASSWORDS, REVIEW, XSS_TITLE, build, decisions
from warehouse import connect
from web_server import serve_in_thread

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="browser check needs Debian's `chromium` "
                                "(apt-get install -y chromium); it is not installed on this machine")


class Page:
    """One tab: navigate, type, press keys, read the DOM; keeps every console error it saw."""

    def __init__(self, dt, width: int):
        self.dt = dt
        target = dt.call("Target.createTarget", url="about:blank")["targetId"]
        dt.session = dt.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            dt.call(f"{domain}.enable")
        dt.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
                mobile=width < 500)

    def _loaded(self, action, timeout: float = 60):
        self.dt.events = [e for e in self.dt.events if e.get("method") != "Page.loadEventFired"]
        action()
        self.dt.wait_for("Page.loadEventFired", timeout=timeout)
        self.eval("document.readyState")  # the DOMContentLoaded handlers ran

    def go(self, url: str):
        self._loaded(lambda: self.dt.call("Page.navigate", url=url))

    def eval(self, expr: str):
        res = self.dt.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise AssertionError(f"{expr}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def key(self, ch: str, navigates: bool = True):
        def press():
            code = f"Key{ch.upper()}" if ch.isalpha() else f"Digit{ch}"
            self.dt.call("Input.dispatchKeyEvent", type="keyDown", key=ch, text=ch, code=code)
            self.dt.call("Input.dispatchKeyEvent", type="keyUp", key=ch, code=code)
        if navigates:
            self._loaded(press)
        else:
            press()

    def fill(self, selector: str, value: str):
        self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.focus(); "
                  f"e.value = {json.dumps(value)}; }})()")

    def submit(self, selector: str):
        self._loaded(lambda: self.eval(f"document.querySelector({json.dumps(selector)}).requestSubmit()"))

    def text(self, selector: str) -> str | None:
        return self.eval(f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent")

    def errors(self, expected: tuple[int, ...] = ()) -> list:
        """Console errors, leaving out the network log line of a status the test itself caused and expects."""
        def wanted(e) -> bool:
            entry = e["params"]["entry"]
            return entry.get("source") == "network" and any(f"status of {c} " in entry.get("text", "")
                                                            for c in expected)
        return [e for e in self.dt.events if e.get("method") == "Runtime.exceptionThrown"
                or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
                or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"
                    and not wanted(e))]

    def screenshot(self, path: Path):
        data = self.dt.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def sign_in(self, base: str, name: str):
        self.go(f"{base}/login")
        self.fill("input[name=username]", name)
        self.fill("input[name=password]", PASSWORDS[name])
        self.submit("form.login")


def _decisions(wh) -> list[tuple]:
    return [d[:4] for d in decisions(wh)]


def _with_reasons(tmp_path, reviewers: int):
    """The test review with exclusion reasons in its stored config (as review.toml would give them)."""
    wh, app = build(tmp_path, reviewers=reviewers)
    con = connect(wh)
    (cfg,) = con.execute("SELECT config_json FROM reviews WHERE review_id = ?", [REVIEW]).fetchone()
    cfg = json.loads(cfg)
    cfg["screening"]["exclusion_reasons"] = ["wrong population", "not randomised", "wrong intervention"]
    con.execute("UPDATE reviews SET config_json = ? WHERE review_id = ?", [json.dumps(cfg), REVIEW])
    con.close()
    return wh, app


@pytest.mark.parametrize("width", [1280, 390])
def test_screen_ten_records_with_the_keyboard(browser, tmp_path, width):  # noqa: F811
    wh, app = _with_reasons(tmp_path, reviewers=1)
    base, stop = serve_in_thread(app)
    try:
        page = Page(browser, width)
        page.sign_in(base, "rob")
        assert "Your reviews" in page.text("h1")
        page.go(f"{base}/r/{REVIEW}/screen")
        keys = ["i", "e1", "m", "i", "e2", "i", "e", "i", "m", "i"]  # "e" alone then "0": exclude, no reason
        shown = []
        for k in keys:
            rid = page.eval("document.getElementById('record').dataset.recordId")
            shown.append(rid)
            if rid == "pubmed:50":  # the hostile record: its markup is text, nothing of it ran
                assert XSS_TITLE.replace("  ", " ") in page.text("#record-title")
                assert page.eval("document.querySelectorAll('#record img, #record script').length") == 0
                assert page.eval("typeof window.__pwned") == "undefined"
            if k.startswith("e"):
                page.key("e", navigates=False)
                assert page.eval("document.getElementById('reasons').hidden") is False
                page.key(k[1:] or "0")  # one key picks the reason and sends the form: no Enter
            else:
                page.key(k)
        assert len(set(shown)) == 10
        stored = _decisions(wh)
        want = {"i": ("include", None), "m": ("maybe", None), "e1": ("exclude", "wrong population"),
                "e2": ("exclude", "not randomised"), "e": ("exclude", None)}
        assert [(r, d, why) for r, _, d, why in stored] == [(rid, *want[k]) for rid, k in zip(shown, keys)]
        assert {who for _, who, _, _ in stored} == {"rob"}
        page.key("u")  # undo the last decision: that record is shown again
        assert page.eval("document.getElementById('record').dataset.recordId") == shown[-1]
        assert "Undone" in page.text(".flash")
        assert page.eval("document.documentElement.scrollWidth <= window.innerWidth + 1"), "page wider than the screen"
        page.screenshot(tmp_path / f"screen-{width}.png")
        assert page.errors() == []
    finally:
        stop()


def test_conflict_extraction_and_dashboard_in_the_browser(browser, tmp_path):  # noqa: F811
    from tasks.publish import publish

    wh, app = _with_reasons(tmp_path, reviewers=2)
    base, stop = serve_in_thread(app)
    try:
        page = Page(browser, 1280)
        for who, key in (("rob", "i"), ("ria", "e")):
            page.sign_in(base, who)
            page.go(f"{base}/r/{REVIEW}/screen")
            rid = page.eval("document.getElementById('record').dataset.recordId")
            if key == "e":
                page.key("e", navigates=False)
                page.key("1")
            else:
                page.key(key)
            page.submit("form.logout")
        page.sign_in(base, "lea")
        page.go(f"{base}/r/{REVIEW}/conflicts")
        assert page.eval("document.querySelectorAll('article.conflict').length") == 1
        sides = page.eval("[...document.querySelectorAll('.side')].map(e => e.textContent.replace(/\\s+/g, ' ').trim())")
        assert any(s.startswith("rob: include") for s in sides) and any("ria: exclude — wrong population" in s
                                                                         for s in sides), sides
        page.fill("article.conflict input[name=reason]", "population fits on reading")
        page._loaded(lambda: page.eval("document.querySelector('article.conflict button[value=include]').click()"))
        assert page.text("#no-conflicts") == "No open conflicts."
        assert _decisions(wh)[-1] == (rid, "lea", "include", "population fits on reading")

        # the dashboard reads the published snapshot: nothing before a cycle publishes, the decisions after
        page.go(f"{base}/r/{REVIEW}")
        assert page.text("#no-snapshot")
        publish.fn("unused", REVIEW, str(wh), str(tmp_path / "out"))
        page.go(f"{base}/r/{REVIEW}")
        assert page.eval("document.getElementById('no-snapshot')") is None
        days = page.eval("[...document.querySelectorAll('#progress-days tbody tr')].map(r => r.textContent)")
        assert days and "3" in days[0], days  # rob's, ria's and lea's decisions of today
        assert page.errors() == []
    finally:
        stop()


def test_extraction_entered_and_corrected_in_the_browser(browser, tmp_path, warehouse_path):  # noqa: F811
    from living_seed import T0 as LT0
    from living_seed import ingest as seed_ingest
    from living_seed import link_and_include, new_update, record_for, register, write_review
    from warehouse.accounts import accounts, add_user
    from web.app import WebSettings, create_app

    rid = register(write_review(tmp_path / "review"), warehouse_path)
    uid = new_update(warehouse_path, rid, LT0)
    seed_ingest(warehouse_path, rid, uid, [record_for("Jann2020")], LT0)
    link_and_include(warehouse_path, rid, ["Jann2020"], LT0)
    with accounts(warehouse_path) as a:
        add_user(a, "rob", PASSWORDS["rob"], review_id=rid, role="reviewer")
    base, stop = serve_in_thread(create_app(WebSettings(warehouse=warehouse_path, out_dir=tmp_path / "out",
                                                        secret_key="k" * 48)))
    try:
        page = Page(browser, 390)
        page.sign_in(base, "rob")
        page.go(f"{base}/r/{rid}/extract/Jann2020/responders")
        for sel, v in (("#treatment-events", "12"), ("#treatment-total", "10"), ("#control-events", "3"),
                       ("#control-total", "10")):
            page.fill(sel, v)
        page.submit("#extract-form")
        assert "cannot exceed total" in page.text("#treatment-events-error")
        assert page.eval("document.getElementById('treatment-events').getAttribute('aria-invalid')") == "true"
        page.fill("#treatment-events", "8")
        page.submit("#extract-form")
        assert "2 added" in page.text(".flash")
        assert page.eval("document.getElementById('treatment-events').value") == "8"  # prefilled from the warehouse
        page.fill("#treatment-events", "7")
        page.submit("#extract-form")
        assert "1 corrected" in page.text(".flash")
        con = connect(warehouse_path)
        assert con.execute("SELECT events FROM v_current_extraction WHERE study_id = 'Jann2020' AND arm = 'treatment'"
                           ).fetchone() == (7.0,)
        con.close()
        assert page.eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
        assert page.errors(expected=(422,)) == []  # the refused form answers 422 Unprocessable; nothing else
    finally:
        stop()
