"""The run page's routes: parse the request, check the session, call run control or read the
store, present HTML. Pages answer a missing or dead session with a redirect to the login."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.ui import session as ui_session
from api.ui import views
from api.ui.session import UiSession
from control.errors import ActionRefused, Missing, RunsUnavailable
from control.service import Outcome, RunControl
from store.definitions.tenants import Caller, caller_for_hash, hash_key
from store.tenancy import NotFound

T = TypeVar("T")

UI_PATH = "/ui"
RUNS_SHOWN = 50
TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
TEMPLATES.env.globals["when"] = views.when
# No inline script or style, no frames, nothing from elsewhere: what a page injects cannot run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action "
                               "'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(prefix=UI_PATH, include_in_schema=False)


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def _control(request: Request) -> RunControl:
    return request.app.state.control


def _login_redirect() -> RedirectResponse:
    return RedirectResponse(f"{UI_PATH}/login", status_code=303)


def _page(request: Request, template: str, status_code: int = 200,
          **context: Any) -> HTMLResponse:
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def _signed_in(request: Request) -> tuple[UiSession, Caller] | None:
    """The session and its key's caller; None without a cookie or with a revoked key."""
    session = ui_session.read_session(request)
    if session is None:
        return None
    caller = caller_for_hash(_engine(request), hash_key(session.key))
    return (session, caller) if caller is not None else None


def _read(request: Request, work: Callable[[Session], T]) -> T:
    with Session(_engine(request), expire_on_commit=False) as db:
        return work(db)


# ---- login and logout ----------------------------------------------------------------------
@router.get("/login")
def login_page(request: Request) -> Response:
    return _page(request, "login.html")


async def _form(request: Request) -> dict[str, str]:
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


@router.post("/login")
async def login(request: Request) -> Response:
    if not ui_session.origin_allowed(request):
        return _page(request, "error.html", 403, message="This form was sent from another site.")
    key = (await _form(request)).get("api_key", "").strip()
    caller = await run_in_threadpool(caller_for_hash, _engine(request), hash_key(key)) \
        if key else None
    if caller is None:
        return _page(request, "login.html", 401, error="That API key is unknown or revoked.")
    response = RedirectResponse(f"{UI_PATH}/", status_code=303)
    ui_session.set_session_cookie(response, request, ui_session.new_session(key))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    refused = await _refuse_forgery(request)
    if refused is not None:
        return refused
    response = _login_redirect()
    ui_session.clear_session_cookie(response, request)
    return response


async def _refuse_forgery(request: Request) -> Response | None:
    """A 403 for a POST from another origin or without this session's CSRF token."""
    session = ui_session.read_session(request)
    token = request.headers.get(ui_session.CSRF_HEADER) or (await _form(request)).get(
        ui_session.CSRF_FIELD)
    if not ui_session.origin_allowed(request):
        return _page(request, "error.html", 403, message="This form was sent from another site.")
    if session is None or not session.accepts(token):
        return _page(request, "error.html", 403, message="The form's CSRF token is missing or "
                     "does not match this session: reload the page and try again.")
    return None


# ---- pages ---------------------------------------------------------------------------------
@router.get("")
def runs_page(request: Request, offset: int = 0) -> Response:
    signed_in = _signed_in(request)
    if signed_in is None:
        return _login_redirect()
    session, caller = signed_in
    offset = max(0, offset)
    runs, count = _read(request, lambda db: views.runs_list(
        db, caller.enterprise_id, limit=RUNS_SHOWN, offset=offset))
    return _page(request, "runs.html", runs=runs, count=count, offset=offset,
                 shown=RUNS_SHOWN, csrf_token=session.csrf_token, caller=caller)


def _run_view(request: Request, caller: Caller, run_id: UUID) -> views.RunView:
    return _read(request, lambda db: views.run_view(
        db, request.app.state.settings, caller.enterprise_id, run_id))


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: UUID) -> Response:
    signed_in = _signed_in(request)
    if signed_in is None:
        return _login_redirect()
    session, caller = signed_in
    return _run_page(request, session, caller, run_id)


def _run_page(request: Request, session: UiSession, caller: Caller, run_id: UUID,
              status_code: int = 200, error: str = "", notice: str = "") -> Response:
    try:
        view = _run_view(request, caller, run_id)
    except NotFound:
        return _page(request, "error.html", 404, message=f"No run {run_id} in this enterprise.")
    return _page(request, "run.html", status_code, view=view, csrf_token=session.csrf_token,
                 caller=caller, error=error, notice=notice)


@router.get("/runs/{run_id}/live")
def run_live(request: Request, run_id: UUID) -> Response:
    """The changing part of the run page, polled by run.js."""
    signed_in = _signed_in(request)
    if signed_in is None:
        return Response("sign in again", status_code=401, headers=SECURITY_HEADERS)
    session, caller = signed_in
    try:
        view = _run_view(request, caller, run_id)
    except NotFound:
        return Response("no such run", status_code=404, headers=SECURITY_HEADERS)
    return _page(request, "_live.html", view=view, csrf_token=session.csrf_token)


# ---- actions (through run control, as the REST routes) ---------------------------------------
_RUN_ACTIONS = {"pause": "waiting", "resume": "running", "cancel": "cancelled"}


async def _act(request: Request, run_id: UUID,
               call: Callable[[Caller], Awaitable[Outcome[Any]]]) -> Response:
    """Check the session and the CSRF token, do the action, then show the run: a redirect to
    its page when done, the page with the refusal otherwise."""
    refused = await _refuse_forgery(request)
    if refused is not None:
        return refused
    signed_in = await run_in_threadpool(_signed_in, request)
    if signed_in is None:
        return _login_redirect()
    session, caller = signed_in
    try:
        outcome: Outcome[Any] = await call(caller)
    except ActionRefused as refusal:
        return await run_in_threadpool(_run_page, request, session, caller, run_id, 400,
                                       refusal.message)
    except NotFound as missing:
        return _page(request, "error.html", 404, message=str(missing))
    except Missing as missing:
        return await run_in_threadpool(_run_page, request, session, caller, run_id, 409,
                                       str(missing))
    except RunsUnavailable as down:
        return await run_in_threadpool(_run_page, request, session, caller, run_id, 503,
                                       f"Temporal cannot be reached: {down}")
    if not outcome.answered:
        return await run_in_threadpool(_run_page, request, session, caller, run_id, 202, "",
                                       outcome.message or "")
    return RedirectResponse(f"{UI_PATH}/runs/{run_id}", status_code=303)


@router.post("/runs/{run_id}/{action}")
async def run_action(request: Request, run_id: UUID, action: str) -> Response:
    """Pause, resume or cancel: the REST API's `PUT .../runs/{id} {"status": ...}`."""
    status = _RUN_ACTIONS.get(action)
    if status is None:
        return _page(request, "error.html", 404, message=f"No action {action!r}.")

    async def call(caller: Caller) -> Outcome[Any]:
        row = await run_in_threadpool(_read, request, lambda db: views.run_row(
            db, caller.enterprise_id, run_id))
        return await _control(request).set_pipeline_run_status(
            caller.enterprise_id, row.pipeline_id, run_id, status, caller=caller)

    return await _act(request, run_id, call)


@router.post("/runs/{run_id}/stageruns/{stage_run_id}/promote")
async def promote(request: Request, run_id: UUID, stage_run_id: UUID) -> Response:
    return await _act(request, run_id, lambda caller: _control(request).set_stage_run_status(
        caller.enterprise_id, run_id, stage_run_id, "queued", caller=caller))
