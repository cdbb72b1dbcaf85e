"""`livingmeta web`: the review team's web app (FastAPI + Jinja2, server-rendered, our own small script).

Every action calls the same warehouse operation the CLI and the flows call (`warehouse.screening.
record_decision`, `undo_decision`, `warehouse.extraction.store_rows`, ...); this module only checks who is
asking, reads forms and renders pages.

Concurrency: DuckDB lets one process have the warehouse file open for writing. The app opens it per request
through `warehouse.opened`, which takes turns with the nightly update (`warehouse.access`): a request waits
for the update's current step, never for the whole cycle, and the update waits for at most one request.
Within the app the same turn serialises writes, so two reviewers' decisions never conflict. The dashboard
reads the published snapshot only, so it never waits for anything.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from livingmeta.accounts import DUMMY_HASH, LoginThrottle, allowed, needs_rehash, verify_password
from livingmeta.screening.highlight import highlight
from warehouse import accounts as acct
from warehouse.dashboard import dashboard as dashboard_data
from warehouse.dashboard import review_titles
from warehouse.db import WarehouseError, connect, opened
from warehouse.extraction import current_arms, extraction_counts

from web.security import CSRF_FIELD, HEADERS, check_csrf, csrf_token

HERE = Path(__file__).parent
DECISIONS = ("include", "exclude", "maybe")
MAX_SKIPS = 200
PUBLIC_PATHS = frozenset({"/login", "/logout"})  # the sign-in form, and signing out (harmless when signed out)
MAX_UNDO = 50


@dataclass(frozen=True)
class WebSettings:
    warehouse: Path
    out_dir: Path                       # where the update publishes reports and the snapshot
    secret_key: str
    reviews: tuple[str, ...] | None = None  # the reviews served (None: every review in the warehouse)
    https_only: bool = False

    @property
    def snapshot(self) -> Path:
        return self.out_dir / "snapshot" / "warehouse.duckdb"


class NotSignedIn(Exception):
    pass


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def create_app(settings: WebSettings) -> FastAPI:
    app = FastAPI(title="livingmeta", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.autoescape = True
    throttle = LoginThrottle()
    app.state.settings = settings
    app.state.throttle = throttle

    app.add_middleware(SessionMiddleware, secret_key=settings.secret_key, session_cookie="livingmeta_session",
                       max_age=12 * 3600, same_site="strict", https_only=settings.https_only)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn):
        if request.method == "GET":
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return PlainTextResponse("sign in first", status_code=401)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if request.method == "GET" and exc.status_code in (403, 404):
            return templates.TemplateResponse(request, "error.html", _ctx(request, None, status=exc.status_code,
                                                                          message=exc.detail), status_code=exc.status_code)
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)

    # ------------------------------------------------------------------------------------ who is asking

    def served(review_id: str) -> bool:
        return settings.reviews is None or review_id in settings.reviews

    def viewer(request: Request) -> dict:
        known = getattr(request.state, "viewer", None)
        if known is not None:  # looked up once per request (by `guard`)
            return known
        name = request.session.get("user")
        if not name:
            raise NotSignedIn()
        with acct.accounts(settings.warehouse) as con:
            user = acct.user_session_info(con, name)
        if user is None or str(user["password_set_at"]) != request.session.get("pw"):
            request.session.clear()  # account removed, or its password changed since this sign-in
            raise NotSignedIn()
        user["reviews"] = {r: role for r, role in user["reviews"].items() if served(r)}
        request.state.viewer = user
        return user

    def member(request: Request, review_id: str, action: str = "view") -> tuple[dict, str]:
        user = viewer(request)
        role = user["reviews"].get(review_id)
        if role is None:
            raise HTTPException(403, "You are not on this review. Ask its lead to add you.")
        if not allowed(role, action):
            raise HTTPException(403, f"Only a review lead can do this (you are a {role}).")
        return user, role

    def guard(request: Request) -> None:
        """Runs before every route reads its own parameters or body: a signed-in person, on the review the path
        names. So nothing of a route (not even its validation messages) answers the anonymous or outsiders."""
        if request.url.path in PUBLIC_PATHS:
            return
        user = viewer(request)
        review_id = request.path_params.get("review_id")
        if review_id is not None:
            member(request, review_id, "view")

    app.router.dependencies.append(Depends(guard))  # before the routes below are made: each one gets it first

    def _ctx(request: Request, user: dict | None, **kw) -> dict:
        return {"request": request, "user": user, "csrf": csrf_token(request), "csrf_field": CSRF_FIELD, **kw}

    # ------------------------------------------------------------------------------------------ sign-in

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/"):
        return templates.TemplateResponse(request, "login.html", _ctx(request, None, next=_safe_next(next)))

    @app.post("/login", dependencies=[Depends(check_csrf)])
    def login(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/")):
        name = username.strip().lower()
        client = request.client.host if request.client else "?"
        keys = (f"user:{name}", f"addr:{client}")
        wait = throttle.retry_after(*keys)
        if wait > 0:
            return templates.TemplateResponse(
                request, "login.html", _ctx(request, None, next=_safe_next(next), username=name,
                                            error=f"Too many failed sign-ins: try again in {math.ceil(wait / 60)} "
                                                  "minute(s)."), status_code=429,
                headers={"Retry-After": str(math.ceil(wait))})
        with acct.accounts(settings.warehouse) as con:
            rec = acct.login_record(con, name)
        ok = verify_password(rec["password_hash"] if rec else DUMMY_HASH, password) and rec is not None
        if not ok:
            throttle.failed(*keys)
            return templates.TemplateResponse(
                request, "login.html", _ctx(request, None, next=_safe_next(next), username=name,
                                            error="Unknown user name or wrong password."), status_code=401)
        throttle.succeeded(keys[0])
        if needs_rehash(rec["password_hash"]):
            from livingmeta.accounts import hash_password
            with acct.accounts(settings.warehouse) as con:
                acct.rehash(con, name, hash_password(password))
        request.session.clear()  # a fresh session (and CSRF token) at every sign-in: no session fixation
        request.session.update({"user": name, "pw": str(rec["password_set_at"]), "csrf": secrets.token_urlsafe(32)})
        return RedirectResponse(_safe_next(next), status_code=303)

    @app.post("/logout", dependencies=[Depends(check_csrf)])
    def logout(request: Request):
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # ----------------------------------------------------------------------------------------- reviews

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request):
        user = viewer(request)
        titles = {}
        if user["reviews"]:
            with opened(settings.warehouse) as con:
                titles = review_titles(con)
        rows = [{"id": r, "title": titles.get(r, r), "role": role} for r, role in sorted(user["reviews"].items())]
        return templates.TemplateResponse(request, "index.html", _ctx(request, user, reviews=rows))

    # -------------------------------------------------------------------------------------- screening

    def _stage(stage: str) -> str:
        if stage not in ("title_abstract", "full_text"):
            raise HTTPException(400, f"unknown stage {stage!r}: title_abstract or full_text")
        return stage

    @app.get("/r/{review_id}/screen", response_class=HTMLResponse)
    def screen_page(request: Request, review_id: str, stage: str = "title_abstract"):
        user, role = member(request, review_id, "screen")
        stage = _stage(stage)
        from warehouse.screening import next_to_screen, review_config, screening_status

        skipped = request.session.get(f"skip:{review_id}:{stage}", [])
        with opened(settings.warehouse) as con:
            cfg = review_config(con, review_id)
            # live re-ranking: the next record comes from a model that has seen every decision so far
            rec = next_to_screen(con, review_id, user["username"], stage, skip=skipped, cfg=cfg)
            status = screening_status(con, review_id)
            title = review_titles(con).get(review_id, review_id)
        waiting = rec["waiting"] if rec else 0
        screening = cfg.screening if cfg else None
        inc = list(screening.include_keywords) if screening else []
        exc = list(screening.exclude_keywords) if screening else []
        reasons = list(getattr(screening, "exclusion_reasons", []) or []) if screening else []
        view = None
        if rec is not None:
            view = {
                **rec,
                "title_parts": highlight(rec.get("title"), inc, exc),
                "abstract_parts": highlight(rec.get("abstract"), inc, exc),
                "authors_text": _authors(rec.get("authors")),
                "links": _links(rec),
                "registry_status": (rec.get("extra") or {}).get("overall_status") if rec.get("source") == "ctgov"
                else None,
            }
        return templates.TemplateResponse(request, "screen.html", _ctx(
            request, user, review_id=review_id, review_title=title, role=role, stage=stage, rec=view,
            waiting=waiting, skipped=len(skipped), status=status, reasons=reasons[:9],
            reason_required=stage == "full_text", nonce=secrets.token_urlsafe(16),
            can_undo=bool(request.session.get(f"undo:{review_id}")), message=request.session.pop("flash", None)))

    @app.post("/r/{review_id}/screen", dependencies=[Depends(check_csrf)])
    def decide(request: Request, review_id: str, record_id: str = Form(...), decision: str = Form(...),
               stage: str = Form("title_abstract"), reason: str = Form(""), nonce: str = Form(...)):
        user, _ = member(request, review_id, "screen")
        stage = _stage(stage)
        if decision not in DECISIONS:
            raise HTTPException(400, f"decision must be one of {', '.join(DECISIONS)}")
        from warehouse.screening import record_decision

        if not 8 <= len(nonce) <= 64:
            raise HTTPException(400, "bad form nonce; reload the page")
        try:
            with opened(settings.warehouse) as con:
                did = record_decision(con, review_id=review_id, record_id=record_id, reviewer=user["username"],
                                      stage=stage, decision=decision, reason=reason.strip() or None, origin="web",
                                      now=_now(), key=f"web:{user['username']}:{nonce}")
        except ValueError as e:  # the decision rules (a full-text exclusion without a reason, ...)
            request.session["flash"] = str(e)
            return RedirectResponse(f"/r/{review_id}/screen?stage={stage}", status_code=303)
        undo = request.session.get(f"undo:{review_id}", [])
        if did not in undo:
            undo = (undo + [did])[-MAX_UNDO:]
        request.session[f"undo:{review_id}"] = undo
        request.session["flash"] = f"Recorded: {decision} {record_id}."
        return RedirectResponse(f"/r/{review_id}/screen?stage={stage}", status_code=303)

    @app.post("/r/{review_id}/screen/undo", dependencies=[Depends(check_csrf)])
    def undo(request: Request, review_id: str, stage: str = Form("title_abstract")):
        user, _ = member(request, review_id, "screen")
        from warehouse.screening import undo_decision

        stack = request.session.get(f"undo:{review_id}", [])
        if not stack:
            request.session["flash"] = "Nothing to undo in this session."
        else:
            did = stack.pop()
            try:
                with opened(settings.warehouse) as con:
                    undo_decision(con, review_id=review_id, decision_id=int(did), reviewer=user["username"],
                                  now=_now(), origin="web")
                request.session["flash"] = "Undone: your last decision."
            except ValueError as e:
                request.session["flash"] = str(e)
            request.session[f"undo:{review_id}"] = stack
        return RedirectResponse(f"/r/{review_id}/screen?stage={_stage(stage)}", status_code=303)

    @app.post("/r/{review_id}/screen/skip", dependencies=[Depends(check_csrf)])
    def skip(request: Request, review_id: str, record_id: str = Form(...), stage: str = Form("title_abstract")):
        member(request, review_id, "screen")
        key = f"skip:{review_id}:{_stage(stage)}"
        request.session[key] = (request.session.get(key, []) + [record_id])[-MAX_SKIPS:]
        return RedirectResponse(f"/r/{review_id}/screen?stage={stage}", status_code=303)

    # -------------------------------------------------------------------------------------- conflicts

    @app.get("/r/{review_id}/conflicts", response_class=HTMLResponse)
    def conflicts_page(request: Request, review_id: str):
        user, role = member(request, review_id, "resolve")
        from warehouse.screening import conflict_details, kappa_by_pair

        with opened(settings.warehouse) as con:
            rows = conflict_details(con, review_id)
            kappas = {s: kappa_by_pair(con, review_id, s) for s in ("title_abstract", "full_text")}
        return templates.TemplateResponse(request, "conflicts.html", _ctx(
            request, user, review_id=review_id, role=role, conflicts=rows, kappas=kappas, nonce=secrets.token_urlsafe(12),
            message=request.session.pop("flash", None)))

    @app.post("/r/{review_id}/conflicts/resolve", dependencies=[Depends(check_csrf)])
    def resolve(request: Request, review_id: str, record_id: str = Form(...), stage: str = Form(...),
                decision: str = Form(...), reason: str = Form(""), nonce: str = Form(...)):
        user, _ = member(request, review_id, "resolve")
        stage = _stage(stage)
        if decision not in DECISIONS:
            raise HTTPException(400, f"decision must be one of {', '.join(DECISIONS)}")
        from warehouse.screening import conflict_details, record_decision

        with opened(settings.warehouse) as con:
            open_ = {(c["record_id"], c["stage"]): c for c in conflict_details(con, review_id)}
            c = open_.get((record_id, stage))
            if c is None:
                request.session["flash"] = f"{record_id} has no open conflict at {stage} (resolved already?)."
            elif user["username"] in {s["reviewer"] for s in c["sides"]}:
                request.session["flash"] = (f"You screened {record_id} yourself: another lead (a third person) "
                                            "resolves this conflict.")
            else:
                try:
                    record_decision(con, review_id=review_id, record_id=record_id, reviewer=user["username"],
                                    stage=stage, decision=decision, reason=reason.strip() or None,
                                    origin="web-resolve", now=_now(), key=f"web:{user['username']}:{nonce}")
                    request.session["flash"] = f"Resolved {record_id}: {decision}."
                except ValueError as e:
                    request.session["flash"] = str(e)
        return RedirectResponse(f"/r/{review_id}/conflicts", status_code=303)

    # ------------------------------------------------------------------------------------- extraction

    def _outcomes(con, review_id: str):
        from warehouse.screening import review_config

        cfg = review_config(con, review_id)
        if cfg is None:
            raise HTTPException(404, f"review {review_id} is not registered in this warehouse")
        return cfg, {o.id: o for o in cfg.outcomes}

    @app.get("/r/{review_id}/extract", response_class=HTMLResponse)
    def extract_index(request: Request, review_id: str):
        user, role = member(request, review_id, "extract")
        from warehouse.extraction import included_study_ids, list_suggestions

        with opened(settings.warehouse) as con:
            cfg, outcomes = _outcomes(con, review_id)
            studies = included_study_ids(con, review_id)
            have = extraction_counts(con, review_id)
            suggested = {(r["study_id"]) for r in list_suggestions(con, review_id)}
        grid = [{"study_id": s, "suggested": s in suggested,
                 "cells": [{"outcome": o, "rows": have.get((s, o), 0)} for o in outcomes]} for s in studies]
        return templates.TemplateResponse(request, "extract_index.html", _ctx(
            request, user, review_id=review_id, role=role, grid=grid, outcomes=list(outcomes.values()),
            message=request.session.pop("flash", None)))

    def _extract_form(request, user, role, review_id, study_id, outcome_id, *, values=None, errors=None,
                      status_code=200, use: int | None = None, use_arm: str | None = None):
        from livingmeta.extraction import ARMS_BY_KIND
        from warehouse.extraction import included_study_ids, list_suggestions

        with opened(settings.warehouse) as con:
            cfg, outcomes = _outcomes(con, review_id)
            if study_id not in included_study_ids(con, review_id):
                raise HTTPException(404, f"{study_id} is not an included study of {review_id}")
            if outcome_id not in outcomes:
                raise HTTPException(404, f"{outcome_id} is not an outcome of {review_id}")
            current = current_arms(con, review_id, study_id, outcome_id)
            suggestions = [s for s in list_suggestions(con, review_id) if s["study_id"] == study_id]
        kind = outcomes[outcome_id].kind
        arms = list(ARMS_BY_KIND[kind])
        fields = _FIELDS_BY_KIND[kind]
        if values is None:
            values = {arm: {f: _cell(current.get(arm, {}).get(f)) for f in (*fields, "group_label", "source_ref",
                                                                            "notes")} for arm in arms}
            chosen = next((x for x in suggestions if x["row_id"] == use), None)
            if chosen is not None and use_arm in arms:  # "edit": the registry's numbers into one arm, to check
                values[use_arm] = {f: _cell(chosen.get(f)) for f in (*fields, "group_label")}
                values[use_arm]["source_ref"] = f"registry suggestion row {use}" + (
                    f": {chosen['source_ref']}" if chosen.get("source_ref") else "")
                values[use_arm]["notes"] = ""
        analyses = [a.label or a.id for a in cfg.analyses if a.outcome == outcome_id]
        return templates.TemplateResponse(request, "extract_form.html", _ctx(
            request, user, review_id=review_id, role=role, study_id=study_id, outcome=outcomes[outcome_id],
            analyses=analyses, arms=arms, fields=fields, values=values, errors=errors or {},
            suggestions=suggestions, current=current, message=request.session.pop("flash", None)),
            status_code=status_code)

    @app.get("/r/{review_id}/extract/{study_id}/{outcome_id}", response_class=HTMLResponse)
    def extract_form(request: Request, review_id: str, study_id: str, outcome_id: str, use: int | None = None,
                     arm: str | None = None):
        user, role = member(request, review_id, "extract")
        return _extract_form(request, user, role, review_id, study_id, outcome_id, use=use, use_arm=arm)

    @app.post("/r/{review_id}/extract/{study_id}/{outcome_id}/accept", dependencies=[Depends(check_csrf)])
    def extract_accept(request: Request, review_id: str, study_id: str, outcome_id: str, row_id: int = Form(...),
                       arm: str = Form(...)):
        user, _ = member(request, review_id, "accept")  # leads accept registry numbers as they are
        from livingmeta.extraction import ExtractionError
        from warehouse.extraction import accept_suggestions, list_suggestions

        with opened(settings.warehouse) as con:
            _, outcomes = _outcomes(con, review_id)
            if outcome_id not in outcomes:
                raise HTTPException(404, f"{outcome_id} is not an outcome of {review_id}")
            if row_id not in {x["row_id"] for x in list_suggestions(con, review_id) if x["study_id"] == study_id}:
                raise HTTPException(404, f"row {row_id} is no open registry suggestion of {study_id}")
            try:
                res = accept_suggestions(con, review_id, [row_id], outcome=outcome_id,
                                         outcomes={o: x.kind for o, x in outcomes.items()},
                                         extractor=user["username"], arm=arm, now=_now())
                request.session["flash"] = (f"Accepted registry row {row_id} as the {arm} arm of {outcome_id} "
                                            f"({res['accepted']} stored).")
            except ExtractionError as e:
                request.session["flash"] = str(e)
        return RedirectResponse(f"/r/{review_id}/extract/{study_id}/{outcome_id}", status_code=303)

    @app.post("/r/{review_id}/extract/{study_id}/{outcome_id}", dependencies=[Depends(check_csrf)])
    async def extract_save(request: Request, review_id: str, study_id: str, outcome_id: str):
        # async only to read the form's free field names; everything that touches a file runs in the thread pool
        user, role = await run_in_threadpool(member, request, review_id, "extract")
        from livingmeta.extraction import ARMS_BY_KIND, ExtractionError, validate_row
        from warehouse.extraction import included_study_ids, store_rows

        form = await request.form()

        def lookup():
            with opened(settings.warehouse) as con:
                return _outcomes(con, review_id)[1], study_id in included_study_ids(con, review_id)
        outcomes, included = await run_in_threadpool(lookup)
        if not included:
            raise HTTPException(404, f"{study_id} is not an included study of {review_id}")
        if outcome_id not in outcomes:
            raise HTTPException(404, f"{outcome_id} is not an outcome of {review_id}")
        kind = outcomes[outcome_id].kind
        fields = (*_FIELDS_BY_KIND[kind], "group_label", "source_ref", "notes")
        values = {arm: {f: str(form.get(f"{arm}.{f}", "") or "").strip() for f in fields}
                  for arm in ARMS_BY_KIND[kind]}
        rows, errors = [], {}
        kinds = {o: x.kind for o, x in outcomes.items()}
        for arm, cells in values.items():
            if not any(cells[f] for f in _FIELDS_BY_KIND[kind]):
                continue  # an arm left empty is not extracted (yet)
            raw = {**cells, "study": study_id, "outcome": outcome_id, "arm": arm, "extractor": user["username"],
                   "extracted_on": _now().date().isoformat()}
            try:
                rows.append((study_id, validate_row(raw, kinds, where=f"{arm} arm")))
            except ExtractionError as e:
                errors[arm] = e.fields
        if not rows and not errors:
            errors["_form"] = {"": ["nothing to save: fill in at least one arm"]}
        if errors:
            return await run_in_threadpool(_extract_form, request, user, role, review_id, study_id, outcome_id,
                                           values=values, errors=errors, status_code=422)

        def save():
            with opened(settings.warehouse) as con:
                return store_rows(con, review_id, rows, origin="manual", now=_now())
        counts = await run_in_threadpool(save)
        request.session["flash"] = (f"Saved {study_id} / {outcome_id}: {counts['added']} added, "
                                    f"{counts['corrected']} corrected, {counts['unchanged']} unchanged. The next "
                                    "update re-runs the analyses.")
        return RedirectResponse(f"/r/{review_id}/extract/{study_id}/{outcome_id}", status_code=303)

    # -------------------------------------------------------------------------------------- dashboard

    @app.get("/r/{review_id}", response_class=HTMLResponse)
    def dashboard(request: Request, review_id: str):
        user, role = member(request, review_id, "view")
        data = _dashboard(settings, review_id)
        return templates.TemplateResponse(request, "dashboard.html", _ctx(
            request, user, review_id=review_id, role=role, **data))

    @app.get("/r/{review_id}/reports/{path:path}")
    def report_file(request: Request, review_id: str, path: str):
        member(request, review_id, "view")
        root = (settings.out_dir / review_id).resolve()
        target = (root / (path or "index.html")).resolve()
        if root not in target.parents or not target.is_file():
            raise HTTPException(404, "no such report file")
        return FileResponse(target)

    return app


# ------------------------------------------------------------------------------------------- helpers

_FIELDS_BY_KIND = {
    "binary": ("events", "total"),
    "proportion": ("events", "total"),
    "continuous": ("mean", "sd", "n"),
    "generic": ("estimate", "se", "ci_lower", "ci_upper", "scale", "n"),
}


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _safe_next(url: str) -> str:
    """Only a local path is a redirect target after sign-in (no open redirect)."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else "/"


