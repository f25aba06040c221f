"""The need lifecycle: which action may be taken from which status, and where it leads."""

from __future__ import annotations

import pytest

from service import lifecycle
from service.exceptions import Conflict, InvalidTransition
from service.lifecycle import Action
from service.models import NeedStatus as S

ALL = frozenset(S)

# The specification, written out independently of service.lifecycle: action -> (from, to).
SPEC: dict[Action, tuple[frozenset[S], S]] = {
    Action.START_MATCHING: (frozenset({S.QUEUED}), S.MATCHING),
    Action.ESCALATE: (frozenset({S.QUEUED, S.MATCHING, S.OFFERED, S.ASSIGNED, S.EN_ROUTE}), S.ESCALATED),
    Action.ASSIGN: (frozenset({S.QUEUED, S.MATCHING, S.OFFERED, S.ESCALATED}), S.ASSIGNED),
    Action.REMATCH: (frozenset({S.QUEUED, S.MATCHING, S.OFFERED, S.ESCALATED, S.ASSIGNED}), S.MATCHING),
    Action.DEFER: (frozenset({S.QUEUED, S.MATCHING, S.OFFERED, S.ESCALATED, S.ASSIGNED}), S.DEFERRED),
    Action.REOPEN: (frozenset({S.DEFERRED, S.ESCALATED, S.CANCELLED, S.DONE, S.CLOSED}), S.QUEUED),
    Action.CANCEL: (ALL - {S.DONE, S.CLOSED, S.CANCELLED}, S.CANCELLED),
    Action.EN_ROUTE: (frozenset({S.ASSIGNED, S.ESCALATED}), S.EN_ROUTE),
    Action.ON_SITE: (frozenset({S.ASSIGNED, S.EN_ROUTE, S.ESCALATED}), S.ON_SITE),
    Action.DONE: (frozenset({S.ASSIGNED, S.EN_ROUTE, S.ON_SITE, S.ESCALATED}), S.DONE),
    Action.CLOSE: (frozenset({S.DONE}), S.CLOSED),
}

ALLOWED = [(a, s) for a in Action for s in S if s in SPEC[a][0]]
REFUSED = [(a, s) for a in Action for s in S if s not in SPEC[a][0]]


def test_the_spec_covers_every_action() -> None:
    assert set(SPEC) == set(Action)


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_allowed_statuses_and_target_match_the_spec(action: Action) -> None:
    assert lifecycle.allowed_from(action) == SPEC[action][0]
    assert lifecycle.target(action) is SPEC[action][1]


@pytest.mark.parametrize("action, status", ALLOWED, ids=lambda v: v.value)
def test_allowed_action_leads_to_its_target_status(action: Action, status: S) -> None:
    assert lifecycle.check(action, status.value) is SPEC[action][1]


@pytest.mark.parametrize("action, status", REFUSED, ids=lambda v: v.value)
def test_disallowed_action_raises_invalid_transition_naming_the_current_status(action: Action, status: S) -> None:
    with pytest.raises(InvalidTransition) as caught:
        lifecycle.check(action, status.value)

    error = caught.value
    assert isinstance(error, Conflict)
    assert error.status == 409
    assert error.current == status.value
    assert error.message.startswith(f"a need that is {status.value} cannot be ")
    assert error.errors == {"status": [f"current status is {status.value}"]}


def test_closed_and_cancelled_needs_can_only_be_reopened() -> None:
    for status in (S.CLOSED, S.CANCELLED):
        possible = {a for a in Action if status in SPEC[a][0]}
        assert possible == {Action.REOPEN}
        for action in Action:
            if action is not Action.REOPEN:
                with pytest.raises(InvalidTransition):
                    lifecycle.check(action, status.value)


def test_matchable_statuses_are_those_the_matcher_may_offer_in() -> None:
    assert lifecycle.MATCHABLE == {S.QUEUED, S.MATCHING, S.OFFERED, S.ESCALATED}
    assert lifecycle.IN_PROGRESS == {S.ASSIGNED, S.EN_ROUTE, S.ON_SITE}


def test_unknown_status_is_rejected() -> None:
    with pytest.raises(ValueError):
        lifecycle.check(Action.CLOSE, "lost")


def test_a_refused_action_names_the_current_status() -> None:
    error = lifecycle.refusal(lifecycle.Action.CANCEL, S.CLOSED)
    assert error.status == 409
    assert error.message == "a need that is closed cannot be cancelled"
    assert error.errors == {"status": ["current status is closed"]}
    assert error.action == "cancel"


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (Action.START_MATCHING, "a need that is done cannot be searched for"),
        (Action.ESCALATE, "a need that is done cannot be escalated"),
        (Action.ASSIGN, "a need that is done cannot be assigned"),
        (Action.REMATCH, "a need that is done cannot be searched for again"),
        (Action.DEFER, "a need that is done cannot be deferred"),
        (Action.REOPEN, "a need that is done cannot be reopened"),
        (Action.CANCEL, "a need that is done cannot be cancelled"),
        (Action.EN_ROUTE, "a need that is done cannot be set on its way"),
        (Action.ON_SITE, "a need that is done cannot be marked arrived"),
        (Action.DONE, "a need that is done cannot be marked done"),
        (Action.CLOSE, "a need that is done cannot be closed"),
    ],
)
def test_every_refusal_reads_as_a_sentence(action: Action, message: str) -> None:
    assert lifecycle.refusal(action, S.DONE).message == message
