"""Who may see and change what: pure rules over a principal and a record."""

from __future__ import annotations

from service.exceptions import Forbidden
from service.models import Household, Need, Principal, Role


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        raise Forbidden(f"the {principal.role.value} role may not do this")


def require_self_or_dispatcher(principal: Principal, volunteer_id: str) -> None:
    """Dispatchers act on any volunteer; a volunteer token only on its own volunteer."""
    if principal.role is Role.DISPATCHER:
        return
    if principal.role is Role.VOLUNTEER and principal.volunteer_id == volunteer_id:
        return
    raise Forbidden("this token may only act on its own volunteer record")


def can_read_need(principal: Principal, need: Need, *, assigned: set[str]) -> bool:
    """Dispatchers and ops read all needs; intake its own; volunteers those offered or assigned to them."""
    if principal.role in (Role.DISPATCHER, Role.OPS):
        return True
    if principal.role is Role.INTAKE:
        return need.created_by == principal.token_id
    return principal.volunteer_id in assigned


def sees_private_details(principal: Principal, *, accepted: set[str]) -> bool:
    """Requester phone and exact address: dispatchers, and volunteers who accepted the need."""
    if principal.role is Role.DISPATCHER:
        return True
    return principal.role is Role.VOLUNTEER and principal.volunteer_id in accepted


def sees_team(principal: Principal, *, accepted: set[str]) -> bool:
    """The team's first names and phones: dispatchers, and the volunteers who accepted the need (its team)."""
    return sees_private_details(principal, accepted=accepted)


def in_charge_of_household(principal: Principal, household: Household) -> bool:
    """Who looks after a household of the care register: reads all of it, changes it, records its visits.

    Dispatchers, for every household. (A grid's captain, for the households of their grids, belongs here.)"""
    return principal.role is Role.DISPATCHER


def can_read_household(principal: Principal, household: Household) -> bool:
    """Those in charge of the household, and ops (without its contact details: sees_household_private)."""
    return principal.role is Role.OPS or in_charge_of_household(principal, household)


def sees_household_private(principal: Principal, household: Household) -> bool:
    """The contact's phone and the exact address and place: those in charge of the household. The volunteer
    who accepted a visit sees them on the visit's need, as a need's requester details."""
    return in_charge_of_household(principal, household)


def can_record_visit(principal: Principal, household: Household | None, *, visitors: set[str]) -> bool:
    """A visit's outcome: the volunteers who accepted its need, and those in charge of the household."""
    if principal.role is Role.VOLUNTEER and principal.volunteer_id in visitors:
        return True
    return household is not None and in_charge_of_household(principal, household)
