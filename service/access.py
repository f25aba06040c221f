"""Who may see and change what: pure rules over a principal and a record."""

from __future__ import annotations

from service.exceptions import Forbidden
from service.models import Household, Need, Principal, Role


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        raise Forbidden(f"the {principal.role.value} role may not do this")


def acts_as_volunteer(principal: Principal, volunteer_id: str) -> bool:
    """A volunteer token, or a captain's (a captain is a volunteer too), bound to this volunteer."""
    return principal.role in (Role.VOLUNTEER, Role.CAPTAIN) and principal.volunteer_id == volunteer_id


def require_self_or_dispatcher(principal: Principal, volunteer_id: str) -> None:
    """Dispatchers act on any volunteer; a volunteer or captain token only on its own volunteer."""
    if principal.role is Role.DISPATCHER or acts_as_volunteer(principal, volunteer_id):
        return
    raise Forbidden("this token may only act on its own volunteer record")


VOUCHED_FIELDS = frozenset({"skills", "grid", "team"})
"""A volunteer's profile fields a dispatcher answers for: what they may be sent to do, and where."""


def require_profile_change(principal: Principal, changed: set[str]) -> None:
    """Dispatchers change any profile field; a volunteer (a captain too) changes their own but for the vouched
    ones (a volunteer cannot give themselves the medical skill or move to another grid); 403 naming them."""
    if principal.role is Role.DISPATCHER:
        return
    vouched = sorted(VOUCHED_FIELDS & changed)
    if vouched:
        raise Forbidden(f"only a dispatcher may change a volunteer's {', '.join(vouched)}")


def covers_grid(principal: Principal, grid: str | None) -> bool:
    """Whether the principal handles the records of this grid as a dispatcher would: dispatchers every grid,
    a captain the grids of its token (never records without a grid), nobody else any."""
    if principal.role is Role.DISPATCHER:
        return True
    return principal.role is Role.CAPTAIN and grid is not None and grid in principal.grids


def require_grid(principal: Principal, grid: str | None) -> None:
    """Dispatchers, or a captain of the grid; 403 otherwise."""
    if not covers_grid(principal, grid):
        raise Forbidden(f"only a dispatcher or a captain of grid {grid or '(none)'} may do this")


def can_read_need(principal: Principal, need: Need, *, assigned: set[str]) -> bool:
    """Dispatchers and ops read all needs; intake its own; captains those of their grids and those offered to
    them; volunteers those offered or assigned to them."""
    if principal.role in (Role.DISPATCHER, Role.OPS):
        return True
    if principal.role is Role.INTAKE:
        return need.created_by == principal.token_id
    return covers_grid(principal, need.grid) or principal.volunteer_id in assigned


def sees_private_details(principal: Principal, *, accepted: set[str], grid: str | None = None) -> bool:
    """Requester phone and exact address: dispatchers, captains of the need's grid, and volunteers who
    accepted the need."""
    if covers_grid(principal, grid):
        return True
    return principal.role in (Role.VOLUNTEER, Role.CAPTAIN) and principal.volunteer_id in accepted


def sees_team(principal: Principal, *, accepted: set[str], grid: str | None = None) -> bool:
    """The team's first names and phones: dispatchers, captains of the need's grid, and the volunteers who
    accepted the need (its team)."""
    return sees_private_details(principal, accepted=accepted, grid=grid)


def in_charge_of_household(principal: Principal, household: Household) -> bool:
    """Who looks after a household of the care register: reads all of it, changes it, records its visits.

    Dispatchers, for every household; a grid's captain, for the households of their grids."""
    return principal.role is Role.DISPATCHER or (
        principal.role is Role.CAPTAIN and covers_grid(principal, household.grid)
    )


def require_in_charge_of_household(principal: Principal, household: Household) -> None:
    """403 unless the principal is in charge of the household (in_charge_of_household), saying why."""
    if in_charge_of_household(principal, household):
        return
    if principal.role is Role.CAPTAIN:
        raise Forbidden(
            f"a captain handles the households of their grids ({', '.join(principal.grids)}) only, "
            f"not of grid {household.grid or '(none)'}"
        )
    raise Forbidden("only a dispatcher or a captain of the household's grid may do this")


def can_read_household(principal: Principal, household: Household) -> bool:
    """Those in charge of the household, and ops (without its contact details: sees_household_private)."""
    return principal.role is Role.OPS or in_charge_of_household(principal, household)


def sees_household_private(principal: Principal, household: Household) -> bool:
    """The contact's phone and the exact address and place: those in charge of the household. The volunteer
    who accepted a visit sees them on the visit's need, as a need's requester details."""
    return in_charge_of_household(principal, household)


def can_record_visit(principal: Principal, household: Household | None, *, visitors: set[str]) -> bool:
    """A visit's outcome: the volunteers who accepted its need (a captain among them), and those in charge of the
    household."""
    if principal.role in (Role.VOLUNTEER, Role.CAPTAIN) and principal.volunteer_id in visitors:
        return True
    return household is not None and in_charge_of_household(principal, household)
