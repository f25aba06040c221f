"""The catalog of need kinds and skills, for building forms."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from service import messages
from service.api.auth import requires
from service.api.blueprint import Blueprint
from service.api.schemas import CatalogSchema
from service.catalog import catalog
from service.models import Role

blp = Blueprint("catalog", __name__, url_prefix="/api/v1/catalog", description="Kinds of need and skills")


@blp.route("")
class Catalog(MethodView):
    @requires(blp, *Role)
    @blp.response(200, CatalogSchema)
    def get(self) -> dict[str, Any]:
        """Need kinds with their default skills, radius and deadlines (minutes), and all skills; each kind and
        skill with its name as people read it, in English and Chinese (`labels`, `skill_labels`)."""
        body = catalog()
        for kind in body["kinds"]:
            kind["labels"] = {lang: messages.kind_name(kind["name"], lang) for lang in LANGUAGES}
        body["skill_labels"] = {
            skill: {lang: messages.skill_name(skill, lang) for lang in LANGUAGES} for skill in body["skills"]
        }
        return body


LANGUAGES = ("en", "zh")
