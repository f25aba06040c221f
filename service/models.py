"""Domain vocabulary and records: statuses, skills, kinds, needs, volunteers, offers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

GRID_NAME = re.compile(r"^[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff,/]{1,50}$")
"""A grid's name (use fullmatch): 1 to 50 characters, no spaces or control characters, no commas (a captain token
keeps its grids comma-separated) or slashes (it is a segment of /grids/{grid}/...); e.g. grid-2 or 三网格."""
GRID_NAME_RULE = "Must be 1 to 50 characters without spaces, commas or slashes, like grid-2."


class Skill(StrEnum):
    GENERAL = "general"
    HEAVY_LIFTING = "heavy_lifting"
    DRIVING = "driving"
    TANKER_TRUCK = "tanker_truck"
    PLUMBING = "plumbing"
    ELECTRICAL = "electrical"
    HEATING = "heating"
    COOKING = "cooking"
    MEDICAL = "medical"
    MEDIATION = "mediation"
    TUTORING = "tutoring"


class Family(StrEnum):
    """What kind of trouble a need belongs to: needs of one family close together make an incident."""

    WATER = "water"
    HEAT = "heat"
    POWER = "power"
    FOOD = "food"
    HEALTH = "health"
    TRANSPORT = "transport"
    HOME = "home"
    CARE = "care"
    OTHER = "other"


class NeedKind(StrEnum):
    WATER_DELIVERY = "water_delivery"
    COAL_HAULING = "coal_hauling"
    PLUMBING_REPAIR = "plumbing_repair"
    HEATING_REPAIR = "heating_repair"
    ELECTRICAL_REPAIR = "electrical_repair"
    HOME_CLEANING = "home_cleaning"
    ERRAND_SHOPPING = "errand_shopping"
    MEDICINE_PICKUP = "medicine_pickup"
    MEAL_DELIVERY = "meal_delivery"
    MAIL_AND_BILLS = "mail_and_bills"
    TRANSPORT = "transport"
    FARM_HELP = "farm_help"
    STORM_PREP = "storm_prep"
    MEDIATION = "mediation"
    TUTORING = "tutoring"
    COMPANIONSHIP_VISIT = "companionship_visit"
    OTHER = "other"


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Vulnerability(StrEnum):
    ELDERLY_ALONE = "elderly_alone"
    DISABLED = "disabled"
    CHILD = "child"
    LIVESTOCK = "livestock"
    MEDICAL = "medical"


class NeedStatus(StrEnum):
    QUEUED = "queued"
    MATCHING = "matching"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    DONE = "done"
    CLOSED = "closed"
    ESCALATED = "escalated"
    DEFERRED = "deferred"
    CANCELLED = "cancelled"


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"


class Role(StrEnum):
    DISPATCHER = "dispatcher"
    INTAKE = "intake"
    VOLUNTEER = "volunteer"
    OPS = "ops"
    CAPTAIN = "captain"
    """A grid captain: a volunteer (answers its own offers) who also handles the needs of its grids."""


class Locale(StrEnum):
    ZH = "zh"
    EN = "en"


class Topic(StrEnum):
    """What a notification is about; each topic has its audience and its texts."""

    OFFER = "offer"
    OFFER_REMINDER = "offer_reminder"
    ASSIGNED_BY_DISPATCHER = "assigned_by_dispatcher"
    CANCELLED = "cancelled"
    OFFER_TAKEN = "offer_taken"
    """Another volunteer accepted first: the offer is withdrawn."""
    OFFER_PREEMPTED = "offer_preempted"
    """The offer was withdrawn for a more urgent need nearby."""
    OFFER_MOVED = "offer_moved"
    """The offer was withdrawn: a volunteer nearer to the need comes, and this one is nearest to another."""
    RECEIVED = "received"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    DONE = "done"
    DEFERRED = "deferred"
    ESCALATED = "escalated"
    OVERDUE = "overdue"
    DELIVERY_FAILED = "delivery_failed"
    INCIDENT_OPENED = "incident_opened"
    INCIDENT_MILESTONE = "incident_milestone"
    ESCALATED_CAPTAIN = "escalated_captain"
    """An escalated need, told to the grid's on-call captain (first tier of the escalation ladder)."""
    ESCALATED_TIER = "escalated_tier"
    """An escalated need nobody acknowledged, told to a tier above the dispatchers (its own channels)."""
    VISIT_OVERDUE = "visit_overdue"
    """A household's visit was not done by the end of its period: its grid's captain is told."""


