"""Marshmallow schemas: one per request body or query, one per response shape."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import RAISE, ValidationError, fields, validate, validates_schema

from service import reports
from service.models import (
    GRID_NAME,
    GRID_NAME_RULE,
    AttentionLevel,
    Family,
    IncidentStatus,
    Locale,
    NeedKind,
    NeedStatus,
    OfferStatus,
    Priority,
    ReportGroup,
    Skill,
    VisitOutcome,
    VisitStatus,
    Vulnerability,
    Weekday,
)
from service.needs import MAX_BATCH

E164 = validate.Regexp(r"^\+[1-9][0-9]{6,14}$", error="Must be a phone number in E.164 form, like +8613800000001.")


class StrictBoolean(fields.Boolean):
    """Only JSON true and false (not 1, 0 or "true")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictFloat(fields.Float):
    """A JSON number, not a numeric string."""

    def _validated(self, value: Any) -> Any:
        if isinstance(value, str | bool):
            raise self.make_error("invalid")
        return super()._validated(value)


def _bool(**kwargs: Any) -> fields.Boolean:
    return StrictBoolean(**kwargs)


def _text(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


def _grid_name(value: str) -> None:
    if not GRID_NAME.fullmatch(value):
        raise ValidationError(GRID_NAME_RULE)


def _grid(description: str = "The grid", **kwargs: Any) -> fields.String:
    """A grid's name, wherever one is written or asked for (models.GRID_NAME)."""
    return fields.String(
        validate=_grid_name,
        metadata={"description": description, "pattern": GRID_NAME.pattern, "minLength": 1, "maxLength": 50},
        **kwargs,
    )


SURROGATES = re.compile("[\ud800-\udfff]")
CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters, but for tab, line feed and carriage return (a browser's text area sends CR LF)."""
NO_CONTROLS = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"
"""CONTROLS as the OpenAPI document states it, a pattern every text field without one of its own matches."""
BAD_TEXT = (
    (SURROGATES, "Contains invalid characters (unpaired surrogates)."),
    (CONTROLS, "Contains control characters (only newline and tab are allowed)."),
)


def _bad_text(data: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Where the body holds text that cannot be stored as UTF-8 (unpaired surrogates) or control characters
    (a NUL, an escape, ...), with why: (path of keys and indexes, message)."""
    if isinstance(data, str):
        return [(path or ("_schema",), message) for pattern, message in BAD_TEXT if pattern.search(data)][:1]
    if isinstance(data, dict):
        return [found for k, v in data.items() for found in _bad_text(v, (*path, str(k)))]
    if isinstance(data, list):
        return [found for i, v in enumerate(data) for found in _bad_text(v, (*path, i))]
    return []


def _nested_errors(found: list[tuple[tuple[str | int, ...], str]]) -> dict[str | int, Any]:
    """{"requester": {"name": [message]}} from (("requester", "name"), message): marshmallow's shape."""
    errors: dict[str | int, Any] = {}
    for path, message in found:
        node = errors
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node.setdefault(path[-1], []).append(message)
    return errors


class Schema(ma.Schema):
    """Every input schema rejects fields it does not know, and text that is not valid Unicode or holds control
    characters other than newline and tab (422 naming the field)."""

    class Meta:
        unknown = RAISE

    BODY_RULES: ClassVar[dict[str, Any]] = {}
    """JSON Schema keywords about a request body as a whole, which its fields alone cannot state (such as one
    of two fields being required): documented with the body, and enforced by the schema's own validators."""

    def on_bind_field(self, field_name: str, field_obj: fields.Field[Any]) -> None:
        """Each text field documents that it takes no control characters (what _no_bad_text enforces), unless a
        pattern of its own says more."""
        super().on_bind_field(field_name, field_obj)
        own_pattern = "pattern" in field_obj.metadata or any(
            isinstance(v, validate.Regexp) for v in field_obj.validators
        )
        if isinstance(field_obj, fields.String) and not own_pattern:
            field_obj.metadata = {**field_obj.metadata, "pattern": NO_CONTROLS}

    @ma.pre_load
    def _no_bad_text(self, data: Any, **_: Any) -> Any:
        found = _bad_text(data)
        if found:
            raise ValidationError(_nested_errors(found))
        return data


def _apprise_url(value: str) -> None:
    import apprise

    if apprise.Apprise.instantiate(value) is None:
        raise ValidationError("Not a notification URL that apprise understands (e.g. json://host/path).")


CHANNEL_URL = validate.Regexp(r"^[A-Za-z0-9]+://", error="Must be an apprise URL, scheme://..., e.g. json://host/path.")
CHANNEL_DESCRIPTION = (
    "Notification channels as apprise URLs (https://github.com/caronc/apprise), tried in order, e.g. "
    "json://hooks.example.org/aidline or twilio://SID:TOKEN@+15550001111/+8613800000001. Beyond the pattern, "
    "each URL must be one apprise understands: 422 otherwise."
)


MAX_LAT = 85.05112
"""Redis GEO indexes cover latitudes up to here (Web Mercator), far beyond any community served."""


class LocationSchema(Schema):
    lat = StrictFloat(required=True, allow_nan=False, validate=validate.Range(min=-MAX_LAT, max=MAX_LAT))
    lon = StrictFloat(required=True, allow_nan=False, validate=validate.Range(min=-180, max=180))


class ErrorSchema(ma.Schema):
    """The one error format, for every 4xx and 5xx answer."""

    code = fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = fields.String(required=True, metadata={"description": "HTTP status name"})
    message = fields.String(metadata={"description": "What went wrong, in words"})
    errors = fields.Dict(metadata={"description": "Per-field messages, by location (json, query) then field"})


# ---- catalog ------------------------------------------------------------------------------------


class KindSchema(ma.Schema):
    name = fields.String(required=True)
    labels = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "The kind's name as people read it, by language (en, zh), for apps' forms"},
    )
    family = fields.String(
        required=True,
        metadata={
            "enum": [f.value for f in Family],
            "description": "Needs of one family close together form an incident",
        },
    )
    skills = fields.List(fields.String(), required=True)
    radius_km = fields.Float(required=True)
    deadlines = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "Default completion deadline in minutes, by priority"},
    )
    accept_minutes = fields.Dict(
        keys=fields.String(),
        values=fields.Float(),
        required=True,
        metadata={"description": "Minutes a volunteer has to accept an offer, by priority"},
    )


