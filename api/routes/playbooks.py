"""Playbooks: the loaded ones and the problems of the files that did not load."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import IdInPath, LibraryDep, ResponderCaller, SettingsDep
from api.pagination import DEFAULT_LIMIT, Limit, PlaybookCursor, page
from api.problems import AUTHENTICATED, problems
from api.query import STRICT_QUERY
from api.schemas import PlaybookDetail, PlaybookList, PlaybookOut, ProblemOut
from engine.store.errors import NotFound

router = APIRouter(prefix="/v1/playbooks", tags=["playbooks"],
                   dependencies=STRICT_QUERY)


@router.get("", operation_id="listPlaybooks", responses=problems(*AUTHENTICATED, 422))
def get_playbooks(
    request: Request, caller: ResponderCaller, library: LibraryDep, settings: SettingsDep,
    limit: Limit = DEFAULT_LIMIT, cursor: PlaybookCursor = None,
) -> PlaybookList:
    """List the loaded playbooks by name (with the mode of the runs alerts start) and every
    problem of the invalid files (on every page)."""
    loaded = library.current()
    names = [name for name in sorted(loaded) if cursor is None or name > cursor]
    shown, next_page = page(request, names[:limit + 1], limit=limit, cursor=lambda name: name)
    return PlaybookList(
        playbooks=[PlaybookOut.of(loaded[name], default_mode=settings.default_mode)
                   for name in shown],
        problems=[ProblemOut.of(p, directory=library.directory) for p in library.problems],
        next=next_page,
    )


@router.get("/{name}", operation_id="getPlaybook",
            responses=problems(*AUTHENTICATED, 404, 422,
                               described={404: "No playbook of that name is loaded."}))
def get_playbook(
    name: IdInPath, caller: ResponderCaller, library: LibraryDep, settings: SettingsDep
) -> PlaybookDetail:
    """Show one loaded playbook with its YAML text."""
    playbook = library.current().get(name)
    if playbook is None:
        raise NotFound(f"no playbook {name!r} is loaded")
    return PlaybookDetail.detailed(playbook, default_mode=settings.default_mode)
