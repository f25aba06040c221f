"""Which status changes a need may make: pure rules, no I/O."""

from __future__ import annotations

from enum import StrEnum

from service.exceptions import InvalidTransition
from service.models import NeedStatus as S


class Action(StrEnum):
    START_MATCHING = "start_matching"
    ESCALATE = "escalate"
    ASSIGN = "assign"
    REMATCH = "rematch"
    DEFER = "defer"
    REOPEN = "reopen"
    CANCEL = "cancel"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    DONE = "done"
    CLOSE = "close"


MATCHABLE = frozenset({S.QUEUED, S.MATCHING, S.OFFERED, S.ESCALATED})
"""Statuses in which the matcher may still make offers."""

ACCEPTS_OFFERS = frozenset({S.OFFERED, S.ESCALATED})
"""Statuses in which a volunteer may still accept a pending offer."""

IN_PROGRESS = frozenset({S.ASSIGNED, S.EN_ROUTE, S.ON_SITE})
"""Statuses with a committed completion deadline running."""

RESOLVED = frozenset({S.DONE, S.CLOSED, S.CANCELLED})
"""Statuses in which a need asks nothing more of anyone (an incident counts them as resolved)."""

_RULES: dict[Action, tuple[frozenset[S], S]] = {
    Action.START_MATCHING: (frozenset({S.QUEUED}), S.MATCHING),
    Action.ESCALATE: (frozenset({S.QUEUED, S.MATCHING, S.OFFERED, S.ASSIGNED, S.EN_ROUTE}), S.ESCALATED),
    Action.ASSIGN: (MATCHABLE, S.ASSIGNED),
    Action.REMATCH: (frozenset({S.QUEUED, S.MATCHING, S.OFFERED, S.ESCALATED, S.ASSIGNED}), S.MATCHING),
    Action.DEFER: (frozenset({S.QUEUED, S.MATCHING, S.OFFERED, S.ESCALATED, S.ASSIGNED}), S.DEFERRED),
    Action.REOPEN: (frozenset({S.DEFERRED, S.ESCALATED, S.CANCELLED, S.DONE, S.CLOSED}), S.QUEUED),
    Action.CANCEL: (
        frozenset({S.QUEUED, S.MATCHING, S.OFFERED, S.ASSIGNED, S.EN_ROUTE, S.ON_SITE, S.ESCALATED, S.DEFERRED}),
        S.CANCELLED,
    ),
    Action.EN_ROUTE: (frozenset({S.ASSIGNED, S.ESCALATED}), S.EN_ROUTE),
    Action.ON_SITE: (frozenset({S.ASSIGNED, S.EN_ROUTE, S.ESCALATED}), S.ON_SITE),
    Action.DONE: (frozenset({S.ASSIGNED, S.EN_ROUTE, S.ON_SITE, S.ESCALATED}), S.DONE),
    Action.CLOSE: (frozenset({S.DONE}), S.CLOSED),
}


ESCALATES_FROM = _RULES[Action.ESCALATE][0]
"""Statuses from which a need is escalated to dispatchers."""


def allowed_from(action: Action) -> frozenset[S]:
    """The statuses from which an action may be taken."""
    return _RULES[action][0]


def target(action: Action) -> S:
    """The status an action leads to."""
    return _RULES[action][1]


REFUSED_AS: dict[Action, str] = {
    Action.START_MATCHING: "searched for",
    Action.ESCALATE: "escalated",
    Action.ASSIGN: "assigned",
    Action.REMATCH: "searched for again",
    Action.DEFER: "deferred",
    Action.REOPEN: "reopened",
    Action.CANCEL: "cancelled",
    Action.EN_ROUTE: "set on its way",
    Action.ON_SITE: "marked arrived",
    Action.DONE: "marked done",
    Action.CLOSE: "closed",
}
"""What each action does to a need, as its refusal says it: 'a need that is closed cannot be <this>'."""


def refusal(action: Action, current: S | str) -> InvalidTransition:
    """The 409 for an action the lifecycle does not allow from the current status."""
    status = S(current).value
    return InvalidTransition(
        f"a need that is {status} cannot be {REFUSED_AS[action]}", current=status, action=action.value
    )


def check(action: Action, current: S) -> S:
    """The status after the action, or InvalidTransition naming the current status."""
    sources, to = _RULES[action]
    if current not in sources:
        raise refusal(action, current)
    return to
