"""Joint assignment: who goes where when several needs wait at once, as a pure choice.

Needs waiting at the same moment compete for the same volunteers. Matching them one by one,
nearest first, lets the first need take a volunteer another need was the only one near to, and
sends people further than they need to go. Here every open place of every need is a row,
every free unit of a volunteer's capacity a column, and the cost of a pair the distance;
scipy's `linear_sum_assignment` (a shortest-augmenting-path Hungarian method) finds the
assignment that fills as many places as possible with the least total travel. A place may
also stay unfilled (a column of its own at a cost above any distance), so a need nobody can
reach does not distort the others; an urgent need's place costs far more to leave unfilled, so
urgent needs are served first. With volunteers to spare and no two needs wanting the same
one, the result is each need's own first choice: what nearest-first gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

UNFILLED = 1e6
"""The cost of leaving a place unfilled: more than any travel."""

URGENT_UNFILLED = 1e8
"""The cost of leaving an urgent need's place unfilled: more than any number of ordinary places."""

IMPOSSIBLE = 1e9
"""The cost of a pair that cannot be: a volunteer the need did not list."""

ORDER_WEIGHT = 1e-6
"""Added per step down a need's own order of choice, so equal distances keep that order (ties, fair load)."""


@dataclass(frozen=True)
class Option:
    """A volunteer a need could be offered: how far, and how many more tasks they can take."""

    volunteer_id: str
    distance_km: float
    free: int


@dataclass(frozen=True)
class Wanting:
    """A need with open places and the volunteers it could have, in its own order of choice."""

    need_id: str
    places: int
    options: tuple[Option, ...]
    urgent: bool = False


def assign_jointly(wanting: list[Wanting]) -> dict[str, list[str]]:
    """The volunteers each need gets: urgent places filled first, then the most places, then the
    least total travel.

    A volunteer is given at most their free capacity, and to one need at most once (a rare
    case for needs of several people, settled by solving again without the repeat).
    Needs that get nobody are absent.
    """
    rows = [(w.need_id, w.options, w.urgent) for w in wanting for _ in range(max(w.places, 0))]
    if not rows:
        return {}
    free: dict[str, int] = {}
    for w in wanting:
        for option in w.options:
            free[option.volunteer_id] = max(free.get(option.volunteer_id, 0), option.free)
    slots = [vid for vid, n in free.items() for _ in range(min(n, len(rows)))]
    column_of: dict[str, list[int]] = {}
    for column, vid in enumerate(slots):
        column_of.setdefault(vid, []).append(column)
    cost = np.full((len(rows), len(slots) + len(rows)), IMPOSSIBLE)
    for r, (_, options, urgent) in enumerate(rows):
        cost[r, len(slots) :] = URGENT_UNFILLED if urgent else UNFILLED
        for rank, option in enumerate(options):
            for column in column_of[option.volunteer_id]:
                cost[r, column] = option.distance_km + rank * ORDER_WEIGHT
    while True:
        chosen_rows, chosen_columns = linear_sum_assignment(cost)
        given: dict[str, list[str]] = {}
        twice = []
        for r, column in zip(chosen_rows, chosen_columns, strict=True):
            if column >= len(slots) or cost[r, column] >= IMPOSSIBLE:
                continue
            need_id, vid = rows[r][0], slots[column]
            if vid in given.setdefault(need_id, []):
                twice.append((r, vid))
            else:
                given[need_id].append(vid)
        if not twice:
            return {need_id: vids for need_id, vids in given.items() if vids}
        # two places of one need went to one person (two units of their capacity): forbid it, solve again
        for r, vid in twice:
            cost[r, column_of[vid]] = IMPOSSIBLE
