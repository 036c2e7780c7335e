"""Contacts (issue 18 §1): normalised phones and e-mails, no two contacts sharing one,
and a private person's lead being a repeat when an earlier lead named its contact."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from aggregates import contact
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.lead import LeadCreated, upcast_lead_created_v3
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, create
from tests.deal_helpers import ok
from tests.gwt import given, meta, new_lead
from tests.test_access import USERS, _directory, settle

# --- values and rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("8 (912) 345-67-89", "+79123456789"),
        ("+7 912 345 67 89", "+79123456789"),
        ("79123456789", "+79123456789"),
        ("9123456789", "+79123456789"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+1-202-555-0143", "+12025550143"),
    ],
)
def test_a_phone_is_kept_e164_like(raw: str, normalised: str) -> None:
    assert contact.normalise_phone("phones[0]", raw) == normalised


@pytest.mark.parametrize("raw", ["", "12345", "call me", "+0 123 456 7890", "44 20 7946 0958"])
def test_a_phone_that_is_no_number_is_refused_naming_it(raw: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        contact.normalise_phone("phones[1]", raw)
    assert refused.value.field == "phones[1]"


def test_an_email_is_trimmed_and_lower_cased_and_must_look_like_one() -> None:
    assert contact.normalise_email("emails[0]", "  Anna.Petrova@Mail.RU ") == "anna.petrova@mail.ru"
    for bad in ("anna", "anna@", "@mail.ru", "anna@mail", "an na@mail.ru"):
        with pytest.raises(InvalidValue):
            contact.normalise_email("emails[0]", bad)


def test_the_same_phone_twice_on_one_contact_is_refused() -> None:
    command = contact.RegisterContact(uuid4(), "Anna", phones=("89123456789", "+79123456789"))
    with pytest.raises(InvalidValue) as refused:
        contact.register(command, meta())
    assert refused.value.field == "phones[1]"


def test_a_phone_another_contact_holds_is_a_likely_duplicate_naming_it() -> None:
    mine, theirs = uuid4(), uuid4()
    key = ("phone", "+79123456789")
    with pytest.raises(RuleViolation) as refused:
        contact.claims(mine, frozenset(), frozenset({key}), {key: theirs}, meta())
    assert refused.value.rule == "likely_duplicate"
    assert refused.value.details["contact_id"] == str(theirs)
    assert refused.value.details["field"] == "phones"


def test_an_edit_claims_the_new_values_and_releases_the_dropped_ones() -> None:
    me = uuid4()
    old, new = ("email", "a@b.ru"), ("phone", "+79123456789")
    events = contact.claims(me, frozenset({old}), frozenset({new}), {new: None}, meta())
    assert [(type(e).__name__, e.kind, e.value) for e in events] == [
        ("ContactIdentifierClaimed", "phone", "+79123456789"),
        ("ContactIdentifierReleased", "email", "a@b.ru"),
    ]
    owner_history = [events[0]]
    assert contact.claim_owner(owner_history) == me
    assert contact.claim_owner([events[0], events[1]]) is None


def test_a_private_persons_lead_is_repeat_only_when_its_contact_was_named_before() -> None:
    person = uuid4()
    given().when(new_lead(contact_id=person)).then(LeadCreated, repeat=False, contact_id=person)
    known = given()
    when = known.when(new_lead(contact_id=person))
    event = contact_known_create(when.command, True)
    assert event.repeat is True
    # a lead with a company id is new or repeat by its company, whatever its contact
    assert (
        contact_known_create(new_lead(company_id="inn-1", contact_id=person), True).repeat is False
    )


def contact_known_create(command: Any, contact_known: bool) -> LeadCreated:
    from aggregates.lead import create as create_lead
    from tests.gwt import FUNNELS

    return create_lead(command, FUNNELS, meta(), company_known=False, contact_known=contact_known)


def test_a_lead_created_before_contacts_names_no_contact() -> None:
    assert upcast_lead_created_v3({"title": "x"}) == {"title": "x", "contact_id": None}


# --- over HTTP --------------------------------------------------------------------------


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        _directory(client)
        yield client


def add_contact(api: TestClient, headers: dict[str, str] = ACTOR, **fields: Any) -> str:
    body = {"name": "Anna Petrova", **fields}
    answer = ok(api.post("/contacts", json=body, headers=headers), 201)
    return str(answer["contact_id"])


def test_a_contact_is_registered_normalised_and_found_by_name_phone_or_email(
    api: TestClient, platform: Platform
) -> None:
    anna = add_contact(
        api,
        phones=["8 912 345-67-89"],
        emails=[" Anna@Mail.RU "],
        position="owner",
        companies=["inn-7701"],
    )
    add_contact(api, name="Boris Ivanov", phones=["+7 495 000 00 00"])
    settle(platform)
    card = ok(api.get(f"/contacts/{anna}"))
    assert (card["phones"], card["emails"], card["companies"]) == (
        ["+79123456789"],
        ["anna@mail.ru"],
        ["inn-7701"],
    )
    for q in ("petrov", "89123456789", "+7 912 345", "ANNA@mail"):
        found = ok(api.get("/contacts", params={"q": q}))
        assert [c["contact_id"] for c in found["items"]] == [anna], q
    assert ok(api.get("/contacts"))["total"] == 2
    page = ok(api.get("/contacts", params={"limit": 1, "offset": 1}))
    assert [c["name"] for c in page["items"]] == ["Boris Ivanov"]


def test_a_phone_or_email_another_contact_has_is_a_409_naming_that_contact(
    api: TestClient,
) -> None:
    anna = add_contact(api, phones=["89123456789"], emails=["anna@mail.ru"])
    same_phone = api.post("/contacts", json={"name": "A. Petrova", "phones": ["+79123456789"]})
    assert same_phone.status_code == 409
    assert same_phone.json()["rule"] == "likely_duplicate"
    assert same_phone.json()["contact_id"] == anna
    same_email = api.post("/contacts", json={"name": "Anya", "emails": ["ANNA@mail.ru"]})
    assert (same_email.status_code, same_email.json()["contact_id"]) == (409, anna)
    # an edit may not take another's phone either; dropping one frees it
    boris = add_contact(api, name="Boris", phones=["+74950000000"])
    taken = api.put(f"/contacts/{boris}", json={"phones": ["8 912 345 67 89"]})
    assert (taken.status_code, taken.json()["contact_id"]) == (409, anna)
    ok(api.put(f"/contacts/{anna}", json={"phones": []}))
    ok(api.put(f"/contacts/{boris}", json={"phones": ["8 912 345 67 89"]}))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": " "}, "name"),
        ({"name": "A", "phones": ["call me"]}, "phones[0]"),
        ({"name": "A", "emails": ["nobody"]}, "emails[0]"),
        ({"name": "A", "phones": "89123456789"}, "phones"),
        ({"name": "A", "colour": "red"}, "colour"),
        ({"name": "A", "companies": ["inn-1", "inn-1"]}, "companies[1]"),
    ],
)
def test_bad_contact_input_is_a_422_naming_the_field(
    api: TestClient, body: dict[str, Any], field: str
) -> None:
    answer = api.post("/contacts", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field


def test_an_edit_with_nothing_new_is_refused_and_an_unknown_contact_is_a_404(
    api: TestClient,
) -> None:
    anna = add_contact(api)
    assert api.put(f"/contacts/{anna}", json={"name": "Anna Petrova"}).json()["rule"] == (
        "no_change"
    )
    assert api.put(f"/contacts/{uuid4()}", json={"name": "X"}).status_code == 404
    assert api.get(f"/contacts/{uuid4()}").status_code == 404


def test_a_private_persons_second_lead_is_repeat_and_the_funnel_counts_it(
    api: TestClient, platform: Platform
) -> None:
    anna = add_contact(api, phones=["89123456789"])
    boris = add_contact(api, name="Boris", emails=["boris@mail.ru"])
    first = create(api, company_name="Anna Petrova", contact_id=anna, amount="100")
    second = create(api, company_name="Anna Petrova", contact_id=anna, amount="50")
    create(api, company_name="Boris", contact_id=boris, amount="10")
    create(api, company_name="Someone", amount="1")  # no contact, no company: new
    settle(platform)
    assert ok(api.get(f"/leads/{first['lead_id']}"))["repeat"] is False
    assert ok(api.get(f"/leads/{second['lead_id']}"))["repeat"] is True
    funnel = ok(api.get("/reports/funnel", params={"funnel": "out_of_court"}))
    assert funnel["new"]["count"] == 3
    assert (funnel["repeat"]["count"], funnel["repeat"]["amount"]) == (1, "50.00")
    period = ok(api.get("/reports/leads-period", params={"split": "funnel"}))
    [row] = period["rows"]
    assert (row["new"]["count"], row["repeat"]["count"]) == (3, 1)
    card = ok(api.get(f"/contacts/{anna}"))
    assert card["leads"] == 2
    repeats = {lead["lead_id"]: lead["repeat"] for lead in card["lead_list"]}
    assert repeats == {first["lead_id"]: False, second["lead_id"]: True}


def test_a_lead_naming_an_unknown_contact_is_a_422(api: TestClient) -> None:
    answer = api.post(
        "/leads",
        json={
            "funnel": "out_of_court",
            "title": "t",
            "company_name": "c",
            "source": "s",
            "manager": "boris",
            "contact_id": str(uuid4()),
        },
    )
    assert (answer.status_code, answer.json()["field"]) == (422, "contact_id")


def test_a_manager_sees_the_contacts_of_their_leads_and_the_ones_they_added(
    api: TestClient, platform: Platform
) -> None:
    mine = add_contact(api, name="Mine", phones=["+79000000001"])
    theirs = add_contact(api, name="Theirs", phones=["+79000000002"])
    own = add_contact(api, USERS["mia"], name="Added by mia", phones=["+79000000003"])
    create(api, company_name="Mine", contact_id=mine, manager="mia.manager")
    create(api, company_name="Theirs", contact_id=theirs, manager="oleg.other")
    settle(platform)
    seen = ok(api.get("/contacts", headers=USERS["mia"]))
    assert {c["contact_id"] for c in seen["items"]} == {mine, own}
    assert api.get(f"/contacts/{theirs}", headers=USERS["mia"]).status_code == 404
    head = ok(api.get("/contacts", headers=USERS["hana"]))
    assert {c["contact_id"] for c in head["items"]} == {mine, own}
    assert ok(api.get("/contacts", headers=USERS["top"]))["total"] == 3
    # an analyst reads; only those who create leads add contacts
    assert api.post("/contacts", json={"name": "X"}, headers=USERS["ana"]).status_code == 403


def test_a_contact_held_with_a_clients_direction_is_seen(
    api: TestClient, platform: Platform
) -> None:
    staff = add_contact(api, name="Client staff", companies=["inn-42"])
    ok(
        api.post(
            "/client-assignments",
            json={"company_id": "inn-42", "direction": "appraisal", "manager": "max.manager"},
        )
    )
    settle(platform)
    seen = ok(api.get("/contacts", headers=USERS["max"]))
    assert [c["contact_id"] for c in seen["items"]] == [staff]


def test_contact_events_keep_phones_and_emails_out_of_the_feed(
    api: TestClient, platform: Platform
) -> None:
    add_contact(api, phones=["+79123456789"], emails=["anna@mail.ru"])
    settle(platform)
    feed = api.get("/events", params={"limit": 100})
    assert feed.status_code == 200
    assert "79123456789" not in feed.text
    assert "anna@mail.ru" not in feed.text
    assert "ContactRegistered" in feed.text


def test_contact_uuid_is_stable_type() -> None:
    assert isinstance(contact.first_lead_stream_id(uuid4()), UUID)