def _authors(authors: Any) -> str:
    if not authors:
        return ""
    names = []
    for a in authors[:12]:
        if isinstance(a, dict):
            names.append(" ".join(x for x in (a.get("last") or a.get("name") or "", a.get("initials") or "") if x))
        else:
            names.append(str(a))
    more = len(authors) - 12
    return ", ".join(n for n in names if n) + (f" and {more} more" if more > 0 else "")


def _links(rec: dict) -> list[tuple[str, str]]:
    out = []
    sid = str(rec.get("source_id") or "")
    if rec.get("source") == "pubmed" and sid.isdigit():
        out.append(("PubMed", f"https://pubmed.ncbi.nlm.nih.gov/{sid}/"))
    for rid in rec.get("registry_ids") or []:
        if isinstance(rid, str) and rid.upper().startswith("NCT") and rid[3:].isdigit():
            out.append((rid.upper(), f"https://clinicaltrials.gov/study/{rid.upper()}"))
    if rec.get("doi"):
        out.append(("DOI", f"https://doi.org/{rec['doi']}"))
    seen, unique = set(), []
    for label, url in out:
        if url not in seen:
            seen.add(url)
            unique.append((label, url))
    return unique


def _dashboard(settings: WebSettings, review_id: str) -> dict:
    """What the dashboard shows, read from the published snapshot only (never the live warehouse)."""
    snap = settings.snapshot
    reports = sorted((p.parent.name for p in (settings.out_dir / review_id).glob("v*/report.html")),
                     key=lambda v: int(v[1:]) if v[1:].isdigit() else 0)
    empty = {"snapshot": None, "estimates": [], "history": [], "diffs": [], "runs": [], "alerts": [],
             "progress": [], "reports": reports, "charts": []}
    if not snap.is_file():
        return empty
    try:
        con = connect(snap, read_only=True)
    except WarehouseError:
        return empty
    try:
        data = dashboard_data(con, review_id)
    finally:
        con.close()
    diffs = data["diffs"]
    for d in diffs:
        def js(v):
            return json.loads(v) if isinstance(v, str) else v
        changes, old, new = js(d.get("changes")) or [], js(d.get("old")), js(d.get("new"))
        d["changes_text"] = ", ".join(str(c).replace("_", " ") for c in changes) or "no change"
        d["old_text"], d["new_text"] = _estimate_text(old), _estimate_text(new)
        d["added"], d["removed"] = js(d.get("studies_added")) or [], js(d.get("studies_removed")) or []
    made_at = dt.datetime.fromtimestamp(snap.stat().st_mtime, dt.timezone.utc)
    return {**data, "snapshot": made_at, "reports": reports, "charts": _charts(data["history"])}