class EventType(StrEnum):
    """The kinds of step on a need's timeline."""

    CREATED = "created"
    MATCHING_STARTED = "matching_started"
    OFFERED = "offered"
    ASSIGNED_BY_DISPATCHER = "assigned_by_dispatcher"
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    OFFER_DECLINED = "offer_declined"
    OFFER_EXPIRED = "offer_expired"
    OFFER_WITHDRAWN = "offer_withdrawn"
    OFFER_PREEMPTED = "offer_preempted"
    """A pending offer of this need was withdrawn and given to a more urgent need."""
    ESCALATED = "escalated"
    REMATCH = "rematch"
    DEFERRED = "deferred"
    REOPENED = "reopened"
    CANCELLED = "cancelled"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    DONE = "done"
    CLOSED = "closed"
    FEEDBACK = "feedback"
    OVERDUE = "overdue"
    NOTIFICATION = "notification"
    NOTIFICATION_UNDELIVERABLE = "notification_undeliverable"
    INCIDENT_JOINED = "incident_joined"
    ESCALATION_STEP = "escalation_step"
    """A tier of the escalation ladder was told, or skipped (nobody on call, nobody to tell)."""
    ESCALATION_ACKNOWLEDGED = "escalation_acknowledged"
    ESCALATION_LADDER_ENDED = "escalation_ladder_ended"
    """The ladder stopped without an acknowledgement: past its top tier, or the need moved on."""
    VISIT_OUTCOME = "visit_outcome"
    """The visit this need is for was closed with an outcome."""
    VISIT_OVERDUE = "visit_overdue"
    """The visit this need is for was not done by the end of its period."""
    PRIORITY_CHANGED = "priority_changed"


class IncidentStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Milestone(StrEnum):
    """The points in an incident's life that dispatchers are told of, once each."""

    HALF = "half"
    ALL = "all"


URGENT_PRIORITIES = frozenset({Priority.CRITICAL, Priority.HIGH})
URGENT_VULNERABILITIES = frozenset({Vulnerability.ELDERLY_ALONE, Vulnerability.MEDICAL, Vulnerability.LIVESTOCK})
"""A need is urgent when its priority or its people's vulnerability is one of these: it goes first."""


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float


@dataclass
class Volunteer:
    id: str
    name: str
    phone: str
    skills: list[Skill]
    home: Location
    location: Location
    capacity: int
    load: int
    on_duty: bool
    channels: list[str]
    locale: Locale
    team: str | None
    grid: str | None
    created_at: str
    updated_at: str
    location_at: str
    idle_since: float
    drill: bool = False
    """Created by a drill: `POST /drills/clean` removes it."""


@dataclass
class NeedRole:
    """One part of a need's team: `count` volunteers, each with every one of `skills`.

    A need asking for one kind of volunteer has one role (its skills, its volunteers_needed)."""

    skills: list[Skill]
    count: int
    active: int = 0
    """Live offers (pending or accepted) for this role."""
    accepted: int = 0
    """Volunteers who accepted this role."""

    @property
    def filled(self) -> bool:
        return self.accepted >= self.count


@dataclass(frozen=True)
class TeamMember:
    """An accepted volunteer as the rest of the team sees them: first name and phone, and the role taken."""

    volunteer_id: str
    first_name: str
    phone: str
    role: int
    skills: list[Skill]


@dataclass
class Requester:
    name: str | None = None
    phone: str | None = None