class CatalogSchema(ma.Schema):
    kinds = fields.List(fields.Nested(KindSchema), required=True)
    skills = fields.List(fields.String(), required=True)
    skill_labels = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.String()),
        required=True,
        metadata={"description": "Each skill's name as people read it, by language: {skill: {en, zh}}"},
    )


# ---- volunteers ---------------------------------------------------------------------------------

_SKILLS = fields.List(fields.Enum(Skill, by_value=True), validate=validate.Length(max=20))
_CHANNELS = fields.List(
    fields.String(validate=[validate.Length(min=1, max=500), CHANNEL_URL, _apprise_url]),
    validate=validate.Length(max=5),
    metadata={"description": CHANNEL_DESCRIPTION},
)


class VolunteerCreateSchema(Schema):
    name = _text(100, required=True)
    phone = fields.String(required=True, validate=E164)
    skills = fields.List(fields.Enum(Skill, by_value=True), required=True, validate=validate.Length(max=20))
    location = fields.Nested(LocationSchema, required=True, metadata={"description": "Home location"})
    capacity = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=5))
    channels = fields.List(
        fields.String(validate=[validate.Length(min=1, max=500), CHANNEL_URL, _apprise_url]),
        load_default=list,
        validate=validate.Length(max=5),
        metadata={"description": CHANNEL_DESCRIPTION},
    )
    locale = fields.Enum(Locale, by_value=True, load_default=Locale.ZH)
    team = _text(50, allow_none=True)
    grid = _grid(allow_none=True)
    on_duty = _bool(load_default=False)
    drill = _bool(
        load_default=False,
        metadata={"description": "Created by a drill (aidline drill): POST /drills/clean removes it"},
    )


class VolunteerUpdateSchema(Schema):
    name = _text(100)
    phone = fields.String(validate=E164)
    skills = _SKILLS
    location = fields.Nested(LocationSchema, metadata={"description": "Home location"})
    capacity = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))
    channels = _CHANNELS
    locale = fields.Enum(Locale, by_value=True)
    team = _text(50, allow_none=True)
    grid = _grid(allow_none=True)
    on_duty = _bool()


class AvailabilitySchema(Schema):
    on_duty = _bool(required=True)


class VolunteerSchema(ma.Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    phone = fields.String(required=True)
    skills = fields.List(fields.String(), required=True)
    home = fields.Nested(LocationSchema, required=True)
    location = fields.Nested(LocationSchema, required=True, metadata={"description": "Live position"})
    location_at = fields.String(required=True)
    capacity = fields.Integer(required=True)
    current_load = fields.Integer(
        required=True,
        data_key="load",
        attribute="load",
        metadata={"description": "Tasks held now (offers and assignments)"},
    )
    on_duty = fields.Boolean(required=True)
    channels = fields.List(fields.String(), required=True, metadata={"description": "Secrets are masked"})
    locale = fields.String(required=True)
    team = fields.String(allow_none=True)
    grid = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)
    drill = fields.Boolean(
        required=True, metadata={"description": "Created by a drill (aidline drill): POST /drills/clean removes it"}
    )


class NoQuerySchema(Schema):
    """The query of a short list, which takes no parameters: any is refused (422 naming it), as every list
    refuses a parameter it does not know."""


class PageArgsSchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(
        validate=[
            validate.Length(min=1, max=200),
            validate.Regexp(r"^[A-Za-z0-9_-]+$", error="Not a cursor returned by this list."),
        ],
        metadata={"description": "The next_cursor of the previous page, as given (422 for any other value)"},
    )


_NEAR_LAT = (  # a decimal within -85.05112..85.05112 (MAX_LAT), digit by digit
    r"-?(?:(?:[0-7]?[0-9]|8[0-4])(?:\.[0-9]+)?|85(?:\.0(?:[0-4][0-9]*|5(?:0[0-9]*|1(?:0[0-9]*|1(?:[01][0-9]*|20*)?)?)?)?)?)"
)
_NEAR_LON = r"-?(?:(?:1[0-7][0-9]|[0-9]?[0-9])(?:\.[0-9]+)?|180(?:\.0+)?)"  # a decimal within -180..180
NEAR_POINT = validate.Regexp(
    f"^{_NEAR_LAT},{_NEAR_LON}$",
    error="Must be 'lat,lon' in decimal degrees, e.g. 46.33,132.21, with lat within -85.05112..85.05112 "
    "and lon within -180..180.",
)


