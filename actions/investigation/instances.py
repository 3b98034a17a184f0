"""The questions about the instances the events name: age, earlier use, workload, backups."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from actions.investigation.artifacts import DESTRUCTIVE_EVENTS, SHUTDOWN_EVENTS
from actions.investigation.catalogue import (
    Assessment,
    clean,
    mapping,
    parse_time,
    plural,
    rows,
    shown_time,
    stamp,
)
from actions.investigation.sources import Sources, days_text

READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Lookup")
# Tags that say what an instance runs, in the order they are shown.
WORKLOAD_TAGS = ("Name", "Application", "App", "Service", "Role", "Component", "Team", "Owner")
# Tags that name the application an instance serves, the first found wins.
ROLE_TAGS = ("Application", "App", "Service", "Role", "Component")
LISTED = 20


def _ids(src: Sources) -> list[str]:
    return src.artifacts.instance_ids or [
        str(i.get("instance_id")) for i in rows(mapping(src.instances).get("instances"))
    ]


def _described(src: Sources) -> list[dict[str, Any]]:
    return rows(mapping(src.instances).get("instances"))


def _unanswerable(src: Sources, needs: str) -> str | None:
    """Why questions that read ``needs`` (``instances`` or ``history``) cannot be answered."""
    if not _ids(src):
        return "the triggering events name no EC2 instance"
    if needs == "instances" and src.instances is None:
        return src.no_instances()
    if needs == "instances" and not _described(src):
        return "EC2 described none of the instances"
    if needs == "history" and src.history is None:
        return src.no_history()
    if needs == "history" and _resource_events(src) is None:
        return "the history was not asked about these instances (its `resources` parameter)"
    return None


def _no_instances(found: Assessment, src: Sources, question: str) -> bool:
    """Leave the question open when no instance is named, or no description was given."""
    why = _unanswerable(src, "instances")
    if why is not None:
        found.unanswered(question, why)
    return why is not None


def launched(found: Assessment, src: Sources) -> None:
    """When the instances were launched."""
    if _no_instances(found, src, "instances.launched"):
        return
    times = {
        clean(i.get("instance_id")): parse_time(i.get("launch_time")) for i in _described(src)
    }
    known = sorted(t for t in times.values() if t is not None)
    if not known:
        found.unanswered("instances.launched", "EC2 gave no launch time for the instances")
        return
    first, last = known[0], known[-1]
    span = (f"on {first:%Y-%m-%d}" if first.date() == last.date()
            else f"between {first:%Y-%m-%d} and {last:%Y-%m-%d}")
    found.found(
        "instances.launched",
        f"The {plural(len(known), 'described instance')} were launched {span}.",
        {"launched": {i: stamp(t) for i, t in list(times.items())[:LISTED]},
         "earliest": stamp(first), "latest": stamp(last), "described": len(times),
         "not_found": [clean(i) for i in mapping(src.instances).get("not_found") or []][:LISTED]},
        "high",
    )


def _resource_events(src: Sources) -> dict[str, list[dict[str, Any]]] | None:
    """Each instance's events before the triggering ones, from the history (None: no data)."""
    resources = mapping(mapping(src.history).get("resources"))
    moment = src.event_time
    found: dict[str, list[dict[str, Any]]] = {}
    for instance_id in _ids(src):
        if instance_id not in resources:
            continue
        earlier = []
        for event in rows(mapping(resources[instance_id]).get("recent")):
            when = parse_time(event.get("time"))
            if when is None or (moment is not None and when >= moment):
                continue
            earlier.append(
                {"time": stamp(when), "event_name": clean(event.get("event_name")),
                 "by": clean(event.get("by")) or None}
            )
        found[instance_id] = sorted(earlier, key=lambda e: str(e["time"]))
    return found or None


def _history_missing(found: Assessment, src: Sources, question: str) -> dict[str, Any] | None:
    """The instances' earlier events, or None with the question left open, saying why."""
    why = _unanswerable(src, "history")
    if why is not None:
        found.unanswered(question, why)
        return None
    return _resource_events(src)


def _is_principal(src: Sources, by: str | None) -> bool:
    if not by:
        return False
    art = src.artifacts
    arn, name = art.principal.get("arn"), art.name
    return by == arn or (name is not None and (by == name or by.endswith("/" + name)))


def touched_before(found: Assessment, src: Sources) -> None:
    """Whether the principal had called on these instances before the event."""
    events = _history_missing(found, src, "instances.touched_before")
    if events is None:
        return
    by_instance = {i: [e for e in listed if _is_principal(src, e["by"])]
                   for i, listed in events.items()}
    touched = {i: len(listed) for i, listed in by_instance.items() if listed}
    who = src.artifacts.name or "the principal"
    days = days_text(src.window_days)
    if touched:
        answer = (f"Yes: {who} called on {len(touched)} of the {plural(len(events), 'instance')} "
                  f"in the {days} before ({sum(touched.values())} events).")
    else:
        answer = f"No: {who} did not call on any of the {plural(len(events), 'instance')} " \
                 f"checked in the {days} before the event."
    found.found(
        "instances.touched_before",
        answer,
        {"instances_checked": len(events), "touched": touched, "window_days": src.window_days},
        "medium",
        "normal" if touched else "notable",
    )


