"""Report endpoints: the numbers managers read, as JSON or CSV."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView

from service import reports
from service.api.auth import current_principal, deps, errors, requires
from service.api.blueprint import Blueprint
from service.api.schemas import ReportQuerySchema, ReportSchema
from service.models import Role

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Reports: the numbers managers read")

CSV_ANSWER = {
    "responses": {
        200: {
            "content": {
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": "With format=csv: UTF-8 with a byte order mark, a header line, one line "
                        "per group and a total line",
                    }
                }
            }
        }
    }
}


@blp.route("/summary")
class Summary(MethodView):
    @requires(blp, Role.DISPATCHER, Role.OPS)
    @blp.arguments(ReportQuerySchema, location="query", unknown="raise")
    @blp.response(200, ReportSchema)
    @blp.doc(**CSV_ANSWER)
    @errors(blp, 422)
    def get(self, args: dict[str, Any]) -> Any:
        """Needs received and resolved, rates, times from intake, visits and service hours over a span of days,
        in total and one row per group; `format=csv` for a spreadsheet."""
        report = reports.summary(
            deps=deps(),
            principal=current_principal(),
            date_from=args.get("from_"),
            date_to=args.get("to"),
            group_by=args.get("group_by"),
            locale=args["lang"],
        )
        if args["format"] == "csv":
            name = f"aidline-report-{report.date_from}-{report.date_to}.csv"
            return Response(
                reports.to_csv(report, locale=args["lang"]).encode("utf-8"),
                mimetype="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return report
