"""The one set of dependencies a worker process runs its jobs with.

`aidline worker` builds it once per process from its settings and connection (the composition
root, service.bootstrap) and installs it here before the first job; tests install their own.
"""

from __future__ import annotations

from service.deps import Deps

_installed: Deps | None = None


def install(deps: Deps | None) -> None:
    """Make `deps` what this process's jobs run with (None forgets it)."""
    global _installed
    _installed = deps


def current_deps() -> Deps:
    """The installed dependencies; a job run outside `aidline worker` without them is a setup error."""
    if _installed is None:
        raise RuntimeError("no dependencies installed in this worker process: run jobs with `aidline worker`")
    return _installed
