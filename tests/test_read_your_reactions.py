"""A workspace page shown after a form's command includes what the command set off in the
process managers of the same server (issue 17's first round broke this).

Dropping a deal into a stage that needs estimates makes the estimate hand-off process
manager open a request, and the deal records it (``DealHandoffNoted``): the deal's
version moves once more, right after the command. The board the browser is sent back to
renders each card's version for its next move; had it been read before that reaction
was folded, the next drop would post a version the deal has left, and be refused as
"changed while the form was open" instead of answered by the deal's rules. The
workspace therefore waits, after its own command, for the in-process process managers
to have handled it, then for the read models to include what they appended.

The process managers here take their time on every page (as they do under load, when
they let appends settle before reading): a page read too early shows the deal as the
command left it, not as it is.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from leadledger.wiring import Platform
from process_managers.state import Deadline, DeadlineChanges
from read_api.app import create_app
from tests.conftest import PlatformFactory
from tests.deal_helpers import new_deal
from tests.test_workspace_deals import ADMIN, USERS, _caught_up, _field, sign_in

SLOW_SECONDS = 0.3
"""How long each process manager takes over an event here (longer than folding a page)."""


FORM_FIELDS = ("csrf_token", "version", "key", "next")
"""A kanban card's move form (the stage is the column it is dropped on)."""


class _Slow:
    """A process manager that takes its time before each event, then does its work."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.topics = inner.topics

    def handle(self, recorded: Any, changes: DeadlineChanges) -> None:
        time.sleep(SLOW_SECONDS)
        self.inner.handle(recorded, changes)

    def fire(self, deadline: Deadline) -> Deadline | None:
        result: Deadline | None = self.inner.fire(deadline)
        return result


@pytest.fixture
def slow_desk(make_platform: PlatformFactory) -> Iterator[tuple[TestClient, Platform, str]]:
    """A manager with a transport deal (as test_workspace_deals' desk), served with
    process managers that take their time."""
    platform = make_platform(signin_delay_seconds=0)
    platform.processes.managers = [_Slow(m) for m in platform.processes.managers]
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        body = {"username": "mia.manager", "name": "Mia", "role": "manager", "department": "sales"}
        assert api.post("/users", json=body, headers=ADMIN).status_code == 201
        platform.credentials.set_password("mia.manager", USERS["mia.manager"][2], set_by="test")
        deal_id = new_deal(api, title="Haulage for Mia", manager="mia.manager", amount="5000")
        _caught_up(api)
        yield api, platform, deal_id


def _card(board: str, deal_id: str) -> dict[str, str]:
    start = board.index(f'data-deal="{deal_id}"')
    form = board[start : board.index("</form>", start)]
    stage = re.search(r'data-stage="([^"]+)"', form)
    assert stage
    return {
        "stage": stage.group(1),
        **{n: _field(form, n) for n in FORM_FIELDS},
    }


def test_the_board_after_a_drop_shows_the_version_the_process_managers_left(
    slow_desk: tuple[TestClient, Platform, str],
) -> None:
    api, platform, deal_id = slow_desk
    sign_in(api, "mia.manager")
    card = _card(api.get("/workspace/deals?funnel=transport").text, deal_id)
    assert card["stage"] == "new"
    moved = api.post(
        f"/workspace/deals/{deal_id}/stage",
        data={**{k: card[k] for k in FORM_FIELDS}, "stage": "estimate"},
        follow_redirects=False,
    )
    assert moved.status_code == 303, moved.text
    board = api.get(moved.headers["location"]).text  # at once, as the browser does
    card = _card(board, deal_id)
    history = platform.store.load(UUID(deal_id))
    kinds = [type(r.event).__name__ for r in history]
    assert "DealHandoffNoted" in kinds, kinds  # the process manager asked logistics
    assert card["stage"] == "estimate"
    assert int(card["version"]) == len(history), kinds
    # the next drop with the board's version is answered by the deal's rules (the
    # round's estimates are not ready), not refused as a stale form
    onwards = api.post(
        f"/workspace/deals/{deal_id}/stage",
        data={**{k: card[k] for k in FORM_FIELDS}, "stage": "proposal"},
        follow_redirects=False,
    )
    assert onwards.status_code in (409, 422), onwards.text
    assert 'data-code="version_conflict"' not in onwards.text
