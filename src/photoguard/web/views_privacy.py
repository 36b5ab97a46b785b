"""The privacy officer's pages: consents per pupil with names and their history with sources,
consents not confirmed in 12 months (with names, for reminders), the takedown list, the deletion
log, the privacy report and the audit trail filtered by who, what and when. Every list is also a
CSV download (:mod:`photoguard.web.tables`).

Pages with pupils' names are for the privacy role only (:data:`~photoguard.web.auth.NAMES`); the
others also for admin. Nothing here changes anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from photoguard.config import CONSENT_KEYS
from photoguard.core.records import Pupil
from photoguard.followup.reports import PrivacyReport, build_privacy_report, stale_pupils
from photoguard.ledger import desk, users
from photoguard.ledger.consent import Registry
from photoguard.ledger.desk import AuditFilter
from photoguard.web import i18n
from photoguard.web.auth import NAMES, PRIVACY_DESK, require
from photoguard.web.base import WebState, language, render, session_of, state
from photoguard.web.tables import Cell, Table, csv_response, dutch_time, label, parse_day, utc_bounds, yes_no
from photoguard.web.views_comms import takedown_table

AUDIT_PAGE = 50
AUDIT_CSV_MAX = 50_000
UNCONFIRMED_PERIOD = "12m"
PUPIL_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _key_label(key: str, lang: str) -> str:
    return label(f"consent.{key}", lang)


def _full_name(p: Pupil) -> str:
    return " ".join(part for part in (p.first_name, p.surname_prefix, p.surname) if part)


# -- the lists -------------------------------------------------------------------------------
def consents_table(web: WebState, request: Request, lang: str) -> Table:
    reg = Registry(web.store)
    confirmed = {str(r["pupil_id"]): str(r["confirmed_at"]) for r in reg.confirmed_before("9999")}
    table = Table(
        [
            "desk.pupil_id",
            "desk.name",
            "desk.group",
            "desk.left_on",
            "desk.confirmed",
            *(f"consent.{k}" for k in CONSENT_KEYS),
        ]
    )
    pupils = sorted(reg.pupils().values(), key=lambda p: (p.group, p.first_name, p.surname, p.pupil_id))
    for p in pupils:
        table.rows.append(
            [
                Cell(p.pupil_id, href=f"/privacy/consents/{p.pupil_id}"),
                _full_name(p),
                p.group,
                dutch_time(p.left_on.isoformat(), web.tz) if p.left_on else "",
                dutch_time(confirmed.get(p.pupil_id), web.tz),
                *(yes_no(p.consents.get(k, False), lang) for k in CONSENT_KEYS),
            ]
        )
    return table


def _pupil(web: WebState, request: Request) -> Pupil:
    pid = str(request.path_params.get("pupil_id", ""))
    pupil = Registry(web.store).pupil(pid) if PUPIL_ID.match(pid) else None
    if pupil is None:
        raise HTTPException(404)
    return pupil


def history_table(web: WebState, request: Request, lang: str) -> Table:
    """One pupil's consent history, oldest first, with each change's source."""
    pupil = _pupil(web, request)
    table = Table(["desk.at", "desk.what", "desk.old", "desk.new", "desk.kind", "desk.source", "desk.version"])
    for r in Registry(web.store).history(pupil.pupil_id):
        key = str(r["key"])
        old, new = r["old_value"], r["new_value"]
        if key in CONSENT_KEYS:
            old_text, new_text = yes_no(_num(old), lang), yes_no(_num(new), lang)
        else:
            old_text, new_text = str(old if old is not None else "-"), str(new if new is not None else "-")
        table.rows.append(
            [
                dutch_time(str(r["at"]), web.tz),
                _key_label(key, lang),
                old_text,
                new_text,
                i18n.word(f"kind.{r['kind']}", lang) if r["kind"] else "",
                str(r["source"]),
                str(r["version"]),
            ]
        )
    return table


def _num(v: object) -> int | None:
    if v is None:
        return None
    try:
        return int(str(v))
    except ValueError:
        return None


def unconfirmed_table(web: WebState, request: Request, lang: str) -> Table:
    """Pupils still at school whose consent was last confirmed more than 12 months ago."""
    stale = stale_pupils(web.store, UNCONFIRMED_PERIOD, today=date.today())
    pupils = Registry(web.store).pupils([s.pupil_id for s in stale])
    table = Table(["desk.pupil_id", "desk.name", "desk.group", "desk.confirmed", "desk.days"])
    for s in stale:
        p = pupils.get(s.pupil_id)
        table.rows.append(
            [
                Cell(s.pupil_id, href=f"/privacy/consents/{s.pupil_id}"),
                _full_name(p) if p else "",
                s.group,
                dutch_time(s.confirmed_at, web.tz),
                str(s.days),
            ]
        )
    return table


def takedowns_table(web: WebState, request: Request, lang: str) -> Table:
    return takedown_table(web, lang, can_mark=False)


def deletions_table(web: WebState, request: Request, lang: str) -> Table:
    table = Table(["desk.at", "desk.kind", "desk.ref", "desk.sha256", "desk.channel", "desk.reason"])
    for r in desk.all_deletions(web.store):
        table.rows.append(
            [
                dutch_time(str(r["at"]), web.tz),
                i18n.deleted_kind(str(r["kind"]), lang),
                str(r["ref"]),
                str(r["sha256"] or ""),
                i18n.channel_label(str(r["channel"]), lang) if r["channel"] else "",
                i18n.reason(str(r["reason"]), lang),
            ]
        )
    return table


def _period(request: Request) -> tuple[date | None, date | None]:
    return parse_day(request.query_params.get("from")), parse_day(request.query_params.get("to"))


_COUNTS = ("published", "withdrawn", "takedowns", "live_now")


def _report(web: WebState, request: Request) -> PrivacyReport:
    start, end = _period(request)
    return build_privacy_report(web.store, [c.name for c in web.settings.channels], start=start, end=end)


def report_counts(web: WebState, request: Request, lang: str) -> Table:
    """The report's counts, one row per channel (the page shows them so; the CSV row by row)."""
    table = Table(["desk.channel", *(f"report.{f}" for f in _COUNTS)])
    for ch, n in sorted(_report(web, request).channels.items()):
        table.rows.append([i18n.channel_label(ch, lang), *(str(getattr(n, f)) for f in _COUNTS)])
    return table


