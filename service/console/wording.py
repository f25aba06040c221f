"""The service's messages in the console's language: the schemas' field messages (marshmallow's own and
Aidline's) and the lifecycle's refusals.

The JSON API answers them in English, as its contract says; the console shows the same messages in its pages,
so a zh console says them in Chinese. A message with values in it (the allowed choices, a range, a status) is
matched by its pattern and its values kept; a message not known here is shown as it is."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext, lazy_gettext

from service.console.present import STATUS_NAMES
from service.exceptions import AidlineError, InvalidTransition
from service.models import GRID_NAME_RULE


def N_(text: str) -> str:  # noqa: N802 (the name the message extractor knows)
    """Marks a message for the catalog; it is translated where it is said, with its values."""
    return text


FIXED = {
    "Missing data for required field.": lazy_gettext("Required."),
    "Field may not be null.": lazy_gettext("Required."),
    "Unknown field.": lazy_gettext("Unknown field."),
    "Not a valid number.": lazy_gettext("Not a valid number."),
    "Not a valid integer.": lazy_gettext("Not a whole number."),
    "Not a valid datetime.": lazy_gettext("Not a valid date and time."),
    "Not a valid list.": lazy_gettext("Not a valid list."),
    "Not a valid string.": lazy_gettext("Not a valid text."),
    "Not a valid boolean.": lazy_gettext("Not yes or no."),
    "Must be a phone number in E.164 form, like +8613800000001.": lazy_gettext(
        "Must be a phone number in international form, like +8613800000001."
    ),
    "Send location {lat, lon}, an address, or a household_id.": lazy_gettext(
        "Give the place: a point on the map (latitude and longitude) or an address."
    ),
    "Send roles, or skills and volunteers_needed, not both.": lazy_gettext(
        "Give either roles, or skills and the number of volunteers, not both."
    ),
    GRID_NAME_RULE: lazy_gettext("Must be 1 to 50 characters without spaces, commas or slashes, like grid-2."),
}
"""Messages without values, as the console says them."""

PATTERNS = [
    (
        re.compile(r"^Must be greater than or equal to (?P<low>\S+) and less than or equal to (?P<high>\S+)\.$"),
        N_("Must be from %(low)s to %(high)s."),
    ),
    (re.compile(r"^Must be greater than or equal to (?P<low>\S+)\.$"), N_("Must be at least %(low)s.")),
    (re.compile(r"^Must be less than or equal to (?P<high>\S+)\.$"), N_("Must be at most %(high)s.")),
    (re.compile(r"^Must be one of: (?P<choices>.+)\.$"), N_("Must be one of: %(choices)s.")),
    (re.compile(r"^Longer than maximum length (?P<high>\d+)\.$"), N_("At most %(high)s characters.")),
    (re.compile(r"^Shorter than minimum length (?P<low>\d+)\.$"), N_("At least %(low)s characters.")),
]
"""Messages with values: the values are kept, the words said in the console's language."""


def field_message(message: Any) -> str:
    """One field message in the console's language (as it is when not known here)."""
    text = str(message)
    if text in FIXED:
        return str(FIXED[text])
    for pattern, words in PATTERNS:
        found = pattern.match(text)
        if found:
            return str(gettext(words, **found.groupdict()))
    return text


REFUSED_ACTIONS = {
    "start_matching": N_("A need that is %(status)s cannot be searched for."),
    "escalate": N_("A need that is %(status)s cannot be escalated."),
    "assign": N_("A need that is %(status)s cannot be assigned."),
    "rematch": N_("A need that is %(status)s cannot be searched for again."),
    "defer": N_("A need that is %(status)s cannot be deferred."),
    "reopen": N_("A need that is %(status)s cannot be reopened."),
    "cancel": N_("A need that is %(status)s cannot be cancelled."),
    "en_route": N_("A need that is %(status)s cannot be set on its way."),
    "on_site": N_("A need that is %(status)s cannot be marked arrived."),
    "done": N_("A need that is %(status)s cannot be marked done."),
    "close": N_("A need that is %(status)s cannot be closed."),
}
"""The lifecycle's refusal for each action (service.lifecycle.Action), as the console says it."""

PRIORITY = re.compile(r"^cannot change the priority of a (?P<status>[a-z_]+) need$")


def refusal(error: AidlineError) -> str:
    """A refused action's reason in the console's language: the lifecycle's refusals are said in it, the others
    as the service words them."""
    if isinstance(error, InvalidTransition):
        status = STATUS_NAMES.get(error.current)
        if error.action in REFUSED_ACTIONS and status is not None:
            return str(gettext(REFUSED_ACTIONS[error.action], status=status))
        if PRIORITY.match(error.message) and status is not None:
            return str(gettext("The priority of a need that is %(status)s cannot be changed.", status=status))
    return error.message
