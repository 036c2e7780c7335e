"""The workspace's finishing touches over the real app: report pages and the queue page
through their rows (page links that keep the filters), the deal card and the request
"as of" an instant (read only), the kanban's per-card move form (the path without
JavaScript), and every configured name and refusal in Russian."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FakeClock, new_lead_body
from tests.test_workspace_deals import _caught_up, _field, desk, sign_in
from tests.test_workspace_pages import TOP, ws
from tests.test_workspace_pages import sign_in as sign_in_ws
from workspace import i18n
from workspace.pages import pager

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "leadledger" / "config"
RU_CATALOGUE = ROOT / "workspace" / "locale" / "ru" / "LC_MESSAGES" / "messages.po"
CODE_FOLDERS = ("aggregates", "commands", "process_managers", "read_api", "workspace", "leadledger")
REFUSALS = frozenset({"RuleViolation", "NotPermitted"})
FIXTURES = (desk, ws)  # the neighbours' fixtures, reused


def configured_names() -> set[str]:
    """Every ``name`` in leadledger/config/*.toml (funnels, stages, departments and
    their stages, organisations, project statuses...)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "name" and isinstance(value, str):
                    names.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(CONFIG.glob("*.toml")):
        walk(tomllib.loads(path.read_text(encoding="utf-8")))
    return names


def error_codes() -> set[str]:
    """The code of every refusal the code raises (``RuleViolation("code", ...)`` and
    ``NotPermitted("code", ...)`` in the aggregates, deciders, guards and pages)."""
    codes: set[str] = set()
    for folder in CODE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                first = node.args[0]
                if name in REFUSALS and isinstance(first, ast.Constant):
                    codes.add(str(first.value))
    return codes


def russian() -> dict[str, str]:
    with RU_CATALOGUE.open("rb") as po_file:
        catalogue = read_po(po_file, locale="ru")
    return {
        m.id: m.string for m in catalogue if isinstance(m.id, str) and isinstance(m.string, str)
    }


# --- names and refusals in Russian ---------------------------------------------------------


def test_every_configured_name_and_every_refusal_code_has_a_russian_translation() -> None:
    catalogue = russian()
    names = configured_names()
    codes = error_codes()
    assert len(names) > 30
    assert {"lead_paused", "same_stage", "not_your_deal", "role_not_allowed"} <= codes
    missing_names = {n for n in names if not catalogue.get(i18n.NAME_KEY + n)}
    missing_codes = {c for c in codes if not catalogue.get(i18n.ERROR_KEY + c)}
    assert not missing_names, f"add ru entries 'name:<name>' for {sorted(missing_names)}"
    assert not missing_codes, f"add ru entries 'error:<code>' for {sorted(missing_codes)}"


def test_a_name_or_code_without_translation_falls_back_to_itself() -> None:
    gettext = i18n.translations("ru").gettext
    assert i18n.named("Court leads", gettext) == "Судебные лиды"
    assert i18n.named("A funnel added yesterday", gettext) == "A funnel added yesterday"
    assert i18n.named(None, gettext) is None
    assert i18n.refusal("lead_paused", "the lead is paused", gettext).startswith("Лид на паузе")
    assert i18n.refusal("a_new_rule", "its own words", gettext) == "its own words"
    assert i18n.refusal(None, "no code", gettext) == "no code"
    english = i18n.translations("en").gettext
    assert i18n.named("Court leads", english) == "Court leads"
    assert i18n.refusal("lead_paused", "the lead is paused", english) == "the lead is paused"


def test_the_russian_workspace_shows_configured_names_and_refusals_in_russian(desk) -> None:
    api, _, deals = desk
    sign_in(api, "mia.manager")
    api.cookies.set("ll_lang", "ru")
    board = api.get("/workspace/deals?funnel=transport").text
    assert "Перевозки" in board  # the funnel
    assert "Просчёт готов" in board  # a stage's column
    assert ">Estimate ready<" not in board
    card = api.get(f"/workspace/deals/{deals['mia.manager']}").text
    html = card[card.index('id="form-stage"') :]
    version = _field(html, "version")
    refused = api.post(
        f"/workspace/deals/{deals['mia.manager']}/close",
        data={
            "csrf_token": _field(html, "csrf_token"),
            "version": version,
            "key": "close-too-early",
            "outcome": "won",
        },
        follow_redirects=False,
    )
    assert refused.status_code == 409
    assert "Сделка выигрывается, когда по ней выставлен счёт" in refused.text


# --- pagination ---------------------------------------------------------------------------


@given(
    total=st.integers(min_value=0, max_value=5000),
    size=st.integers(min_value=1, max_value=100),
    page=st.integers(min_value=0, max_value=200),
)
def test_the_pager_covers_every_row_once_and_keeps_the_filters(
    total: int, size: int, page: int
) -> None:
    offset = page * size
    shown = pager("/x", {"funnel": "court", "empty": "", "offset": "7"}, offset, size, total)
    assert shown["count"] == max(1, -(-total // size))
    numbers = [n for n, href in shown["pages"] if href is not None]
    assert numbers == sorted(set(numbers))
    assert 1 in numbers
    assert shown["count"] in numbers
    for _, href in shown["pages"]:
        if href is not None:
            assert "funnel=court" in href
            assert "empty=" not in href
            assert href.count("offset=") == 1
    if offset < total:
        assert shown["first"] == offset + 1
        assert shown["last"] == min(offset + size, total)
        assert (shown["next"] is None) == (offset + size >= total)
    assert (shown["previous"] is None) == (page == 0)


def test_a_report_page_goes_through_every_row_with_its_filters_kept(ws, clock: FakeClock) -> None:
    api, _, _ = ws
    for n in range(60):
        lead = new_lead_body(manager="mia.manager", title=f"Lead {n:02d}", amount="100")
        assert api.post("/leads", json=lead, headers=TOP).status_code == 201
    clock.advance(hours=1)
    _caught_up(api)
    assert sign_in_ws(api, "tess.top") == 303
    first = api.get("/workspace/reports/status-time?kind=lead&manager=mia.manager")
    assert first.status_code == 200
    assert 'id="pager"' in first.text
    match = re.search(r'data-total="(\d+)"', first.text)
    assert match
    total = int(match.group(1))
    assert total >= 61
    following = re.search(r'<a href="([^"]+)" rel="next"', first.text)
    assert following
    link = following.group(1).replace("&amp;", "&")
    assert "manager=mia.manager" in link
    assert "offset=50" in link
    second = api.get(link)
    assert second.status_code == 200
    assert f"51\u2013{min(100, total)}" in second.text
    assert 'rel="prev"' in second.text
    rows = second.text.count('<tr><td class="">') + second.text.count("<tr class=")
    assert rows >= total - 50
    excel = re.search(r'id="download-excel" href="([^"]+)"', second.text)
    assert excel
    assert "offset=50" in excel.group(1)  # the download has the page's rows


def test_the_queue_pages_with_its_filters_kept(desk) -> None:
    api, _, _ = desk
    sign_in(api, "lev.logistics")
    assert api.get("/workspace/queue?status=open&offset=0").status_code == 200
    beyond = api.get("/workspace/queue?offset=5000")
    assert beyond.status_code == 200
    assert api.get("/workspace/queue?offset=-1").status_code == 400


# --- the deal card and the request "as of" ------------------------------------------------


def test_the_deal_card_as_of_an_instant_shows_the_deal_then_without_forms(
    desk, clock: FakeClock
) -> None:
    api, _, deals = desk
    deal_id = deals["mia.manager"]
    created = clock()
    clock.advance(hours=2)
    sign_in(api, "mia.manager")
    page = f"/workspace/deals/{deal_id}"
    html = api.get(page).text
    form = html[html.index('id="form-stage"') :]
    moved = api.post(
        f"/workspace/deals/{deal_id}/stage",
        data={
            "csrf_token": _field(form, "csrf_token"),
            "version": _field(form, "version"),
            "key": "move-once",
            "stage": "estimate_ready",
        },
        follow_redirects=False,
    )
    assert moved.status_code == 303, moved.text
    now = api.get(page).text
    assert 'id="deal-stage">Estimate ready<' in now
    assert 'id="form-stage"' in now
    then = api.get(page, params={"as_of": (created.replace(minute=30)).strftime("%Y-%m-%dT%H:%M")})
    assert then.status_code == 200
    assert 'id="deal-stage">New<' in then.text
    assert 'id="as-of-note"' in then.text
    assert 'id="form-stage"' not in then.text
    assert '<form method="post" action="/workspace/deals/' not in then.text
    before = api.get(page, params={"as_of": "2020-01-01T00:00"})
    assert before.status_code == 200
    assert "did not exist yet" in before.text
    future = api.get(page, params={"as_of": "2999-01-01T00:00"})  # the card as it is
    assert 'id="form-stage"' in future.text
    assert api.get(page, params={"as_of": "not a date"}).status_code == 200


def test_the_request_page_as_of_an_instant_is_read_only(desk, clock: FakeClock) -> None:
    api, _, deals = desk
    sign_in(api, "mia.manager")
    asked_at = clock.advance(minutes=5)
    card = api.get(f"/workspace/deals/{deals['mia.manager']}").text
    form = card[card.index('id="form-requests"') :]
    asked = api.post(
        f"/workspace/deals/{deals['mia.manager']}/requests",
        data={
            "csrf_token": _field(form, "csrf_token"),
            "key": "ask-logistics",
            "department": "logistics",
            "notes": "a press to Kazan",
        },
        follow_redirects=False,
    )
    assert asked.status_code == 303, asked.text
    _caught_up(api)
    clock.advance(hours=1)
    sign_in(api, "lev.logistics")
    queue = api.get("/workspace/queue").text
    found = re.search(r'href="/workspace/handoffs/([0-9a-f-]{36})"', queue)
    assert found
    request_page = f"/workspace/handoffs/{found.group(1)}"
    assert 'id="form-take"' in api.get(request_page).text
    then = api.get(request_page, params={"as_of": asked_at.strftime("%Y-%m-%dT%H:%M")})
    assert then.status_code == 200
    assert 'id="form-take"' not in then.text
    assert 'id="as-of-note"' in then.text
    before = api.get(request_page, params={"as_of": "2020-01-01T00:00"})
    assert "did not exist yet" in before.text


# --- the kanban's move form without JavaScript --------------------------------------------


def _card_form(board: str, deal_id: str) -> str:
    start = board.index(f'data-deal="{deal_id}"')
    return board[start : board.index("</form>", start)]


def test_a_kanban_card_form_moves_the_deal_and_comes_back_to_the_board(desk) -> None:
    api, _, deals = desk
    deal_id = deals["mia.manager"]
    sign_in(api, "mia.manager")
    board = api.get("/workspace/deals?funnel=transport").text
    assert 'src="/workspace/static/kanban.js"' in board
    form = _card_form(board, deal_id)
    assert 'draggable="true"' in form
    fields = {n: _field(form, n) for n in ("csrf_token", "version", "key", "next")}
    moved = api.post(
        f"/workspace/deals/{deal_id}/stage",
        data={**fields, "stage": "estimate"},
        follow_redirects=False,
    )
    assert moved.status_code == 303, moved.text
    assert moved.headers["location"].startswith("/workspace/deals?funnel=transport")
    _caught_up(api)
    board = api.get("/workspace/deals?funnel=transport").text
    column = board[board.index('data-stage="estimate"') :]
    assert f'data-deal="{deal_id}"' in column[: column.index("</section>")]
    stale = api.post(  # the board's form from before the move: nothing applied
        f"/workspace/deals/{deal_id}/stage",
        data={**fields, "key": "another", "stage": "proposal"},
        follow_redirects=False,
    )
    assert stale.status_code == 409
    assert 'data-code="version_conflict"' in stale.text
    offsite = api.post(
        f"/workspace/deals/{deal_id}/stage",
        data={
            **fields,
            "version": _field(_card_form(board, deal_id), "version"),
            "key": "third",
            "stage": "new",
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert offsite.status_code == 303, offsite.text
    assert offsite.headers["location"] == "/workspace/"


def test_a_viewer_who_may_not_move_deals_gets_no_move_forms(desk) -> None:
    api, _, _ = desk
    sign_in(api, "tess.top")
    board = api.get("/workspace/deals?funnel=transport").text
    assert ('class="move"' in board) == ('src="/workspace/static/kanban.js"' in board)


def test_report_tables_show_configured_ids_by_their_names_in_russian(ws, clock: FakeClock) -> None:
    """A report's funnel and stage columns hold ids (``out_of_court``, ``new``); the page
    shows their configured names in the viewer's language."""
    api, _, _ = ws
    lead = new_lead_body(manager="mia.manager", amount="100")
    assert api.post("/leads", json=lead, headers=TOP).status_code == 201
    clock.advance(hours=1)
    _caught_up(api)
    assert sign_in_ws(api, "tess.top") == 303
    api.cookies.set("ll_lang", "ru")
    page = api.get("/workspace/reports/status-time?kind=lead&manager=mia.manager")
    assert page.status_code == 200
    table = page.text[page.text.index('<table class="list report"') :]
    assert ">Новый<" in table
    assert ">new<" not in table
    assert ">out_of_court<" not in table
    assert i18n.named_id("new", "title", lambda key: key) == "new"  # only id columns