class NearArgsSchema(PageArgsSchema):
    near = fields.String(
        validate=[validate.Length(max=60), NEAR_POINT],
        metadata={
            "description": "lat,lon in decimal degrees, e.g. 46.33,132.21 (lat within -85.05112..85.05112, "
            "lon within -180..180): only records within radius_km of that point"
        },
    )
    radius_km = fields.Float(load_default=10.0, allow_nan=False, validate=validate.Range(min=0.01, max=500))


class VolunteerQuerySchema(NearArgsSchema):
    skill = fields.Enum(Skill, by_value=True)
    on_duty = fields.Boolean()
    grid = _grid("Only this grid's")


class VolunteerPageSchema(ma.Schema):
    items = fields.List(fields.Nested(VolunteerSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


# ---- needs --------------------------------------------------------------------------------------


class RequesterSchema(Schema):
    name = _text(100, allow_none=True)
    phone = fields.String(allow_none=True, validate=E164)
    locale = fields.String(validate=validate.OneOf(["zh", "en"]), metadata={"description": "Language of messages"})


MAX_ROLES = 5
"""Most roles one need may have."""


class NeedRoleSchema(Schema):
    skills = fields.List(
        fields.Enum(Skill, by_value=True),
        required=True,
        validate=validate.Length(max=20),
        metadata={"description": "Every volunteer of the role has all of these skills (none: anyone)"},
    )
    count = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(min=1, max=20),
        metadata={"description": "How many volunteers the role needs"},
    )


class NeedCreateSchema(Schema):
    """A place is required: location, or an address to geocode. Who is needed: skills and volunteers_needed, or
    roles (not both)."""

    BODY_RULES = {
        "anyOf": [{"required": ["location"]}, {"required": ["address"]}, {"required": ["household_id"]}],
        "not": {"required": ["roles"], "anyOf": [{"required": ["skills"]}, {"required": ["volunteers_needed"]}]},
    }

    kind = fields.Enum(NeedKind, by_value=True, required=True)
    skills = fields.List(
        fields.Enum(Skill, by_value=True),
        validate=validate.Length(max=20),
        metadata={"description": "Required skills; defaults to the kind's"},
    )
    location = fields.Nested(LocationSchema)
    address = _text(
        300,
        metadata={
            "description": "Kept as given; geocoded when no location is sent (422 when no geocoder is configured "
            "or the address is not found, 503 when the geocoder cannot be reached)"
        },
    )
    priority = fields.Enum(Priority, by_value=True, load_default=Priority.NORMAL)
    vulnerability = fields.List(
        fields.Enum(Vulnerability, by_value=True), load_default=list, validate=validate.Length(max=5)
    )
    volunteers_needed = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=20),
        metadata={"description": "How many volunteers with the skills; 1 when not sent"},
    )
    roles = fields.List(
        fields.Nested(NeedRoleSchema),
        validate=validate.Length(min=1, max=MAX_ROLES),
        metadata={
            "description": f"A team of several kinds of volunteer, instead of skills and volunteers_needed (422 on "
            f"roles when sent with either): 1 to {MAX_ROLES} roles, each matched on its own; the need is assigned "
            "once every role has its count of volunteers"
        },
    )
    description = fields.String(validate=validate.Length(max=2000), allow_none=True)
    requester = fields.Nested(RequesterSchema)
    deadline = fields.AwareDateTime(
        metadata={
            "description": "ISO 8601 with time zone, in the future and within 366 days of now (422 otherwise); "
            "defaults to the kind's deadline for the priority"
        }
    )
    grid = _grid(allow_none=True)
    arrive_by = fields.AwareDateTime(
        metadata={
            "description": "ISO 8601 with time zone, in the future and within 366 days of now (422 otherwise): only "
            "volunteers who can be there "
            "by then at the service's travel speed (AIDLINE_TRAVEL_SPEED_KMH, default 30) are offered it"
        }
    )
    radius_km = StrictFloat(
        allow_nan=False,
        validate=validate.Range(min=0.1, max=1000),
        metadata={
            "description": "How far to search for volunteers; defaults to the kind's radius. A dispatcher widens it "
            "for a remote place. Capped at the service's maximum (AIDLINE_MAX_RADIUS_KM, default 25); the need "
            "shows the radius used."
        },
    )
    accept_seconds = fields.Integer(
        strict=True,
        validate=validate.Range(min=10, max=86400),
        metadata={"description": "Seconds a volunteer has to answer an offer; defaults to the kind's for the priority"},
    )
    drill = _bool(
        load_default=False,
        metadata={"description": "Created by a drill (aidline drill): POST /drills/clean removes it"},
    )
    household_id = _text(
        60,
        metadata={
            "description": "The household of the care register this need is for (422 when there is none such); "
            "without location and address the need is at the household's, without requester its contact's; "
            "its vulnerabilities are the household's with any given"
        },
    )

    @validates_schema
    def _has_a_place(self, data: dict[str, Any], **_: Any) -> None:
        if "location" not in data and not data.get("address") and not data.get("household_id"):
            raise ValidationError("Send location {lat, lon}, an address, or a household_id.", "location")

    @validates_schema
    def _roles_or_skills(self, data: dict[str, Any], **_: Any) -> None:
        if "roles" in data and ("skills" in data or "volunteers_needed" in data):
            raise ValidationError("Send roles, or skills and volunteers_needed, not both.", "roles")

    @ma.post_load
    def _plain_values(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["kind"] = data["kind"].value
        data["priority"] = data["priority"].value
        data["vulnerability"] = [v.value for v in data["vulnerability"]]
        if "skills" in data:
            data["skills"] = [s.value for s in data["skills"]]
        if "roles" in data:
            data["roles"] = [{"skills": [s.value for s in r["skills"]], "count": r["count"]} for r in data["roles"]]
        return data


class NeedBatchSchema(Schema):
    """Many needs in one request, each exactly what POST /needs takes."""

    needs = fields.List(
        fields.Nested(NeedCreateSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_BATCH),
        metadata={
            "description": f"1 to {MAX_BATCH} needs, each as POST /api/v1/needs takes it. A bad item refuses the whole "
            "batch (nothing is created) with 422 naming every bad item by its index, as errors.json.needs.<index>."
            "<field>: first every item the schema rejects; once the schema accepts them all, every item whose "
            "deadline is past or whose address is not found."
        },
    )

    def _no_surrogates(self, data: Any, **_: Any) -> Any:
        """Not a hook here: each item checks its own text, so that its errors are named under its index."""
        return data


class AssignmentSchema(ma.Schema):
    volunteer_id = fields.String(required=True)
    status = fields.String(required=True)
    offer_id = fields.String(required=True)
    name = fields.String()
    distance_km = fields.Float()
    role = fields.Integer(metadata={"description": "The index of the need's role this offer is for"})


class NeedRoleOutSchema(ma.Schema):
    skills = fields.List(fields.String(), required=True)
    count = fields.Integer(required=True)
    filled = fields.Integer(required=True, metadata={"description": "Volunteers who accepted this role"})


class TeamMemberSchema(ma.Schema):
    volunteer_id = fields.String(required=True)
    first_name = fields.String(
        required=True, metadata={"description": "The first word of the name (a name written without spaces: all of it)"}
    )
    phone = fields.String(required=True)
    role = fields.Integer(required=True, metadata={"description": "The index of the role the volunteer took"})
    skills = fields.List(fields.String(), required=True, metadata={"description": "The role's skills"})


class RequesterOutSchema(ma.Schema):
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)


