"""The catalog of need kinds and skills, for building forms."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

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
        """Need kinds with their default skills, radius and deadlines (minutes), and all skills."""
        return catalog()
