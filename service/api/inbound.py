"""Answering offers by SMS, for volunteers without data service (outage mode)."""

from __future__ import annotations

import hmac
import re
from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView
from marshmallow import EXCLUDE, ValidationError, fields, validate, validates_schema

from service import offers
from service.api.auth import deps, errors
from service.api.blueprint import Blueprint
from service.exceptions import Forbidden, InvalidInput

blp = Blueprint("inbound", __name__, url_prefix="/api/v1/inbound", description="Inbound SMS replies")

REPLY = re.compile(r"^\s*(YES|Y|OK|ACCEPT|是|接受|NO|N|DECLINE|否|拒绝)\s*[:#]?\s*(\d{4,8})\s*$", re.IGNORECASE)
ACCEPT_WORDS = {"YES", "Y", "OK", "ACCEPT", "是", "接受"}


class InboundSmsSchema(ma.Schema):
    """JSON {from, body}, or a gateway's form post with From and Body (other fields are ignored)."""

    class Meta:
        unknown = EXCLUDE

    sender = fields.String(data_key="from", validate=validate.Length(max=32))
    text = fields.String(data_key="body", validate=validate.Length(max=1600))
    From = fields.String(validate=validate.Length(max=32))
    Body = fields.String(validate=validate.Length(max=1600))

    @validates_schema
    def _has_text(self, data: dict, **_: Any) -> None:
        if not (data.get("text") or data.get("Body")):
            raise ValidationError("Missing the message text.", "body")
        if not (data.get("sender") or data.get("From")):
            raise ValidationError("Missing the sender's phone number.", "from")


class InboundResultSchema(ma.Schema):
    result = fields.String(required=True, metadata={"enum": ["accepted", "declined"]})
    offer_id = fields.String(required=True)
    need_id = fields.String(required=True)


def check_secret() -> None:
    expected = deps().settings.inbound_sms_secret
    if not expected:
        raise Forbidden("inbound SMS is not configured (AIDLINE_INBOUND_SMS_SECRET)")
    given = request.headers.get("X-Aidline-Secret") or request.args.get("secret", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("wrong or missing shared secret")


@blp.route("/sms")
class InboundSms(MethodView):
    @blp.arguments(InboundSmsSchema, location="json_or_form")
    @blp.response(200, InboundResultSchema)
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "application/json": {"schema": InboundSmsSchema},
                "application/x-www-form-urlencoded": {"schema": InboundSmsSchema},
            },
        },
        parameters=[
            {
                "name": "X-Aidline-Secret",
                "in": "header",
                "schema": {"type": "string"},
                "required": False,
                "description": "The shared secret (or ?secret=...)",
            }
        ],
    )
    @errors(blp, 404, 409, 422)
    def post(self, message: dict[str, str]) -> dict[str, str]:
        """Accept or decline an offer by SMS: 'YES 4821' or 'NO 4821' from the volunteer's phone."""
        check_secret()
        text = message.get("text") or message.get("Body") or ""
        sender = (message.get("sender") or message.get("From") or "").strip()
        match = REPLY.match(text)
        if match is None:
            raise InvalidInput("reply with YES <code> or NO <code>", errors={"json": {"body": ["Not YES/NO <code>."]}})
        word, code = match.group(1).upper(), match.group(2)
        accept = word in ACCEPT_WORDS
        offer = offers.answer_by_code(deps=deps(), code=code, sender=sender, accept=accept)
        return {"result": "accepted" if accept else "declined", "offer_id": offer.id, "need_id": offer.need_id}