class NeedSchema(ma.Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": [s.value for s in NeedStatus]})
    priority = fields.String(required=True)
    skills = fields.List(fields.String(), required=True)
    location = fields.Nested(
        LocationSchema,
        required=True,
        metadata={"description": "Exact for those who see private details, else rounded to about 1 km"},
    )
    address = fields.String(allow_none=True, metadata={"description": "Only for dispatchers and assigned volunteers"})
    vulnerability = fields.List(fields.String(), required=True)
    volunteers_needed = fields.Integer(required=True, metadata={"description": "Every role's count together"})
    roles = fields.List(
        fields.Nested(NeedRoleOutSchema),
        required=True,
        metadata={"description": "Who the need asks for; one role (skills, volunteers_needed) unless sent with roles"},
    )
    team = fields.List(
        fields.Nested(TeamMemberSchema),
        metadata={
            "description": "The volunteers who accepted, with first name and phone, so the team can reach each "
            "other: in the answers about one need (not in lists), for dispatchers and the volunteers who accepted "
            "the need"
        },
    )
    description = fields.String(allow_none=True)
    requester = fields.Nested(RequesterOutSchema, required=True)
    tracking_code = fields.String(metadata={"description": "Only for dispatchers and the intake client that sent it"})
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)
    deadline = fields.String(required=True)
    committed_deadline = fields.String(allow_none=True)
    status_reason = fields.String(allow_none=True)
    assignments = fields.List(fields.Nested(AssignmentSchema), required=True)
    offers_made = fields.Integer(required=True)
    rating = fields.Integer(allow_none=True)
    feedback_comment = fields.String(allow_none=True)
    flagged = fields.Boolean(required=True, metadata={"description": "A notification could not be delivered"})
    grid = fields.String(allow_none=True)
    radius_km = fields.Float(allow_none=True, metadata={"description": "How far volunteers are searched for"})
    arrive_by = fields.String(allow_none=True, metadata={"description": "Volunteers must be able to arrive by then"})
    incident_id = fields.String(allow_none=True, metadata={"description": "The incident this need is part of, if any"})
    drill = fields.Boolean(
        required=True, metadata={"description": "Created by a drill (aidline drill): POST /drills/clean removes it"}
    )
    household_id = fields.String(
        allow_none=True, metadata={"description": "The household of the care register this need is for, if any"}
    )
    visit_id = fields.String(
        allow_none=True,
        metadata={"description": "The recurring visit this need is (a companionship visit) or came from (needs_help)"},
    )


class NeedBatchResultSchema(ma.Schema):
    items = fields.List(fields.Nested(NeedSchema), required=True, metadata={"description": "In the order sent"})


class NeedQuerySchema(NearArgsSchema):
    status = fields.Enum(NeedStatus, by_value=True)
    kind = fields.Enum(NeedKind, by_value=True)
    priority = fields.Enum(Priority, by_value=True)


