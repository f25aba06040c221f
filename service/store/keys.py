"""Every Redis key name Aidline uses, built from one prefix (default 'aidline:')."""

from __future__ import annotations


class Keys:
    """Key names; the only place that spells them (the Lua scripts build the same from the prefix)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # needs
    def need(self, need_id: str) -> str:
        return self._k("need", need_id)

    def need_events(self, need_id: str) -> str:
        return self._k("need", need_id, "events")

    def need_offers(self, need_id: str) -> str:
        return self._k("need", need_id, "offers")

    def need_tried(self, need_id: str) -> str:
        return self._k("need", need_id, "tried")

    def need_deliveries(self, need_id: str) -> str:
        return self._k("need", need_id, "deliveries")

    def needs(self) -> str:
        return self._k("needs")

    def needs_with_status(self, status: str) -> str:
        return self._k("needs:status", status)

    def needs_by(self, token_id: str) -> str:
        return self._k("needs:by", token_id)

    def needs_geo(self) -> str:
        return self._k("needs:geo")

    def escalated_geo(self) -> str:
        return self._k("needs:escalated:geo")

    def needs_due(self) -> str:
        return self._k("needs:due")

    def needs_flagged(self) -> str:
        """Needs with a notification that could not be delivered, scored by when it was flagged."""
        return self._k("needs:flagged")

    def tracking(self, code: str) -> str:
        return self._k("track", code)

    # volunteers
    def volunteer(self, volunteer_id: str) -> str:
        return self._k("vol", volunteer_id)

    def volunteer_offers(self, volunteer_id: str) -> str:
        return self._k("vol", volunteer_id, "offers")

    def volunteers(self) -> str:
        return self._k("vols")

    def volunteers_geo(self) -> str:
        return self._k("vols:geo")

    def volunteers_by_phone(self, phone: str) -> str:
        """The ids of the volunteers with this phone (kept by save_volunteer.lua and remove_volunteer.lua)."""
        return self._k("vols:phone", phone)

    def phone_index_complete(self) -> str:
        """Set once every volunteer stored before the phone index existed has been added to it."""
        return self._k("vols:phones-indexed")

    def available(self, skill: str) -> str:
        return self._k("avail", skill)

    def available_pair(self, skill: str, other: str) -> str:
        """Available volunteers with both skills (neither 'general'), the pair in name order."""
        first, second = sorted((skill, other))
        return self._k("avail", f"{first}+{second}")

    # offers
    def offer(self, offer_id: str) -> str:
        return self._k("offer", offer_id)

    def pending_offers(self) -> str:
        return self._k("offers:pending")

    def offer_code(self, code: str) -> str:
        return self._k("offercode", code)

    # incidents
    def incident(self, incident_id: str) -> str:
        return self._k("incident", incident_id)

    def incident_needs(self, incident_id: str) -> str:
        """The incident's needs, scored by when each joined."""
        return self._k("incident", incident_id, "needs")

    def incident_deliveries(self, incident_id: str) -> str:
        return self._k("incident", incident_id, "deliveries")

    def incidents(self) -> str:
        return self._k("incidents")

    def incidents_with_status(self, status: str) -> str:
        return self._k("incidents:status", status)

    def incidents_geo(self) -> str:
        """Every incident's centre."""
        return self._k("incidents:geo")

    def open_incidents_geo(self, family: str) -> str:
        """The centres of the family's open incidents."""
        return self._k("incidents:open", family)

    def recent_needs_geo(self, family: str) -> str:
        """The family's recent needs not in an incident, by place."""
        return self._k("incidents:recent", family)

    def recent_needs_at(self, family: str) -> str:
        """The same needs by arrival (epoch seconds), to forget them after the family's time window."""
        return self._k("incidents:recent_at", family)

    # households (the care register) and their recurring visits
    def household(self, household_id: str) -> str:
        return self._k("household", household_id)

    def household_visits(self, household_id: str) -> str:
        """The household's visits, scored by when each is due."""
        return self._k("household", household_id, "visits")

    def households(self) -> str:
        return self._k("households")

    def households_in_grid(self, grid: str) -> str:
        return self._k("households:grid", grid)

    def households_at_level(self, level: str) -> str:
        return self._k("households:level", level)

    def households_geo(self) -> str:
        return self._k("households:geo")

    def household_phone(self, phone: str) -> str:
        """The household whose contact phone this is."""
        return self._k("households:phone", phone)

    def visit(self, visit_id: str) -> str:
        return self._k("visit", visit_id)

    def visits_with_status(self, status: str) -> str:
        return self._k("visits:status", status)

    def visits_planned(self) -> str:
        """Planned visits, scored by when each becomes due."""
        return self._k("visits:planned")

    def visits_open(self) -> str:
        """Due visits, scored by the end of their period (when each becomes overdue)."""
        return self._k("visits:open")

    def visits_to_create(self) -> str:
        """Needs a visit step promised and not yet written ('visit:<id>' its own, 'help:<id>' its needs_help)."""
        return self._k("visits:to_create")

    # notifications
    def delivery(self, delivery_id: str) -> str:
        return self._k("delivery", delivery_id)

    def delivery_attempts(self, delivery_id: str) -> str:
        return self._k("delivery", delivery_id, "attempts")

    # backlogs that workers drain
    def waiting(self) -> str:
        return self._k("backlog:waiting")

    def outbox(self) -> str:
        return self._k("backlog:outbox")

    def armed(self, name: str) -> str:
        return self._k("backlog:armed", name)

    def lock(self, name: str) -> str:
        return self._k("backlog:lock", name)

    # drills: what a drill created, so it can be removed again
    def drill_needs(self) -> str:
        return self._k("drills:needs")

    def drill_volunteers(self) -> str:
        return self._k("drills:vols")

    # captains: their grids, the grids' rotas, and the escalation ladders
    def captain_grids(self, volunteer_id: str) -> str:
        """The grids a volunteer is captain of: grid -> how many captain tokens name it."""
        return self._k("captain", volunteer_id)

    def grid_captains(self) -> str:
        """Grids with captains: grid -> how many captain tokens name it."""
        return self._k("captains:grids")

    def rota(self, grid: str) -> str:
        return self._k("rota", grid)

    def ladder(self, need_id: str) -> str:
        """The escalation ladder of a need (the Lua scripts build the same)."""
        return self._k("ladder", need_id)

    def ladders_due(self) -> str:
        """Needs whose ladder takes its next step at the score (epoch seconds)."""
        return self._k("ladders:due")

    def ack_code(self, code: str) -> str:
        return self._k("ackcode", code)

    # tokens, counters, markers
    def token(self, digest: str) -> str:
        return self._k("token", digest)

    def token_id(self, token_id: str) -> str:
        return self._k("tokenid", token_id)

    def stat(self, name: str) -> str:
        return self._k("stats", name)

    def histogram(self, name: str) -> str:
        return self._k("hist", name)

    def idempotency(self, digest: str) -> str:
        return self._k("idem", digest)

    def marker(self, name: str) -> str:
        return self._k("once", name)

    # reports: figures kept as events happen (service/store/rollups.py; lib.lua writes the same names)
    def rollup_day(self, day: str) -> str:
        """Figures of one local day (YYYY-MM-DD), fields '<grid>|<kind>|<figure>'."""
        return self._k("rollup:d", day)

    def rollup_week(self, week: str) -> str:
        """Figures of one ISO week (YYYY-Www), fields as rollup_day's."""
        return self._k("rollup:w", week)

    def rollup_month(self, month: str) -> str:
        """Figures of one calendar month (YYYY-MM), fields as rollup_day's."""
        return self._k("rollup:m", month)

    def rollup_volunteers_day(self, day: str) -> str:
        """Volunteers' service of one local day, fields '<volunteer id>|<figure>'."""
        return self._k("rollup:vd", day)

    def rollup_volunteers_week(self, week: str) -> str:
        return self._k("rollup:vw", week)

    def rollup_volunteers_month(self, month: str) -> str:
        return self._k("rollup:vm", month)

    def secret(self, name: str) -> str:
        """A secret the service generated for itself (e.g. the console's session signing key)."""
        return self._k("secret", name)
