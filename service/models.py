"""Domain vocabulary and records: statuses, skills, kinds, needs, volunteers, offers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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


class Locale(StrEnum):
    ZH = "zh"
    EN = "en"


class Topic(StrEnum):
    """What a notification is about; each topic has its audience and its texts."""

    OFFER = "offer"
    OFFER_REMINDER = "offer_reminder"
    ASSIGNED_BY_DISPATCHER = "assigned_by_dispatcher"
    CANCELLED = "cancelled"
    RECEIVED = "received"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    DONE = "done"
    DEFERRED = "deferred"
    ESCALATED = "escalated"
    OVERDUE = "overdue"
    DELIVERY_FAILED = "delivery_failed"


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
    drill: bool = False
    """Created by a drill: `POST /drills/clean` removes it."""


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


@dataclass
class Event:
    at: str
    type: EventType
    actor: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's role, its id and, for volunteers, the volunteer it is bound to."""

    role: Role
    token_id: str
    volunteer_id: str | None = None

    @property
    def actor(self) -> str:
        if self.role is Role.VOLUNTEER and self.volunteer_id:
            return f"volunteer:{self.volunteer_id}"
        return f"{self.role.value}:{self.token_id}"