class NeedPageSchema(ma.Schema):
    items = fields.List(fields.Nested(NeedSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class EventSchema(ma.Schema):
    at = fields.String(required=True)
    type = fields.String(required=True)
    actor = fields.String(required=True)
    detail = fields.Dict(required=True)


class EventListSchema(ma.Schema):
    items = fields.List(fields.Nested(EventSchema), required=True)


class ReasonSchema(Schema):
    reason = _text(500, required=True)


class OptionalReasonSchema(Schema):
    reason = _text(500, allow_none=True)


class AssignSchema(Schema):
    volunteer_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    role = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=MAX_ROLES - 1),
        metadata={
            "description": "The index of the role the volunteer takes (422 when the need has no such role, 409 when "
            "the volunteer lacks its skills); by default the first role not yet filled whose skills they have"
        },
    )
    override = fields.Boolean(
        load_default=False,
        metadata={
            "description": "The dispatcher's choice stands over duty and skills (someone they reached by phone, "
            "who can do it without the skill on record): an off-duty volunteer or one without the role's skills "
            "is assigned anyway, to `role` or the first role not yet filled. Capacity still holds."
        },
    )


class PrioritySchema(Schema):
    priority = fields.Enum(Priority, by_value=True, required=True)


class ProgressSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["en_route", "on_site", "done"]))
    note = fields.String(validate=validate.Length(max=1000), allow_none=True)


class OfferSchema(ma.Schema):
    id = fields.String(required=True)
    need_id = fields.String(required=True)
    volunteer_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": [s.value for s in OfferStatus]})
    created_at = fields.String(required=True)
    expires_at = fields.String(required=True)
    distance_km = fields.Float(required=True)
    code = fields.String(metadata={"description": "Short code for answering by SMS: YES <code> or NO <code>"})
    reason = fields.String(allow_none=True)
    decided_at = fields.String(allow_none=True)
    role = fields.Integer(metadata={"description": "The index of the need's role this offer is for"})
    need = fields.Dict(
        metadata={"description": "Kind, priority, description, approximate place of the need, and the role's skills"}
    )


class OfferListSchema(ma.Schema):
    items = fields.List(fields.Nested(OfferSchema), required=True)


class FeedbackSchema(Schema):
    rating = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(validate=validate.Length(max=2000), allow_none=True)
    fixed = _bool(load_default=True)


class TrackVolunteerSchema(ma.Schema):
    first_name = fields.String(required=True)
    distance_km = fields.Float(required=True)
    status = fields.String(required=True)


class TrackIncidentSchema(ma.Schema):
    size = fields.Integer(required=True, metadata={"description": "How many needs the incident holds"})
    family = fields.String(required=True, metadata={"enum": [f.value for f in Family]})
    message = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "For the requester, by language (zh, en): their need is part of a wider incident"},
    )


class TrackSchema(ma.Schema):
    kind = fields.String(required=True)
    status = fields.String(required=True)
    status_reason = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    deadline = fields.String(required=True)
    committed_deadline = fields.String(allow_none=True)
    volunteers = fields.List(fields.Nested(TrackVolunteerSchema), required=True)
    timeline = fields.List(fields.Nested(EventSchema), required=True)
    rating = fields.Integer(allow_none=True)
    incident = fields.Nested(
        TrackIncidentSchema, required=True, allow_none=True, metadata={"description": "null when in no incident"}
    )


class AttemptSchema(ma.Schema):
    at = fields.String(required=True)
    channel = fields.String(required=True, metadata={"description": "Secrets are masked"})
    ok = fields.Boolean(required=True)
    error = fields.String(required=True)


class NotificationSchema(ma.Schema):
    id = fields.String(required=True)
    topic = fields.String(required=True)
    recipient = fields.String(required=True)
    status = fields.String(
        required=True,
        metadata={
            "enum": ["pending", "sent", "failed", "skipped"],
            "description": "skipped: not sent because it became pointless (see reason), e.g. an offer no longer "
            "pending",
        },
    )
    reason = fields.String(metadata={"description": "Why a skipped notification was not sent"})
    channel = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    attempts = fields.List(fields.Nested(AttemptSchema), required=True)


class NotificationListSchema(ma.Schema):
    items = fields.List(fields.Nested(NotificationSchema), required=True)


# ---- incidents ----------------------------------------------------------------------------------