def report_table(web: WebState, request: Request, lang: str, *, with_counts: bool = True) -> Table:
    """The privacy report for a period as one list: per channel counts, then consent changes,
    withdrawals and deletions (ids only, no names)."""
    rep = _report(web, request)
    table = Table(
        ["desk.section", "desk.at", "desk.channel", "desk.pupil_id", "desk.what", "desk.detail", "desk.count"]
    )
    for ch, n in sorted(rep.channels.items()) if with_counts else ():
        for field_name in _COUNTS:
            table.rows.append(
                [
                    i18n.word("report.channels", lang),
                    "",
                    i18n.channel_label(ch, lang),
                    "",
                    i18n.word(f"report.{field_name}", lang),
                    "",
                    str(getattr(n, field_name)),
                ]
            )
    for c in rep.consent_changes:
        table.rows.append(
            [
                i18n.word("report.consent", lang),
                dutch_time(c["at"], web.tz),
                "",
                str(c["pupil_id"]),
                _key_label(str(c["key"]), lang),
                f"{yes_no(_num(c['old']), lang)} → {yes_no(_num(c['new']), lang)} ({c['source']})",
                "",
            ]
        )
    for w in rep.withdrawals:
        table.rows.append(
            [
                i18n.word("report.withdrawal", lang),
                dutch_time(w["at"], web.tz),
                i18n.channel_label(w["channel"], lang),
                str(w["pupil_id"]),
                str(w["file"]),
                i18n.reason(str(w["reason"]), lang),
                "",
            ]
        )
    for d in rep.deletions:
        table.rows.append(
            [
                i18n.word("report.deletion", lang),
                dutch_time(d["at"], web.tz),
                i18n.channel_label(d["channel"], lang) if d["channel"] else "",
                "",
                str(d["kind"]),
                i18n.reason(str(d["reason"]), lang),
                "",
            ]
        )
    return table


# -- the audit trail -------------------------------------------------------------------------
def _audit_filter(web: WebState, request: Request) -> AuditFilter:
    q = request.query_params
    who = str(q.get("who") or "")
    what = str(q.get("what") or "")
    lo, hi = utc_bounds(parse_day(q.get("from")), parse_day(q.get("to")), web.tz)
    return AuditFilter(
        account=int(who) if who.isdigit() and len(who) < 12 else None,
        event=what[:64] if what else None,
        lo=lo,
        hi=hi,
    )


def _detail_text(detail: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(detail.items()) if k != "account")


def _audit_rows(web: WebState, rows: list[Any], lang: str) -> Table:
    logins = {u.id: u.login for u in users.list_users(web.store)}
    table = Table(["desk.at", "desk.who", "desk.event", "desk.channel", "desk.photo", "desk.pupil_id", "desk.detail"])
    for r in rows:
        try:
            detail = json.loads(r["detail"] or "{}")
        except ValueError:
            detail = {}
        if not isinstance(detail, dict):
            detail = {}
        account = detail.get("account")
        who = logins.get(account, f"#{account}") if isinstance(account, int) else ""
        table.rows.append(
            [
                dutch_time(str(r["at"]), web.tz),
                who,
                i18n.event_label(str(r["event"]), lang),
                i18n.channel_label(str(r["channel"]), lang) if r["channel"] else "",
                str(r["photo_sha256"] or "")[:16],
                str(r["pupil_id"] or ""),
                _detail_text(detail),
            ]
        )
    return table


def audit_table(web: WebState, request: Request, lang: str) -> Table:
    rows, _total = desk.audit_page(web.store, _audit_filter(web, request), AUDIT_CSV_MAX)
    return _audit_rows(web, rows, lang)


