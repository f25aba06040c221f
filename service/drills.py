"""Drills: removing everything a drill created (needs and volunteers marked `drill`).

A drill (`aidline drill`, service/drill/) plays a scenario against a running Aidline through the
API, marking what it creates. Cleaning removes the drill needs first (a live offer frees its
volunteer, also one the drill did not create), then the drill volunteers (a pending offer on a
need that is not from a drill is withdrawn and that need matched again). A volunteer holding an
accepted offer is kept: the need they work on is not from a drill, and it is not taken from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service import clock, jobs
from service.backlog import wait_for_match
from service.deps import Deps
from service.store import Refusal, Refused

REASON = "drill cleaned up"


@dataclass
class Cleaned:
    """What one clean removed, and which drill volunteers it kept, with why."""

    needs_removed: int = 0
    volunteers_removed: int = 0
    volunteers_kept: list[dict[str, str]] = field(default_factory=list)
    needs_rematched: list[str] = field(default_factory=list)


def clean_drills(*, deps: Deps) -> Cleaned:
    """Remove every drill need, then every drill volunteer not busy with a need that is not from a drill."""
    result = Cleaned()
    freed: set[str] = set()
    for need_id in deps.store.drills.need_ids():
        moment = deps.clock.now()
        try:
            freed.update(
                deps.store.drills.remove_need(
                    need_id, now_iso=clock.iso(moment), now_epoch=clock.epoch(moment), reason=REASON
                )
            )
        except Refused as refused:
            if refused.reason in (Refusal.NO_NEED, Refusal.NOT_DRILL):
                continue
            raise
        result.needs_removed += 1
    touched: list[str] = []
    removed: set[str] = set()
    for volunteer_id in deps.store.drills.volunteer_ids():
        moment = deps.clock.now()
        try:
            touched += deps.store.drills.remove_volunteer(
                volunteer_id, now_iso=clock.iso(moment), now_epoch=clock.epoch(moment), reason=REASON
            )
        except Refused as refused:
            if refused.reason is Refusal.BUSY:
                result.volunteers_kept.append(
                    {
                        "id": volunteer_id,
                        "reason": f"holds an accepted offer on need {refused.detail}, which is not from a drill",
                    }
                )
                continue
            if refused.reason in (Refusal.NO_VOLUNTEER, Refusal.NOT_DRILL):
                continue
            raise
        removed.add(volunteer_id)
        result.volunteers_removed += 1
    for need_id in dict.fromkeys(touched):
        need = deps.store.needs.get(need_id)
        if need is not None:
            wait_for_match(deps, need)
            result.needs_rematched.append(need_id)
    for volunteer_id in sorted(freed - removed):
        if deps.store.volunteers.get(volunteer_id) is not None:
            # capacity came free on a volunteer who stays: escalated needs nearby may now have one
            deps.jobs.enqueue(jobs.REMATCH_NEAR, queue=jobs.DEFAULT, volunteer_id=volunteer_id)
    return result
