"""The web app through real HTTP on 127.0.0.1 (uvicorn serving the real app; real DuckDB files, real argon2):
sign-in, roles, CSRF, throttling, screening and conflicts, and what a page may never carry.

The browser half (keyboard screening, DOM checks of hostile text) is tests/test_web_browser.py.
"""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest

from test_screening_queue import REVIEW, T0, ingest, make_config, open_review, pubmed
from warehouse import connect, opened
from warehouse.accounts import accounts, add_user, set_password, set_role
from warehouse.screening import flag_candidates, record_decision
from web.app import WebSettings, create_app

OTHER = "other-review"
PASSWORDS = {"lea": "lead-password-1", "rob": "reviewer-pass-1", "ria": "reviewer-pass-2", "oz": "other-review-pw"}
XSS_TITLE = 'Pain <script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> relief'
XSS_ABSTRACT = 'See <a href="javascript:window.__pwned=3">here</a> and <b>bold</b> & "quotes".'


def build(tmp_path, reviewers: int = 2):
    """Two reviews in one warehouse; lea leads REVIEW, rob and ria review it, oz is on OTHER only."""
    con = open_review(tmp_path, make_config(reviewers=reviewers, include_keywords=["placebo"],
                                            exclude_keywords=["kawasaki"]))
    from warehouse.reviews import upsert_review
    other = make_config(reviewers=1).model_copy(update={"id": OTHER, "title": "Another review"})
    upsert_review(con, other, str(tmp_path), T0)
    ingest(con, [pubmed(i, f"IVIG versus placebo trial {i}", "A randomised placebo trial.",
                        publication_types=["Randomized Controlled Trial"], year=2020 + i % 3) for i in range(1, 13)]
           + [pubmed(50, XSS_TITLE, XSS_ABSTRACT, publication_types=["Randomized Controlled Trial"], year=2022)], T0)
    ingest(con, [pubmed(90, "Other review record", "x", publication_types=["Randomized Controlled Trial"])], T0,
           review_id=OTHER)
    flag_candidates(con, REVIEW, make_config(reviewers=reviewers), T0)
    flag_candidates(con, OTHER, other, T0)
    con.close()
    wh = tmp_path / "wh.duckdb"
    with accounts(wh) as a:
        add_user(a, "lea", PASSWORDS["lea"], display_name="Lea Lead", review_id=REVIEW, role="lead")
        add_user(a, "rob", PASSWORDS["rob"], review_id=REVIEW, role="reviewer")
        add_user(a, "ria", PASSWORDS["ria"], review_id=REVIEW, role="reviewer")
        add_user(a, "oz", PASSWORDS["oz"], review_id=OTHER, role="lead")
    app = create_app(WebSettings(warehouse=wh, out_dir=tmp_path / "out", secret_key="k" * 48))
    return wh, app


_servers: dict[int, str] = {}


@pytest.fixture(autouse=True)
def _stop_servers():
    yield
    for stop in list(_servers.values()):
        stop()
    _servers.clear()


def client(app) -> httpx.Client:
    """An HTTP client of `app`, served by uvicorn on a free port of 127.0.0.1 (one server per app)."""
    from web_server import serve_in_thread

    if id(app) not in _servers:
        app.state.base_url, stop = serve_in_thread(app)
        _servers[id(app)] = stop
    return httpx.Client(base_url=app.state.base_url, follow_redirects=False, timeout=60)


def token(c: httpx.Client, path: str = "/login") -> str:
    page = c.get(path)
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m, page.text[:500]
    return m.group(1)