def _estimate_text(n: dict | None) -> str | None:
    if not n or n.get("estimate") is None:
        return None
    ci = (f" ({n['ci_lower']:.2f} to {n['ci_upper']:.2f})" if n.get("ci_lower") is not None
          and n.get("ci_upper") is not None else "")
    return f"{n.get('measure') or ''} {n['estimate']:.2f}{ci}, k={n.get('k')}".strip()


def _charts(history: list[dict]) -> list[dict]:
    """Per analysis, the estimate and its CI across versions as SVG coordinates (log scale for ratios)."""
    by: dict[str, list[dict]] = {}
    for h in history:
        if h.get("estimate") is not None:
            by.setdefault(h["analysis_id"], []).append(h)
    charts = []
    width, height, pad = 560, 180, 36
    for aid, rows in by.items():
        ratio = str(rows[0].get("measure") or "").upper() in ("OR", "RR", "HR", "IRR", "ROR")
        def tx(v):
            return math.log(v) if ratio and v and v > 0 else (v if not ratio else None)
        vals = [tx(x) for r in rows for x in (r.get("estimate"), r.get("ci_lower"), r.get("ci_upper"))]
        vals = [v for v in vals if v is not None and math.isfinite(v)]
        null = 0.0
        if not vals:
            continue
        lo, hi = min(vals + [null]), max(vals + [null])
        span = (hi - lo) or 1.0
        versions = [r["version"] for r in rows]
        vmin, vmax = min(versions), max(versions)

        def x(v):
            return pad + (width - 2 * pad) * ((v - vmin) / (vmax - vmin) if vmax > vmin else 0.5)

        def y(v):
            return height - pad - (height - 2 * pad) * (v - lo) / span

        points = []
        for r in rows:
            e, l_, u = tx(r.get("estimate")), tx(r.get("ci_lower")), tx(r.get("ci_upper"))
            if e is None:
                continue
            points.append({"x": round(x(r["version"]), 1), "y": round(y(e), 1),
                           "ylo": round(y(l_), 1) if l_ is not None else None,
                           "yhi": round(y(u), 1) if u is not None else None,
                           "label": f"version {r['version']}: {r['estimate']:.3g} "
                                    f"({r.get('ci_lower') if r.get('ci_lower') is None else format(r['ci_lower'], '.3g')}"
                                    f" to {r.get('ci_upper') if r.get('ci_upper') is None else format(r['ci_upper'], '.3g')})"})
        charts.append({"analysis_id": aid, "measure": rows[0].get("measure"), "width": width, "height": height,
                       "points": points, "null_y": round(y(null), 1), "path": " ".join(
                           f"{'M' if i == 0 else 'L'}{p['x']},{p['y']}" for i, p in enumerate(points))})
    return charts