@dataclass
class Need:
    id: str
    kind: NeedKind
    status: NeedStatus
    priority: Priority
    skills: list[Skill]
    location: Location
    address: str | None
    vulnerability: list[Vulnerability]
    volunteers_needed: int
    description: str | None
    requester: Requester
    tracking_code: str
    created_at: str
    updated_at: str
    deadline: str
    created_by: str | None
    grid: str | None = None
    committed_deadline: str | None = None
    offers_made: int = 0
    accepted: int = 0
    active: int = 0
    status_reason: str | None = None
    rating: int | None = None
    feedback_comment: str | None = None
    flagged: bool = False
    requester_locale: Locale | None = None
    radius_km: float | None = None
    """How far to search for volunteers (the kind's radius unless a dispatcher widened it)."""
    accept_seconds: int | None = None
    """How long a volunteer has to answer an offer of this need."""
    arrive_by: str | None = None
    """Volunteers who cannot be there by then (at the configured travel speed) are not offered it."""
    incident_id: str | None = None
    """The incident this need is part of, if any (a need is in at most one)."""
    drill: bool = False
    """Created by a drill: `POST /drills/clean` removes it."""
    household_id: str | None = None
    """The household of the care register this need is for, if any."""
    visit_id: str | None = None
    """The recurring visit this need is (a companionship visit), or came from (a visit's needs_help)."""
    favoured: list[str] = field(default_factory=list)
    """Volunteers preferred when nearly as near as the nearest (a household's previous visitor, then its
    preferred volunteers), in order."""
    roles: list[NeedRole] = field(default_factory=list)
    """Who the need asks for, each role matched on its own; one role (its skills, volunteers_needed) when not
    given. volunteers_needed is the sum of the counts, skills every skill a role asks for."""

    def __post_init__(self) -> None:
        if not self.roles:
            self.roles = [NeedRole(list(self.skills), self.volunteers_needed, self.active, self.accepted)]

    @property
    def staffed(self) -> bool:
        """Every role has as many live offers as volunteers it asks for."""
        return all(r.active >= r.count for r in self.roles)

    @property
    def urgent(self) -> bool:
        """Critical or high priority, or people who cannot wait (elderly alone, medical, livestock)."""
        return self.priority in URGENT_PRIORITIES or bool(URGENT_VULNERABILITIES & set(self.vulnerability))


@dataclass
class Offer:
    id: str
    need_id: str
    volunteer_id: str
    status: OfferStatus
    created_at: str
    expires_at: str
    distance_km: float
    code: str
    reason: str | None = None
    decided_at: str | None = None
    role: int = 0
    """Which of the need's roles this offer is for (its index)."""


@dataclass(frozen=True)
class IncidentRule:
    """When needs of one family form an incident by themselves: `count` needs within `radius_km` of
    the newest within `minutes`."""

    count: int
    radius_km: float
    minutes: float


@dataclass
class Incident:
    """Needs of one family in one area, handled together: formed by arrival or declared by a dispatcher."""

    id: str
    family: Family
    status: IncidentStatus
    centre: Location
    radius_km: float
    reach_km: float
    """How far from the centre a need may be and still join (the radius grows up to this)."""
    opened_at: str
    need_ids: list[str] = field(default_factory=list)
    closed_at: str | None = None
    note: str | None = None
    declared_by: str | None = None
    """Who declared it; None for an incident formed by itself."""