def sign_in(app, name: str) -> httpx.Client:
    c = client(app)
    r = c.post("/login", data={"csrf_token": token(c), "username": name, "password": PASSWORDS[name], "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return c


def nonce(page: str) -> str:
    return re.search(r'name="nonce" value="([^"]+)"', page).group(1)


def decisions(wh) -> list[tuple]:
    con = connect(wh)
    try:
        return con.execute("SELECT record_id, reviewer, decision, reason, origin FROM screening_decisions "
                           "ORDER BY decision_id").fetchall()
    finally:
        con.close()


def routes(app) -> list[tuple[str, str]]:
    out = []
    for r in app.routes:
        for m in getattr(r, "methods", None) or []:
            if m in ("GET", "POST") and r.path not in ("/login", "/logout") and not r.path.startswith("/static"):
                out.append((m, r.path.replace("{review_id}", REVIEW).replace("{path:path}", "index.html")))
    return out


def test_every_route_refuses_anonymous_use(tmp_path):
    wh, app = build(tmp_path)
    c = client(app)
    seen = routes(app)
    assert {("GET", f"/r/{REVIEW}/screen"), ("POST", f"/r/{REVIEW}/screen"), ("GET", f"/r/{REVIEW}"),
            ("GET", f"/r/{REVIEW}/conflicts"), ("POST", f"/r/{REVIEW}/conflicts/resolve")} <= set(seen)
    csrf = token(c)  # an anonymous session with a valid CSRF token still gets nothing
    for method, path in seen:
        r = c.get(path) if method == "GET" else c.post(path, data={"csrf_token": csrf, "record_id": "pubmed:1",
                                                                    "decision": "include", "nonce": "n" * 12,
                                                                    "stage": "title_abstract"})
        if method == "GET":
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), (path, r.status_code)
        else:
            assert r.status_code in (401, 403), (path, r.status_code)
    assert decisions(wh) == []


def test_wrong_password_unknown_user_and_throttling(tmp_path):
    wh, app = build(tmp_path)
    c = client(app)
    r = c.post("/login", data={"csrf_token": token(c), "username": "rob", "password": "wrong-password"})
    assert r.status_code == 401 and "Unknown user name or wrong password." in r.text
    r = c.post("/login", data={"csrf_token": token(c), "username": "nobody", "password": "wrong-password"})
    assert r.status_code == 401 and "Unknown user name or wrong password." in r.text  # same words: no discovery
    for _ in range(4):
        c.post("/login", data={"csrf_token": token(c), "username": "rob", "password": "wrong-password"})
    r = c.post("/login", data={"csrf_token": token(c), "username": "rob", "password": PASSWORDS["rob"]})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text and int(r.headers["retry-after"]) > 0
    assert "livingmeta_session" not in r.headers.get("set-cookie", "") or "user" not in r.headers.get("set-cookie", "")


def test_sign_in_sets_a_strict_httponly_session_and_a_new_csrf_token(tmp_path):
    wh, app = build(tmp_path)
    c = client(app)
    before = token(c)
    r = c.post("/login", data={"csrf_token": before, "username": "rob", "password": PASSWORDS["rob"]})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert token(c, f"/r/{REVIEW}/screen") != before  # no session fixation
    assert c.get("/login?next=//evil.example/").status_code == 200
    r = c.post("/login", data={"csrf_token": token(c), "username": "rob", "password": PASSWORDS["rob"],
                               "next": "//evil.example/x"})
    assert r.headers["location"] == "/"  # no open redirect after sign-in


def test_reviewer_of_one_review_gets_403_on_another(tmp_path):
    wh, app = build(tmp_path)
    oz = sign_in(app, "oz")
    home = oz.get("/")
    assert "Another review" in home.text and REVIEW not in home.text  # nobody sees a review they are not on
    csrf = token(oz, "/")
    for method, path in routes(app):
        if f"/r/{REVIEW}" not in path:
            continue
        r = oz.get(path) if method == "GET" else oz.post(path, data={"csrf_token": csrf, "record_id": "pubmed:1",
                                                                      "decision": "include", "nonce": "n" * 12,
                                                                      "stage": "title_abstract"})
        assert r.status_code == 403, (method, path, r.status_code)
        assert "IVIG versus placebo" not in r.text
    assert decisions(wh) == []
    rob = sign_in(app, "rob")
    assert rob.get(f"/r/{REVIEW}/conflicts").status_code == 403  # leads only
    assert rob.get(f"/r/{OTHER}/screen").status_code == 403


def test_a_form_without_its_csrf_token_is_refused_and_stores_nothing(tmp_path):
    wh, app = build(tmp_path)
    rob = sign_in(app, "rob")
    page = rob.get(f"/r/{REVIEW}/screen").text
    rid = re.search(r'data-record-id="([^"]+)"', page).group(1)
    form = {"record_id": rid, "decision": "include", "stage": "title_abstract", "nonce": nonce(page)}
    assert rob.post(f"/r/{REVIEW}/screen", data=form).status_code == 403
    assert rob.post(f"/r/{REVIEW}/screen", data={**form, "csrf_token": "forged"}).status_code == 403
    other = sign_in(app, "ria")  # another session's valid token is not this session's
    assert rob.post(f"/r/{REVIEW}/screen", data={**form, "csrf_token": token(other, "/")}).status_code == 403
    assert rob.post("/logout", data={}).status_code == 403
    assert decisions(wh) == []
    assert rob.post(f"/r/{REVIEW}/screen", data={**form, "csrf_token": token(rob, "/")}).status_code == 303
    assert [d[:3] for d in decisions(wh)] == [(rid, "rob", "include")]


def test_screening_decisions_are_stored_once_even_when_a_form_is_sent_twice(tmp_path):
    wh, app = build(tmp_path)
    rob = sign_in(app, "rob")
    page = rob.get(f"/r/{REVIEW}/screen").text
    rid = re.search(r'data-record-id="([^"]+)"', page).group(1)
    form = {"csrf_token": token(rob, "/"), "record_id": rid, "decision": "exclude", "reason": "not a trial",
            "stage": "title_abstract", "nonce": nonce(page)}
    for _ in range(3):
        assert rob.post(f"/r/{REVIEW}/screen", data=form).status_code == 303
    assert decisions(wh) == [(rid, "rob", "exclude", "not a trial", "web")]
    nxt = rob.get(f"/r/{REVIEW}/screen").text
    assert f'data-record-id="{rid}"' not in nxt and "Recorded: exclude" in nxt
    # undo retracts it and the record comes back
    assert rob.post(f"/r/{REVIEW}/screen/undo", data={"csrf_token": form["csrf_token"]}).status_code == 303
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM screening_undos").fetchone() == (1,)
    con.close()
    assert f'data-record-id="{rid}"' in rob.get(f"/r/{REVIEW}/screen").text


def test_dual_screening_is_blind_and_a_lead_resolves_the_conflict(tmp_path):
    wh, app = build(tmp_path)
    rob, ria, lea = sign_in(app, "rob"), sign_in(app, "ria"), sign_in(app, "lea")
    page = rob.get(f"/r/{REVIEW}/screen").text
    rid = re.search(r'data-record-id="([^"]+)"', page).group(1)
    rob.post(f"/r/{REVIEW}/screen", data={"csrf_token": token(rob, "/"), "record_id": rid, "decision": "include",
                                          "stage": "title_abstract", "nonce": nonce(page),
                                          "reason": "ROB-SECRET-REASON"})
    seen = ria.get(f"/r/{REVIEW}/screen").text
    assert f'data-record-id="{rid}"' in seen  # ria still screens it ...
    assert "ROB-SECRET-REASON" not in seen and "rob" not in seen.replace("robots", "")  # ... without seeing rob's
    ria.post(f"/r/{REVIEW}/screen", data={"csrf_token": token(ria, "/"), "record_id": rid, "decision": "exclude",
                                          "stage": "title_abstract", "nonce": nonce(seen), "reason": "wrong population"})
    conflicts = lea.get(f"/r/{REVIEW}/conflicts").text
    assert rid in conflicts and "ROB-SECRET-REASON" in conflicts and "wrong population" in conflicts
    assert re.search(r"ria · rob</td><td>1</td>", conflicts)  # kappa per pair over the 1 shared record
    r = lea.post(f"/r/{REVIEW}/conflicts/resolve", data={"csrf_token": token(lea, "/"), "record_id": rid,
                                                          "stage": "title_abstract", "decision": "include",
                                                          "reason": "meets criteria", "nonce": "resolve-nonce-1"})
    assert r.status_code == 303
    assert decisions(wh)[-1] == (rid, "lea", "include", "meets criteria", "web-resolve")
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM v_screening_conflicts").fetchone() == (0,)
    assert con.execute("SELECT state FROM v_stage_final_as_of WHERE as_of_version IS NULL AND record_id = ?",
                       [rid]).fetchone() == ("resolved",)
    con.close()
    assert "No open conflicts." in lea.get(f"/r/{REVIEW}/conflicts").text


def test_hostile_titles_render_as_text_and_no_page_carries_a_password_hash(tmp_path):
    wh, app = build(tmp_path, reviewers=1)
    rob = sign_in(app, "rob")
    csrf = token(rob, "/")
    for _ in range(20):  # screen until the hostile record shows
        page = rob.get(f"/r/{REVIEW}/screen").text
        if "window.__pwned" in page:
            break
        rid = re.search(r'data-record-id="([^"]+)"', page).group(1)
        rob.post(f"/r/{REVIEW}/screen/skip", data={"csrf_token": csrf, "record_id": rid})
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert "<script>window" not in page and "<img src=x" not in page and 'href="javascript:' not in page
    assert "&lt;a href=&#34;javascript:window.__pwned=3&#34;&gt;" in page
    bodies = [rob.get(p).text for p in ("/", f"/r/{REVIEW}", f"/r/{REVIEW}/screen")]
    lea = sign_in(app, "lea")
    bodies += [lea.get(f"/r/{REVIEW}/conflicts").text]
    with accounts(wh) as a:
        hashes = [h for (h,) in a.execute("SELECT password_hash FROM app_users").fetchall()]
    for body in bodies:
        assert "$argon2" not in body and not any(h in body for h in hashes)
        assert not any(pw in body for pw in PASSWORDS.values())
    import base64
    cookie = rob.cookies.get("livingmeta_session")
    payload = base64.b64decode(cookie.split(".")[0] + "==").decode()
    assert "argon2" not in payload and PASSWORDS["rob"] not in payload


def test_a_password_change_or_removal_signs_the_person_out(tmp_path):
    wh, app = build(tmp_path)
    rob = sign_in(app, "rob")
    assert rob.get(f"/r/{REVIEW}/screen").status_code == 200
    with accounts(wh) as a:
        set_password(a, "rob", "a-new-password-9")
    assert rob.get(f"/r/{REVIEW}/screen").status_code == 303
    PASSWORDS["rob"] = "a-new-password-9"
    try:
        rob = sign_in(app, "rob")
        with accounts(wh) as a:
            from warehouse.accounts import remove_user
            remove_user(a, "rob", REVIEW)
        assert rob.get(f"/r/{REVIEW}/screen").status_code == 403  # off the review at once
        with accounts(wh) as a:
            set_role(a, "rob", REVIEW, "reviewer")
        assert rob.get(f"/r/{REVIEW}/screen").status_code == 200
    finally:
        PASSWORDS["rob"] = "reviewer-pass-1"


def test_accounts_live_outside_the_warehouse_and_its_snapshot(tmp_path):
    wh, _ = build(tmp_path)
    con = connect(wh)
    tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    con.close()
    assert not {"app_users", "review_members"} & tables
    assert (tmp_path / "wh.accounts.duckdb").is_file()


def test_full_text_exclusion_without_a_reason_is_refused_with_the_rule(tmp_path):
    wh, app = build(tmp_path, reviewers=1)
    con = connect(wh)
    rid = "pubmed:1"
    record_decision(con, review_id=REVIEW, record_id=rid, reviewer="rob", stage="title_abstract", decision="include",
                    reason=None, origin="terminal", now=T0 + dt.timedelta(hours=2))
    con.close()
    rob = sign_in(app, "rob")
    page = rob.get(f"/r/{REVIEW}/screen?stage=full_text").text
    assert f'data-record-id="{rid}"' in page
    rob.post(f"/r/{REVIEW}/screen", data={"csrf_token": token(rob, "/"), "record_id": rid, "decision": "exclude",
                                          "stage": "full_text", "nonce": nonce(page)})
    after = rob.get(f"/r/{REVIEW}/screen?stage=full_text").text
    assert "reason" in after.lower() and f'data-record-id="{rid}"' in after
    assert [d for d in decisions(wh) if d[2] == "exclude"] == []


@pytest.mark.parametrize("bad", ["x", "Ana Silva", "a" * 41, "-lead"])
def test_bad_user_names_and_passwords_are_refused_clearly(tmp_path, bad):
    from livingmeta.accounts import AccountError
    with accounts(tmp_path / "w.duckdb") as a:
        with pytest.raises(AccountError, match="user name"):
            add_user(a, bad, "long-enough-password")
        with pytest.raises(AccountError, match="at least 10"):
            add_user(a, "ana", "short")
        assert a.execute("SELECT count(*) FROM app_users").fetchone() == (0,)


def test_extraction_form_shows_each_problem_beside_its_field_and_saves_one_study(tmp_path, warehouse_path):
    from living_seed import T0 as LT0
    from living_seed import ingest as seed_ingest
    from living_seed import link_and_include, new_update, record_for, register, write_review

    rid = register(write_review(tmp_path / "review"), warehouse_path)
    uid = new_update(warehouse_path, rid, LT0)
    seed_ingest(warehouse_path, rid, uid, [record_for("Jann2020"), record_for("Geerts2021")], LT0)
    link_and_include(warehouse_path, rid, ["Jann2020", "Geerts2021"], LT0)
    with accounts(warehouse_path) as a:
        add_user(a, "rob", PASSWORDS["rob"], review_id=rid, role="reviewer")
    app = create_app(WebSettings(warehouse=warehouse_path, out_dir=tmp_path / "out", secret_key="k" * 48))
    rob = sign_in(app, "rob")
    grid = rob.get(f"/r/{rid}/extract").text
    assert f"/r/{rid}/extract/Jann2020/responders" in grid and f"/r/{rid}/extract/Geerts2021/responders" in grid
    page = rob.get(f"/r/{rid}/extract/Jann2020/responders")
    assert page.status_code == 200 and 'name="treatment.events"' in page.text and 'name="control.total"' in page.text
    csrf = token(rob, "/")
    bad = rob.post(f"/r/{rid}/extract/Jann2020/responders", data={
        "csrf_token": csrf, "treatment.events": "12", "treatment.total": "10", "control.events": "three",
        "control.total": "20"})
    assert bad.status_code == 422
    err = dict(re.findall(r'<span class="field-error" id="([a-z]+-[a-z_]+)-error">([^<]+)</span>', bad.text))
    assert "cannot exceed total" in err["treatment-events"]
    assert "is not a number" in err["control-events"].replace("&#39;", "'")
    assert 'value="three"' in bad.text  # what the person typed stays in the form
    with opened(warehouse_path) as con:
        assert con.execute("SELECT count(*) FROM v_current_extraction WHERE study_id = 'Jann2020'").fetchone() == (0,)
    good = rob.post(f"/r/{rid}/extract/Jann2020/responders", data={
        "csrf_token": csrf, "treatment.events": "8", "treatment.total": "10", "control.events": "3",
        "control.total": "10", "treatment.source_ref": "Table 2"})
    assert good.status_code == 303
    assert "2 added" in rob.get(good.headers["location"]).text
    # correcting one arm supersedes that row only; the other study never depended on this one
    fix = rob.post(f"/r/{rid}/extract/Jann2020/responders", data={
        "csrf_token": csrf, "treatment.events": "7", "treatment.total": "10", "control.events": "3",
        "control.total": "10", "treatment.source_ref": "Table 2"})
    assert "1 corrected, 1 unchanged" in rob.get(fix.headers["location"]).text
    with opened(warehouse_path) as con:
        rows = con.execute("SELECT arm, events, total, extractor, origin FROM v_current_extraction "
                           "WHERE study_id = 'Jann2020' ORDER BY arm").fetchall()
        assert rows == [("control", 3.0, 10.0, "rob", "manual"), ("treatment", 7.0, 10.0, "rob", "manual")]
        assert con.execute("SELECT count(*) FROM v_current_extraction WHERE study_id = 'Geerts2021'").fetchone() == (0,)
    assert rob.get(f"/r/{rid}/extract/NotAStudy/responders").status_code == 404
    assert rob.post(f"/r/{rid}/extract/Jann2020/responders", data={"treatment.events": "1"}).status_code == 403



def test_registry_suggestions_are_edited_by_reviewers_and_accepted_by_leads(tmp_path, warehouse_path):
    from living_seed import T0 as LT0
    from living_seed import ingest as seed_ingest
    from living_seed import link_and_include, new_update, record_for, register, write_review

    rid = register(write_review(tmp_path / "review"), warehouse_path)
    uid = new_update(warehouse_path, rid, LT0)
    seed_ingest(warehouse_path, rid, uid, [record_for("Jann2020")], LT0)
    link_and_include(warehouse_path, rid, ["Jann2020"], LT0)
    with opened(warehouse_path) as con:  # what the CT.gov results parser stores for a posted outcome
        for arm, ev, tot in (("treatment", 7, 11), ("control", 2, 12)):
            con.execute("INSERT INTO extraction_rows (review_id, study_id, outcome_id, arm, events, total, extractor, "
                        "origin, status, source_ref, created_at) VALUES (?, 'Jann2020', 'NCT:primary', ?, ?, ?, "
                        "'ctgov', 'registry', 'suggested', 'NCT00000001 outcome 1', ?)", [rid, arm, ev, tot, LT0])
        ids = [r for (r,) in con.execute("SELECT row_id FROM extraction_rows ORDER BY row_id").fetchall()]
    with accounts(warehouse_path) as a:
        add_user(a, "rob", PASSWORDS["rob"], review_id=rid, role="reviewer")
        add_user(a, "lea", PASSWORDS["lea"], review_id=rid, role="lead")
    app = create_app(WebSettings(warehouse=warehouse_path, out_dir=tmp_path / "out", secret_key="k" * 48))
    rob, lea = sign_in(app, "rob"), sign_in(app, "lea")
    page = rob.get(f"/r/{rid}/extract/Jann2020/responders").text
    assert f'data-row-id="{ids[0]}"' in page and "accept as" not in page  # reviewers edit, leads accept
    edit = rob.get(f"/r/{rid}/extract/Jann2020/responders?use={ids[0]}&arm=treatment").text
    assert 'name="treatment.events" id="treatment-events" value="7"' in edit
    assert f"registry suggestion row {ids[0]}: NCT00000001 outcome 1" in edit
    denied = rob.post(f"/r/{rid}/extract/Jann2020/responders/accept",
                      data={"csrf_token": token(rob, "/"), "row_id": ids[0], "arm": "treatment"})
    assert denied.status_code == 403
    for row, arm in zip(ids, ("treatment", "control")):
        r = lea.post(f"/r/{rid}/extract/Jann2020/responders/accept",
                     data={"csrf_token": token(lea, "/"), "row_id": row, "arm": arm})
        assert r.status_code == 303
    assert "Accepted registry row" in lea.get(r.headers["location"]).text
    with opened(warehouse_path) as con:
        rows = con.execute("SELECT arm, events, total, origin, derived_from, extractor FROM v_current_extraction "
                           "WHERE study_id = 'Jann2020' ORDER BY arm").fetchall()
    assert rows == [("control", 2.0, 12.0, "registry", ids[1], "lea"), ("treatment", 7.0, 11.0, "registry", ids[0], "lea")]
    again = lea.post(f"/r/{rid}/extract/Jann2020/responders/accept",
                     data={"csrf_token": token(lea, "/"), "row_id": ids[0], "arm": "treatment"})
    assert again.status_code == 404  # accepted already: no open suggestion, nothing stored twice
