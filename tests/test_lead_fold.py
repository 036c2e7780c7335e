"""The leads fold reads each kind of lead event into its own narrow table: a field a kind
does not parse is NULL in its rows, so a setter reading a field its topic's kind does not
parse would silently set NULL. These checks keep the kinds and the setters in step."""

from __future__ import annotations

import re

from leadledger.settings import Settings
from leadledger.wiring import load_funnels
from projections.leads import KINDS, OPENING, SETTERS, LeadProjection, _condition_topics


def _kind_of(topic: str) -> tuple[str, ...]:
    owners = [fields for topics, fields in KINDS if topic in topics]
    assert len(owners) == 1, f"{topic} is folded by {len(owners)} kinds"
    return owners[0]


def test_every_lead_topic_is_folded_by_exactly_one_kind() -> None:
    projection = LeadProjection(load_funnels(Settings().funnels_file))
    assert {t for topics, _ in KINDS for t in topics} == set(projection.topics)
    for topic in projection.topics:
        _kind_of(topic)


def test_every_field_a_setter_reads_is_parsed_for_the_topics_it_applies_to() -> None:
    for column, setters in SETTERS.items():
        for condition, value in setters:
            topics = _condition_topics(condition)
            assert topics, f"{column}: no topic in {condition!r}"
            read = set(re.findall(r"\be_(\w+)", f"{condition} {value}"))
            cards = set(re.findall(r"\bc_(\w+?)(?:_set)?\b", f"{condition} {value}"))
            for topic in topics:
                fields = _kind_of(topic)
                missing = read - set(fields)
                assert not missing, f"{column} on {topic} reads {missing}, not parsed"
                assert not cards or "changes" in fields, f"{column} on {topic}: no changes"


def test_every_opening_event_is_parsed_with_its_stage() -> None:
    for topic in OPENING:
        fields = _kind_of(topic)
        assert "at" in fields
        assert ({"funnel", "stage"} <= set(fields)) or ({"to_stage"} <= set(fields))


def test_the_fields_the_visits_and_counters_read_are_parsed_for_their_topics() -> None:
    for topic, field in (
        ("LeadAssessed", "hours"),
        ("LeadResumed", "paused_seconds"),
        ("LeadQualified", "quality"),
        ("LeadTransferred", "to_funnel"),
        ("LeadStageChanged", "funnel"),
    ):
        assert field in _kind_of(topic), f"{topic} is read for {field}"