def stopped_before(found: Assessment, src: Sources) -> None:
    """Earlier stops and terminations of these instances, by anyone."""
    events = _history_missing(found, src, "instances.stopped_before")
    if events is None:
        return
    kinds = DESTRUCTIVE_EVENTS + SHUTDOWN_EVENTS
    stops = {i: [e for e in listed if e["event_name"] in kinds] for i, listed in events.items()}
    stops = {i: listed for i, listed in stops.items() if listed}
    days = days_text(src.window_days)
    if not stops:
        answer = (f"No: none of the {plural(len(events), 'instance')} checked was stopped or "
                  f"terminated in the {days} before the event.")
    else:
        parts = []
        for instance_id, listed in list(stops.items())[:3]:
            last = listed[-1]
            when = parse_time(last["time"])
            parts.append(f"{instance_id} ({last['event_name']} at "
                         f"{shown_time(when) if when else '?'} by {last['by'] or 'unknown'})")
        answer = (f"Yes: {len(stops)} of the {plural(len(events), 'instance')} checked were "
                  f"stopped or terminated in the {days} before: {', '.join(parts)}.")
    found.found(
        "instances.stopped_before",
        answer,
        {"instances_checked": len(events), "stopped_or_terminated": stops,
         "window_days": src.window_days},
        "medium",
    )


def recent_changes(found: Assessment, src: Sources) -> None:
    """Calls that changed these instances before the event (anything but reads)."""
    events = _history_missing(found, src, "instances.recent_changes")
    if events is None:
        return
    changes = {
        i: [e for e in listed if not e["event_name"].startswith(READ_ONLY_PREFIXES)]
        for i, listed in events.items()
    }
    changes = {i: listed[-5:] for i, listed in changes.items() if listed}
    names: dict[str, int] = {}
    for listed in changes.values():
        for event in listed:
            names[event["event_name"]] = names.get(event["event_name"], 0) + 1
    days = days_text(src.window_days)
    answer = (
        f"No change to the {plural(len(events), 'instance')} checked in the {days} before the "
        "event." if not changes else
        f"{len(changes)} of the {plural(len(events), 'instance')} checked were changed in the "
        f"{days} before: " + ", ".join(f"{n} {name}" for name, n in names.items()) + "."
    )
    found.found(
        "instances.recent_changes",
        answer,
        {"instances_checked": len(events), "changes": changes, "by_event_name": names,
         "window_days": src.window_days},
        "medium",
    )


def workload(found: Assessment, src: Sources) -> None:
    """What the instances run: their tags, image, type, and whether they are production."""
    if _no_instances(found, src, "instances.workload"):
        return
    described: list[dict[str, Any]] = []
    for instance in _described(src):
        tags = {clean(k, 64): clean(v, 128) for k, v in mapping(instance.get("tags")).items()}
        image = mapping(instance.get("launched_from"))
        described.append(
            {
                "instance_id": clean(instance.get("instance_id")),
                "name": tags.get("Name"),
                "workload_tags": {k: tags[k] for k in WORKLOAD_TAGS if k in tags},
                "instance_type": clean(instance.get("instance_type")) or None,
                "image_id": clean(image.get("image_id")) or None,
                "image_name": clean(image.get("name")) or None,
                "production": bool(instance.get("production")),
                "state": clean(instance.get("state")) or None,
            }
        )
    production = [d for d in described if d["production"]]
    roles = _distinct(
        next((d["workload_tags"][k] for k in ROLE_TAGS if d["workload_tags"].get(k)), None)
        for d in described
    )
    images = _distinct(d["image_name"] or d["image_id"] for d in described)
    answer = f"{len(production)} of the {plural(len(described), 'described instance')} are " \
             "production"
    if roles:
        answer += f"; they run {', '.join(roles[:5])}"
    if images:
        answer += f"; launched from {', '.join(images[:5])}"
    types = _distinct(d["instance_type"] for d in described)
    if types:
        answer += f" ({', '.join(types[:5])})"
    found.found(
        "instances.workload",
        answer + ".",
        {"instances": described[:LISTED], "described": len(described),
         "production": len(production), "workloads": roles[:LISTED], "images": images[:LISTED]},
        "high",
    )


def recovery(found: Assessment, src: Sources) -> None:
    """Which instances have an AMI or snapshots taken before the event to be rebuilt from."""
    if _no_instances(found, src, "instances.recovery"):
        return
    moment = src.event_time
    points: dict[str, dict[str, Any]] = {}
    for instance in _described(src):
        images = [i for i in rows(instance.get("images"))
                  if i.get("state") == "available" and _before(i.get("created"), moment)]
        snapshots = [s for s in rows(instance.get("snapshots"))
                     if s.get("state") == "completed" and _before(s.get("started"), moment)]
        newest = images[0] if images else None
        points[clean(instance.get("instance_id"))] = {
            "image_id": clean(newest.get("image_id")) if newest else None,
            "image_created": newest.get("created") if newest else None,
            "snapshots": len(snapshots),
            "production": bool(instance.get("production")),
        }
    ready = [i for i, p in points.items() if p["image_id"] or p["snapshots"]]
    without = [i for i in points if i not in ready]
    answer = (f"{len(ready)} of the {plural(len(points), 'described instance')} have an AMI or "
              "snapshots taken before the event")
    if without:
        answer += f"; none for {', '.join(without[:5])}"
    found.found(
        "instances.recovery",
        answer + ".",
        {"recoverable": len(ready), "described": len(points), "without_backup": without[:LISTED],
         "by_instance": dict(list(points.items())[:LISTED])},
        "high",
    )


def _before(value: object, moment: datetime | None) -> bool:
    when = parse_time(value)
    return when is not None and (moment is None or when < moment)


def _distinct(values: Any) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def production_ids(instances: Mapping[str, Any] | None) -> set[str]:
    """The production instances of an ``aws.ec2.describe_instances`` output."""
    listed = mapping(instances).get("production")
    return {str(i) for i in listed} if isinstance(listed, list) else set()