def _page_number(request: Request) -> int:
    raw = str(request.query_params.get("page") or "1")
    return max(1, min(int(raw), 1_000_000)) if raw.isdigit() and len(raw) < 8 else 1


def _audit_context(web: WebState, request: Request, lang: str) -> dict[str, Any]:
    flt = _audit_filter(web, request)
    page = _page_number(request)
    rows, total = desk.audit_page(web.store, flt, AUDIT_PAGE, (page - 1) * AUDIT_PAGE)
    table = _audit_rows(web, rows, lang)
    pages = max(1, -(-total // AUDIT_PAGE))
    q = request.query_params
    keep = {k: str(q.get(k) or "") for k in ("who", "what", "from", "to")}
    return {
        "table": table.cells(),
        "columns": table.headers(lang),
        "keys": table.columns,
        "accounts": [(u.id, u.login) for u in users.list_users(web.store)],
        "events": [(e, i18n.event_label(e, lang)) for e in desk.audit_event_names(web.store)],
        "chosen": {**keep, "account": flt.account, "event": flt.event or ""},
        "page": page,
        "pages": pages,
        "total": total,
        "query": urlencode({k: v for k, v in keep.items() if v}),
    }


# -- views -----------------------------------------------------------------------------------
Builder = Callable[[WebState, Request, str], Table]

#: name -> (title key, intro key, roles, builder, CSV file name)
LISTS: dict[str, tuple[str, str, frozenset[Any], Builder, str]] = {
    "consents": ("desk.consents", "desk.consents_intro", NAMES, consents_table, "toestemmingen.csv"),
    "history": ("desk.history", "desk.history_intro", NAMES, history_table, "geschiedenis.csv"),
    "unconfirmed": ("desk.unconfirmed", "desk.unconfirmed_intro", NAMES, unconfirmed_table, "niet-bevestigd.csv"),
    "takedowns": ("desk.takedowns", "desk.takedowns_intro", PRIVACY_DESK, takedowns_table, "verwijderlijst.csv"),
    "deletions": ("desk.deletions", "desk.deletions_intro", PRIVACY_DESK, deletions_table, "verwijderlog.csv"),
    "report": ("desk.report", "desk.report_intro", PRIVACY_DESK, report_table, "privacyrapport.csv"),
    "audit": ("desk.audit", "desk.audit_intro", PRIVACY_DESK, audit_table, "audit.csv"),
}


async def index(request: Request) -> Response:
    session = session_of(request)
    require(session, PRIVACY_DESK)
    links = [(name, spec[0], spec[1]) for name, spec in LISTS.items() if name != "history" and session.role in spec[2]]
    return render(request, "privacy_index.html", {"links": links})


def list_page(name: str) -> Callable[[Request], Any]:
    title_key, intro_key, roles, build, _filename = LISTS[name]

    async def page(request: Request) -> Response:
        require(session_of(request), roles)
        web = state(request)
        lang = language(request)
        ctx: dict[str, Any] = {
            "title_key": title_key,
            "intro_key": intro_key,
            "list": name,
            "csv_href": request.url.path + ".csv" + (f"?{request.url.query}" if request.url.query else ""),
            "back_href": "/privacy",
            "back_key": "desk.privacy",
        }
        if name == "audit":
            ctx.update(await run_in_threadpool(_audit_context, web, request, lang))
            return render(request, "privacy_audit.html", ctx)
        if name == "report":
            table = await run_in_threadpool(lambda: report_table(web, request, lang, with_counts=False))
            counts = await run_in_threadpool(report_counts, web, request, lang)
            ctx.update({"counts": counts.cells(), "count_columns": counts.headers(lang)})
        else:
            table = await run_in_threadpool(build, web, request, lang)
        ctx.update({"table": table.cells(), "columns": table.headers(lang), "keys": table.columns})
        if name == "history":
            pupil = await run_in_threadpool(_pupil, web, request)
            prov = await run_in_threadpool(Registry(web.store).provenance, pupil.pupil_id)
            ctx.update(
                {
                    "pupil": pupil,
                    "full_name": _full_name(pupil),
                    "provenance": prov,
                    "key_label": lambda k: _key_label(k, lang),
                    "consent_keys": CONSENT_KEYS,
                }
            )
            return render(request, "privacy_history.html", ctx)
        if name == "report":
            start, end = _period(request)
            ctx["period"] = {"from": start.isoformat() if start else "", "to": end.isoformat() if end else ""}
        return render(request, "desk_list.html", ctx)

    return page


def list_csv(name: str) -> Callable[[Request], Any]:
    _title, _intro, roles, build, filename = LISTS[name]

    async def download(request: Request) -> Response:
        require(session_of(request), roles)
        web = state(request)
        lang = language(request)
        table = await run_in_threadpool(build, web, request, lang)
        return csv_response(table, web.settings, lang, filename)

    return download