class IncidentCreateSchema(Schema):
    family = fields.Enum(Family, by_value=True, required=True)
    centre = fields.Nested(LocationSchema, required=True)
    radius_km = StrictFloat(
        required=True,
        allow_nan=False,
        validate=validate.Range(min=0.05, max=50),
        metadata={"description": "The area: every open need of the family within it, not yet in an incident, joins"},
    )
    note = fields.String(validate=validate.Length(max=1000), allow_none=True)

    @ma.post_load
    def _plain_values(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["family"] = data["family"].value
        return data


class IncidentQuerySchema(NearArgsSchema):
    status = fields.Enum(IncidentStatus, by_value=True)
    family = fields.Enum(Family, by_value=True)


class PolygonSchema(ma.Schema):
    type = fields.String(required=True, metadata={"enum": ["Polygon"]})
    coordinates = fields.List(
        fields.List(fields.List(fields.Float())),
        required=True,
        metadata={"description": "One closed ring of [lon, lat] pairs"},
    )


class IncidentSchema(ma.Schema):
    id = fields.String(required=True)
    family = fields.String(required=True, metadata={"enum": [f.value for f in Family]})
    status = fields.String(required=True, metadata={"enum": [s.value for s in IncidentStatus]})
    need_ids = fields.List(fields.String(), required=True, metadata={"description": "In the order they joined"})
    counts = fields.Dict(
        keys=fields.String(), values=fields.Integer(), required=True, metadata={"description": "Needs by status"}
    )
    vulnerable = fields.Integer(required=True, metadata={"description": "Needs with any vulnerability"})
    area = fields.Nested(
        PolygonSchema, required=True, metadata={"description": "GeoJSON Polygon approximating the circle"}
    )
    centre = fields.Nested(LocationSchema, required=True)
    radius_km = fields.Float(required=True)
    opened_at = fields.String(required=True)
    closed_at = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    declared_by = fields.String(allow_none=True, metadata={"description": "null when it formed by itself"})


class IncidentPageSchema(ma.Schema):
    items = fields.List(fields.Nested(IncidentSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class KeptVolunteerSchema(ma.Schema):
    id = fields.String(required=True)
    reason = fields.String(required=True)


class DrillCleanSchema(ma.Schema):
    needs_removed = fields.Integer(required=True)
    volunteers_removed = fields.Integer(required=True)
    volunteers_kept = fields.List(
        fields.Nested(KeptVolunteerSchema),
        required=True,
        metadata={
            "description": "Drill volunteers left in place: they hold an accepted offer on a need not from a drill"
        },
    )
    needs_rematched = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Needs not from a drill whose pending offers to drill volunteers were withdrawn"},
    )


class HealthSchema(ma.Schema):
    status = fields.String(required=True)


# ---- captains: rotas, who is on call, acknowledgements ------------------------------------------------

TIME_OF_DAY = validate.Regexp(
    r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", error="Must be a local time as HH:MM (00:00 to 24:00)."
)
LOCAL_MOMENT = validate.Regexp(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})?$",
    error="Must be a local date and time as YYYY-MM-DDTHH:MM (in AIDLINE_TIMEZONE unless an offset is given).",
)
MAX_ROTA_ITEMS = 200


class ShiftSchema(Schema):
    weekday = fields.Enum(Weekday, by_value=True, required=True)
    start = fields.String(required=True, validate=TIME_OF_DAY, metadata={"description": "Local time, HH:MM"})
    end = fields.String(
        required=True, validate=TIME_OF_DAY, metadata={"description": "Local time, HH:MM; 24:00 is the day's end"}
    )
    volunteer_id = fields.String(required=True, validate=validate.Length(min=1, max=100))


class OverrideSchema(Schema):
    start = fields.String(
        data_key="from", required=True, validate=LOCAL_MOMENT, metadata={"description": "Local YYYY-MM-DDTHH:MM"}
    )
    end = fields.String(
        data_key="to", required=True, validate=LOCAL_MOMENT, metadata={"description": "Local YYYY-MM-DDTHH:MM"}
    )
    volunteer_id = fields.String(required=True, validate=validate.Length(min=1, max=100))


class RotaInSchema(Schema):
    shifts = fields.List(fields.Nested(ShiftSchema), load_default=list, validate=validate.Length(max=MAX_ROTA_ITEMS))
    overrides = fields.List(
        fields.Nested(OverrideSchema), load_default=list, validate=validate.Length(max=MAX_ROTA_ITEMS)
    )


class ShiftViewSchema(ma.Schema):
    weekday = fields.String(required=True, metadata={"enum": [d.value for d in Weekday]})
    start = fields.String(required=True)
    end = fields.String(required=True)
    volunteer_id = fields.String(required=True)


class OverrideViewSchema(ma.Schema):
    start = fields.String(data_key="from", required=True)
    end = fields.String(data_key="to", required=True)
    volunteer_id = fields.String(required=True)


class RotaSchema(ma.Schema):
    grid = fields.String(required=True)
    timezone = fields.String(required=True, metadata={"description": "The zone of the rota's times"})
    shifts = fields.List(fields.Nested(ShiftViewSchema), required=True)
    overrides = fields.List(fields.Nested(OverrideViewSchema), required=True)
    updated_at = fields.String(required=True, allow_none=True)
    updated_by = fields.String(required=True, allow_none=True)


class OnCallSchema(ma.Schema):
    grid = fields.String(required=True)
    volunteer_id = fields.String(
        required=True, allow_none=True, metadata={"description": "The captain on call now; null: nobody"}
    )
    until = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "When this cover ends (UTC); when nobody is on call, when somebody next is; null: no "
            "change within the next week"
        },
    )
    source = fields.String(required=True, allow_none=True, metadata={"enum": ["shift", "override", None]})


class AckSchema(ma.Schema):
    need_id = fields.String(required=True)
    acknowledged_by = fields.String(required=True)
    acknowledged_at = fields.String(required=True)
    tier = fields.String(required=True, allow_none=True, metadata={"description": "The last tier told"})
    first = fields.Boolean(
        required=True, metadata={"description": "false: acknowledged before; this is that acknowledgement"}
    )


# ---- households and visits ----------------------------------------------------------------------


class ContactSchema(Schema):
    name = _text(100, required=True)
    phone = fields.String(
        required=True, validate=E164, metadata={"description": "Unique in the register (409 when another has it)"}
    )


