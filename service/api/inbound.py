"""Answering offers by SMS, for volunteers without data service (outage mode)."""

from __future__ import annotations

import hmac
import re
from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView
from marshmallow import EXCLUDE, ValidationError, fields, validate, validates_schema

from service import captains, offers
from service.api.auth import deps, errors
from service.api.blueprint import IDEMPOTENCY_KEY, Blueprint
from service.api.schemas import ErrorSchema
from service.exceptions import Forbidden, InvalidInput

blp = Blueprint("inbound", __name__, url_prefix="/api/v1/inbound", description="Inbound SMS replies", form_bodies=True)

REPLY = re.compile(  # in any letter case; spelled out so that the OpenAPI document can state the same pattern
    r"^\s*([Yy](?:[Ee][Ss])?|[Oo][Kk]|[Aa][Cc][Cc][Ee][Pp][Tt]|是|接受|[Nn][Oo]?|[Dd][Ee][Cc][Ll][Ii][Nn][Ee]|否|拒绝"
    r"|[Aa][Cc][Kk]|确认|收到)"
    r"\s*[:#]?\s*([0-9]{4,8})\s*$"
)
REPLY_TEXT = [
    validate.Length(min=1, max=1600),
    validate.Regexp(
        REPLY,
        error="Not YES <code>, NO <code> or ACK <code> "
        "(also Y, OK, ACCEPT, 是, 接受; N, DECLINE, 否, 拒绝; 确认, 收到).",
    ),
]
ACCEPT_WORDS = {"YES", "Y", "OK", "ACCEPT", "是", "接受"}
ACK_WORDS = {"ACK", "确认", "收到"}
"""A captain acknowledging an escalation with its code."""


class InboundSmsSchema(ma.Schema):
    """JSON {from, body}, or a gateway's form post with From and Body (other fields are ignored)."""

    class Meta:
        unknown = EXCLUDE

    sender = fields.String(
        data_key="from", validate=validate.Length(min=1, max=32), metadata={"description": "The sender's phone number"}
    )
    text = fields.String(data_key="body", validate=REPLY_TEXT, metadata={"description": "The reply, e.g. YES 4821"})
    From = fields.String(validate=validate.Length(min=1, max=32), metadata={"description": "As from (form posts)"})
    Body = fields.String(validate=REPLY_TEXT, metadata={"description": "As body (form posts)"})

    @validates_schema
    def _has_text(self, data: dict[str, Any], **_: Any) -> None:
        if not (data.get("text") or data.get("Body")):
            raise ValidationError("Missing the message text.", "body")
        if not (data.get("sender") or data.get("From")):
            raise ValidationError("Missing the sender's phone number.", "from")


INBOUND_BODY = {
    "allOf": [
        InboundSmsSchema,
        {"anyOf": [{"required": ["from"]}, {"required": ["From"]}]},
        {"anyOf": [{"required": ["body"]}, {"required": ["Body"]}]},
    ]
}
"""The sender (from or From) and the text (body or Body) are both required."""


class InboundResultSchema(ma.Schema):
    result = fields.String(required=True, metadata={"enum": ["accepted", "declined", "acknowledged"]})
    offer_id = fields.String(metadata={"description": "The offer answered (not for acknowledged)"})
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
                "application/json": {"schema": INBOUND_BODY},
                "application/x-www-form-urlencoded": {"schema": INBOUND_BODY},
            },
        },
        parameters=[
            {
                "name": "X-Aidline-Secret",
                "in": "header",
                "schema": {"type": "string"},
                "required": False,
                "description": "The shared secret (or ?secret=...); 403 when it is wrong or missing",
            },
            {
                "name": "secret",
                "in": "query",
                "schema": {"type": "string"},
                "required": False,
                "description": "The shared secret, for gateways that cannot send a header",
            },
            dict(IDEMPOTENCY_KEY),
        ],
    )
    @blp.alt_response(
        403,
        schema=ErrorSchema,
        description="Wrong or missing shared secret, or inbound SMS is not configured (AIDLINE_INBOUND_SMS_SECRET)",
    )
    @errors(blp, 404, 409, 422)
    def post(self, message: dict[str, str]) -> dict[str, str]:
        """Accept or decline an offer by SMS: 'YES 4821' or 'NO 4821' from the volunteer's phone; or acknowledge
        an escalation: 'ACK 123456' from the phone of a captain of the need's grid."""
        check_secret()
        text = message.get("text") or message.get("Body") or ""
        sender = (message.get("sender") or message.get("From") or "").strip()
        match = REPLY.match(text)
        if match is None:
            raise InvalidInput("reply with YES <code> or NO <code>", errors={"json": {"body": ["Not YES/NO <code>."]}})
        word, code = match.group(1).upper(), match.group(2)
        if word in ACK_WORDS:
            captains.acknowledge_by_code(deps=deps(), code=code, sender=sender)
            need_id = deps().store.captains.need_for_code(code) or ""
            return {"result": "acknowledged", "need_id": need_id}
        accept = word in ACCEPT_WORDS
        offer = offers.answer_by_code(deps=deps(), code=code, sender=sender, accept=accept)
        return {"result": "accepted" if accept else "declined", "offer_id": offer.id, "need_id": offer.need_id}
