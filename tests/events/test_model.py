"""What ``POST /events`` refuses: identifying session ids, implausible times, oversize batches; and what counts as one event."""

from __future__ import annotations

import math
import time
import uuid

import pytest
from pydantic import ValidationError

from shopray.events import Event, EventBatch


def event(**fields) -> Event:
    return Event.model_validate({"session_id": "s1", "type": "view", "product_id": "p1"} | fields)


@pytest.mark.parametrize("session_id", ["alice@example.com", "x-bob.smith@mail.co.uk-y", "+1 (555) 123-4567", "555.123.4567", "0044 20 7946 0958", "5551234", "1234567890123456789012"])
def test_identifying_session_ids_are_refused(session_id):
    kind = "email address" if "@" in session_id else "phone number"
    with pytest.raises(ValidationError, match=f"session_id must be pseudonymous: it looks like an? {kind}"):
        event(session_id=session_id)


@pytest.mark.parametrize("session_id", [str(uuid.UUID(int=0x550E8400E29B41D4A716446655440000)), "s-1234", "sess_42", "user@home", "123456"])
def test_pseudonymous_session_ids_pass(session_id):
    assert event(session_id=session_id).session_id == session_id


def test_times_must_be_plausible():
    now = time.time()
    assert event(ts=now + 200).ts == now + 200
    with pytest.raises(ValidationError, match="300 s in the future"):
        event(ts=now + 400)
    with pytest.raises(ValidationError, match="10 years old"):
        event(ts=now - 11 * 365 * 86400)
    with pytest.raises(ValidationError):
        event(ts=math.nan)


def test_fields_are_bounded_and_unknown_ones_refused():
    for bad in ({"type": "like"}, {"product_id": ""}, {"session_id": "x" * 129}, {"query": "q" * 513}, {"event_id": ""}, {"user_email": "a@b.c"}):
        with pytest.raises(ValidationError):
            event(**bad)


def test_queries_lose_non_printable_characters():
    assert event(query="\x00red\tshoes\x1b\n").query == "red shoes"
    assert event(query=" \x07 ").query is None


def test_batches_hold_one_to_ten_thousand_events():
    one = {"session_id": "s1", "type": "view", "product_id": "p1"}
    assert len(EventBatch.model_validate({"events": [one] * 10_000}).events) == 10_000
    for events in ([], [one] * 10_001):
        with pytest.raises(ValidationError):
            EventBatch.model_validate({"events": events})


def test_key_names_the_event_by_its_id_within_its_session_else_by_its_fields():
    assert event(event_id="e1", product_id="p1").key() == event(event_id="e1", product_id="p2").key()
    assert event(event_id="e1").key() != event(event_id="e1", session_id="s2").key()
    assert event().key() == event().key()  # no ts, no id: a repeated view of a product is one event
    now = time.time()
    assert event(ts=now).key() == event(ts=now).key() != event(ts=now - 1).key()
    assert event(type="click").key() != event().key() != event(query="shoes").key()
