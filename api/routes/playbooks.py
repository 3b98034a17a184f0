"""Playbooks: the loaded ones and the problems of the files that did not load."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import IdInPath, LibraryDep, ResponderCaller, SettingsDep
from api.schemas import PlaybookDetail, PlaybookList, PlaybookOut, ProblemOut
from engine.store.errors import NotFound

router = APIRouter(prefix="/v1/playbooks", tags=["playbooks"])


@router.get("")
def get_playbooks(
    caller: ResponderCaller, library: LibraryDep, settings: SettingsDep
) -> PlaybookList:
    """List the loaded playbooks (with the mode of the runs alerts start) and every problem of
    the invalid files."""
    loaded = library.current()
    return PlaybookList(
        playbooks=[PlaybookOut.of(loaded[name], default_mode=settings.default_mode)
                   for name in sorted(loaded)],
        problems=[ProblemOut.of(p, directory=library.directory) for p in library.problems],
    )


@router.get("/{name}", responses={404: {"description": "No playbook of that name is loaded."}})
def get_playbook(
    name: IdInPath, caller: ResponderCaller, library: LibraryDep, settings: SettingsDep
) -> PlaybookDetail:
    """Show one loaded playbook with its YAML text."""
    playbook = library.current().get(name)
    if playbook is None:
        raise NotFound(f"no playbook {name!r} is loaded")
    return PlaybookDetail.detailed(playbook, default_mode=settings.default_mode)