_LEVEL_DESCRIPTION = (
    "How closely the household is watched, and so how often it is visited (AIDLINE_VISIT_CADENCE; by default red "
    "every 7 days, orange 30, yellow 91, green 182)"
)
_PREFERRED = fields.List(
    _text(60),
    validate=validate.Length(max=10),
    metadata={
        "description": "Volunteer ids (each must exist: 422 otherwise) preferred for the household's visits when "
        "nearly as near as the nearest, after its previous visitor"
    },
)


class HouseholdCreateSchema(Schema):
    address = _text(300, required=True, metadata={"description": "Exact address; geocoded when no location is sent"})
    location = fields.Nested(LocationSchema)
    grid = _grid(allow_none=True)
    vulnerability = fields.List(
        fields.Enum(Vulnerability, by_value=True), load_default=list, validate=validate.Length(max=5)
    )
    contact = fields.Nested(ContactSchema, required=True)
    attention_level = fields.Enum(
        AttentionLevel, by_value=True, required=True, metadata={"description": _LEVEL_DESCRIPTION}
    )
    preferred_volunteers = fields.List(
        _text(60), load_default=list, validate=validate.Length(max=10), metadata=_PREFERRED.metadata
    )
    notes = fields.String(validate=validate.Length(max=2000), allow_none=True)

    @ma.post_load
    def _plain_values(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "vulnerability" in data:
            data["vulnerability"] = [v.value for v in data["vulnerability"]]
        if "attention_level" in data:
            data["attention_level"] = data["attention_level"].value
        return data


class ContactUpdateSchema(Schema):
    """A household's contact on PATCH: only the fields sent change."""

    name = _text(100)
    phone = fields.String(validate=E164, metadata={"description": "Unique in the register (409 when another has it)"})


class HouseholdUpdateSchema(HouseholdCreateSchema):
    address = _text(300)
    vulnerability = fields.List(fields.Enum(Vulnerability, by_value=True), validate=validate.Length(max=5))
    contact = fields.Nested(ContactUpdateSchema, metadata={"description": "Only the contact's fields sent change"})
    attention_level = fields.Enum(
        AttentionLevel,
        by_value=True,
        metadata={"description": _LEVEL_DESCRIPTION + "; a new level replans the household's open visit at once"},
    )
    preferred_volunteers = _PREFERRED


class ContactOutSchema(ma.Schema):
    name = fields.String(required=True)
    phone = fields.String(allow_none=True, metadata={"description": "Only for dispatchers"})


class HouseholdSchema(ma.Schema):
    id = fields.String(required=True)
    address = fields.String(allow_none=True, metadata={"description": "Only for dispatchers"})
    location = fields.Nested(
        LocationSchema,
        required=True,
        metadata={"description": "Exact for dispatchers, else rounded to about 1 km"},
    )
    grid = fields.String(allow_none=True)
    vulnerability = fields.List(fields.String(), required=True)
    contact = fields.Nested(ContactOutSchema, required=True)
    attention_level = fields.String(required=True, metadata={"enum": [level.value for level in AttentionLevel]})
    preferred_volunteers = fields.List(fields.String(), required=True)
    notes = fields.String(allow_none=True, metadata={"description": "Only for dispatchers"})
    last_visitor = fields.String(
        allow_none=True, metadata={"description": "The volunteer who made the last visit (preferred for the next)"}
    )
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class HouseholdQuerySchema(NearArgsSchema):
    grid = _grid("Only this grid's")
    attention_level = fields.Enum(AttentionLevel, by_value=True)


class HouseholdPageSchema(ma.Schema):
    items = fields.List(fields.Nested(HouseholdSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class VisitSchema(ma.Schema):
    id = fields.String(required=True)
    household_id = fields.String(required=True)
    need_id = fields.String(
        allow_none=True, metadata={"description": "The companionship visit need, once the visit is due"}
    )
    due_at = fields.String(required=True)
    period_end = fields.String(required=True, metadata={"description": "Overdue when not done by then"})
    status = fields.String(required=True, metadata={"enum": [s.value for s in VisitStatus]})
    attention_level = fields.String(required=True)
    outcome = fields.String(allow_none=True, metadata={"enum": [o.value for o in VisitOutcome]})
    kind = fields.String(
        allow_none=True, attribute="help_kind", metadata={"description": "The kind of help, when needs_help"}
    )
    note = fields.String(allow_none=True)
    help_need_id = fields.String(allow_none=True, metadata={"description": "The need recorded for needs_help"})
    visitor_id = fields.String(allow_none=True)
    closed_at = fields.String(allow_none=True)


class VisitListSchema(ma.Schema):
    items = fields.List(fields.Nested(VisitSchema), required=True)


class VisitQuerySchema(PageArgsSchema):
    status = fields.Enum(
        VisitStatus,
        by_value=True,
        load_default=VisitStatus.DUE,
        metadata={"description": "due (default): their need is out; overdue: not done by the end of their period"},
    )


class VisitPageSchema(ma.Schema):
    items = fields.List(fields.Nested(VisitSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class VisitOutcomeSchema(Schema):
    """all_well, or needs_help with the kind of help."""

    BODY_RULES = {
        "not": {
            "required": ["outcome"],
            "properties": {"outcome": {"enum": ["needs_help"]}},
            "not": {"required": ["kind"]},
        }
    }

    outcome = fields.Enum(VisitOutcome, by_value=True, required=True)
    kind = fields.Enum(
        NeedKind,
        by_value=True,
        metadata={
            "description": "The kind of help needed: required when outcome is needs_help (a need of it is "
            "recorded for the household)"
        },
    )
    note = fields.String(validate=validate.Length(max=2000), allow_none=True)

    @validates_schema
    def _kind_for_help(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("outcome") is VisitOutcome.NEEDS_HELP and "kind" not in data:
            raise ValidationError("Required when outcome is needs_help.", "kind")


REPORT_DAY = r"^20[0-9]{2}-[0-9]{2}-[0-9]{2}$"
"""Days of this century (2000 to 2099), the ones a report may name."""


class ReportQuerySchema(Schema):
    from_ = fields.Date(
        data_key="from",
        metadata={
            "description": "First day (YYYY-MM-DD, in AIDLINE_TIMEZONE, 2000 to 2099), included; 29 days before "
            "`to` if not given; not after `to` (or today), at most 1,098 days before it (422 naming the field)",
            "pattern": REPORT_DAY,
        },
    )
    to = fields.Date(
        metadata={
            "description": "Last day (YYYY-MM-DD, in AIDLINE_TIMEZONE, 2000 to 2099), included; today if not given",
            "pattern": REPORT_DAY,
        }
    )
    group_by = fields.Enum(
        ReportGroup,
        by_value=True,
        metadata={"description": "One row per grid, kind, ISO week, volunteer or team (none: totals only)"},
    )
    format = fields.String(
        load_default="json",
        validate=validate.OneOf(["json", "csv"]),
        metadata={"description": "csv: UTF-8 with a byte order mark, a header line, one line per group, a total line"},
    )
    lang = fields.String(
        load_default="en",
        validate=validate.OneOf(["zh", "en"]),
        metadata={"description": "Language of CSV headings and of group names (kinds)"},
    )

    @validates_schema
    def _span(self, data: dict[str, Any], **_: Any) -> None:
        problem = reports.span_problem(data.get("from_"), data.get("to"))
        if problem is not None:
            raise ValidationError(problem[1], field_name=problem[0])


class DurationSchema(ma.Schema):
    count = fields.Integer(required=True, metadata={"description": "Needs that reached this step"})
    median = fields.Float(required=True, allow_none=True, metadata={"description": "Seconds (null: none)"})
    p90 = fields.Float(required=True, allow_none=True, metadata={"description": "Seconds (null: none)"})


class VisitCountsSchema(ma.Schema):
    due = fields.Integer(required=True)
    done = fields.Integer(required=True)
    overdue = fields.Integer(required=True)


def _count(description: str) -> fields.Integer:
    return fields.Integer(required=True, allow_none=True, metadata={"description": description})


def _rate(description: str) -> fields.Float:
    return fields.Float(
        required=True, allow_none=True, metadata={"description": f"{description}: 0 to 1, null when nothing to count"}
    )


def _duration(description: str) -> fields.Nested:
    return fields.Nested(DurationSchema, required=True, allow_none=True, metadata={"description": description})


class ReportFiguresSchema(ma.Schema):
    """Need figures are null in rows of volunteers and teams (needs are not counted per volunteer)."""

    received = _count("Needs received in the span")
    resolved = _count("Of those, done or closed now")
    resolution_rate = _rate("resolved / received")
    on_time = _count("Resolved needs done by their committed deadline")
    on_time_rate = _rate("on_time / resolved needs that had a committed deadline")
    rated = _count("Resolved needs with a rating")
    satisfaction = _rate("Share of ratings 4 or 5")
    mean_rating = fields.Float(required=True, allow_none=True, metadata={"description": "1 to 5; null: no rating"})
    reopened = _count("Needs reopened at least once")
    escalated = _count("Needs escalated at least once")
    deferred = _count("Needs deferred at least once")
    seconds_to_first_offer = _duration("Intake to the first offer")
    seconds_to_acceptance = _duration("Intake to every place accepted (assigned)")
    seconds_to_done = _duration("Intake to done")
    visits = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["red", "orange", "yellow", "green"])),
        values=fields.Nested(VisitCountsSchema),
        required=True,
        allow_none=True,
        metadata={"description": "Household visits by attention level: due, done and overdue in the span"},
    )
    service_hours = fields.Float(required=True, metadata={"description": "Volunteers' hours, accepted to done"})
    tasks = fields.Integer(required=True, metadata={"description": "Tasks done (one per volunteer and need)"})


class ReportRowSchema(ReportFiguresSchema):
    key = fields.String(required=True, allow_none=True, metadata={"description": "The group (null: no grid, no team)"})
    label = fields.String(required=True, metadata={"description": "The group as people read it"})


class ReportSchema(ma.Schema):
    from_ = fields.Date(data_key="from", attribute="date_from", required=True)
    to = fields.Date(attribute="date_to", required=True)
    group_by = fields.String(required=True, allow_none=True, metadata={"enum": [g.value for g in ReportGroup]})
    timezone = fields.String(required=True, metadata={"description": "The zone of the days (AIDLINE_TIMEZONE)"})
    totals = fields.Nested(ReportFiguresSchema, required=True)
    groups = fields.List(fields.Nested(ReportRowSchema), required=True)
