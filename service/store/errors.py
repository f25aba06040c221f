"""Why the store refused a change: one vocabulary for every script's refusals."""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    """A script's refusal; the domain maps each one to an error people understand."""

    EXISTS = "exists"
    NO_NEED = "no_need"
    NO_OFFER = "no_offer"
    NO_VOLUNTEER = "no_volunteer"
    NEED_STATUS = "need_status"
    OFFER_STATUS = "offer_status"
    NEED_FULL = "need_full"
    ROLE_FILLED = "role_filled"
    STAFFED = "staffed"
    AT_CAPACITY = "at_capacity"
    OFF_DUTY = "off_duty"
    LACKS_SKILLS = "lacks_skills"
    ALREADY_OFFERED = "already_offered"
    NOT_DUE = "not_due"
    MAX_OFFERS = "max_offers"
    NO_INCIDENT = "no_incident"
    INCIDENT_STATUS = "incident_status"
    NOT_DRILL = "not_drill"
    BUSY = "busy"
    NO_LADDER = "no_ladder"
    LADDER_STATUS = "ladder_status"
    NO_HOUSEHOLD = "no_household"
    PHONE_TAKEN = "phone_taken"
    NO_VISIT = "no_visit"
    VISIT_STATUS = "visit_status"


class Refused(Exception):
    """The store did not make a change; `detail` names the current status or the missing skill."""

    def __init__(self, reason: Refusal, detail: str | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