@dataclass
class Event:
    at: str
    type: EventType
    actor: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's role, its id and, for volunteers and captains, the volunteer it is bound to
    (and a captain's grids)."""

    role: Role
    token_id: str
    volunteer_id: str | None = None
    grids: tuple[str, ...] = ()

    @property
    def actor(self) -> str:
        if self.role is Role.VOLUNTEER and self.volunteer_id:
            return f"volunteer:{self.volunteer_id}"
        if self.role is Role.CAPTAIN and self.volunteer_id:
            return f"captain:{self.volunteer_id}"
        return f"{self.role.value}:{self.token_id}"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


@dataclass(frozen=True)
class Shift:
    """A weekly shift of a grid's rota: on `weekday` from `start` to `end` (local "HH:MM"; end may be "24:00")."""

    weekday: Weekday
    start: str
    end: str
    volunteer_id: str


@dataclass(frozen=True)
class Override:
    """A dated cover that wins over the weekly shifts: from and to as local "YYYY-MM-DDTHH:MM"."""

    start: str
    end: str
    volunteer_id: str


@dataclass
class Rota:
    """Who of a grid's captains is on call when."""

    grid: str
    shifts: list[Shift] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)
    updated_at: str | None = None
    updated_by: str | None = None


class TierKind(StrEnum):
    """Whom a tier of the escalation ladder tells."""

    CAPTAIN = "captain"
    """The grid's on-call captain (skipped when nobody is on call)."""
    DISPATCHERS = "dispatchers"
    """The grid's dispatcher channels, else the district's (AIDLINE_GRID_CHANNELS, AIDLINE_DISPATCHER_CHANNELS)."""
    CHANNELS = "channels"
    """The tier's own apprise URLs (a district lead, a duty office)."""


@dataclass(frozen=True)
class Tier:
    """One rung of the escalation ladder and how long it has to acknowledge before the next is told."""

    name: str
    kind: TierKind
    ack_seconds: int
    ack_seconds_critical: int
    channels: tuple[str, ...] = ()


class AttentionLevel(StrEnum):
    """How closely a household of the care register is watched: red is visited most often."""

    RED = "red"
    ORANGE = "orange"
    YELLOW = "yellow"
    GREEN = "green"


class VisitStatus(StrEnum):
    PLANNED = "planned"
    """Planned ahead; its need is created when it becomes due."""
    DUE = "due"
    """Its companionship visit need is out; to be done by the end of its period."""
    DONE = "done"
    OVERDUE = "overdue"
    """Not done by the end of its period (an outcome may still be recorded: it is then done)."""
    CANCELLED = "cancelled"


OPEN_VISITS = frozenset({VisitStatus.PLANNED, VisitStatus.DUE})
"""A household has one open visit at a time: the next one is planned when it is done or overdue."""


class VisitOutcome(StrEnum):
    ALL_WELL = "all_well"
    NEEDS_HELP = "needs_help"


@dataclass
class Contact:
    name: str
    phone: str


@dataclass
class Household:
    """A household of the care register, visited at its attention level's cadence."""

    id: str
    address: str
    location: Location
    grid: str | None
    vulnerability: list[Vulnerability]
    contact: Contact
    attention_level: AttentionLevel
    preferred_volunteers: list[str]
    notes: str | None
    created_at: str
    updated_at: str
    open_visit: str | None = None
    """The household's planned or due visit."""
    last_visitor: str | None = None
    """The volunteer who made the last visit with an outcome (preferred for the next, for continuity)."""

    @property
    def favoured(self) -> list[str]:
        """Who the household's needs prefer when nearly as near as the nearest: its previous visitor, then its
        preferred volunteers, each once, in order."""
        return list(dict.fromkeys(v for v in [self.last_visitor or "", *self.preferred_volunteers] if v))


@dataclass
class Visit:
    """One recurring visit of a household: due at `due_at`, to be done by `period_end`."""

    id: str
    household_id: str
    attention_level: AttentionLevel
    status: VisitStatus
    due_at: str
    period_end: str
    created_at: str
    need_id: str | None = None
    outcome: VisitOutcome | None = None
    help_kind: NeedKind | None = None
    note: str | None = None
    help_need_id: str | None = None
    visitor_id: str | None = None
    closed_at: str | None = None


class ReportGroup(StrEnum):
    """What a report's rows are: one per grid, need kind, ISO week, volunteer or volunteer team."""

    GRID = "grid"
    KIND = "kind"
    WEEK = "week"
    VOLUNTEER = "volunteer"
    TEAM = "team"
