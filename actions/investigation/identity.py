"""The questions about the principal and the account: access, changes, sign-ins, MFA, purpose."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from actions.investigation.activity import NEW_WITHIN
from actions.investigation.catalogue import (
    Assessment,
    clean,
    count,
    mapping,
    parse_time,
    plural,
    rows,
    shown_time,
    stamp,
)
from actions.investigation.sources import Sources, days_text

# This many failed sign-ins in the day before the event is an attack on the password, not a typo.
FAILURES_UNUSUAL = 3
LISTED = 10  # policies, groups, changes listed in evidence


def access(found: Assessment, src: Sources) -> None:
    """What the principal may do: groups, policies, credentials (aws.iam.describe_principal)."""
    if src.principal is None:
        found.unanswered("principal.access", src.no_principal())
        return
    p = src.principal
    kind = clean(p.get("type")) or src.artifacts.principal_kind
    name = clean(p.get("name")) or src.artifacts.name or "the principal"
    groups = [clean(g.get("name")) for g in rows(p.get("groups"))]
    attached = [clean(x.get("name")) for x in rows(p.get("attached_policies"))]
    inline = [clean(x.get("name")) for x in rows(p.get("inline_policies"))]
    through_groups = sorted({
        clean(x.get("name"))
        for g in rows(p.get("groups"))
        for x in rows(g.get("attached_policies"))
    })
    keys = rows(p.get("access_keys"))
    active = [clean(k.get("id")) for k in keys if k.get("status") == "Active"]
    evidence: dict[str, Any] = {
        "type": kind,
        "name": name,
        "arn": clean(p.get("arn")) or None,
        "groups": groups[:LISTED],
        "attached_policies": attached[:LISTED],
        "inline_policies": inline[:LISTED],
        "policies_through_groups": through_groups[:LISTED],
        "created": p.get("created"),
        "summary": clean(p.get("summary"), 400) or None,
    }
    parts = [f"{kind} {name}"]
    if kind == "user":
        evidence.update(
            access_keys=len(keys),
            active_access_keys=active,
            console_password=bool(mapping(p.get("console_password")).get("exists")),
            mfa_enabled=bool(p.get("mfa_enabled")),
        )
        parts.append(f"in {plural(len(groups), 'group')}" + (f" ({', '.join(groups)})"
                                                              if groups else ""))
    else:
        trusted = mapping(p.get("trusted_principals"))
        evidence["trusted_principals"] = {clean(k): [clean(v) for v in vals][:LISTED]
                                          for k, vals in trusted.items() if isinstance(vals, list)}
    policies = list(dict.fromkeys([*attached, *through_groups]))
    parts.append(
        f"with {plural(len(policies), 'managed policy', 'managed policies')}"
        + (f" ({', '.join(policies[:LISTED])})" if policies else "")
        + f" and {plural(len(inline), 'inline policy', 'inline policies')}"
    )
    if kind == "user":
        parts.append(
            f"{len(active)} of {plural(len(keys), 'access key')} active, "
            f"{'a' if evidence['console_password'] else 'no'} console password, "
            f"{'an' if evidence['mfa_enabled'] else 'no'} MFA device"
        )
    found.found("principal.access", "; ".join(parts) + ".", evidence, "high")


def recent_changes(found: Assessment, src: Sources) -> None:
    """Changes to the principal: IAM's dated ones and CloudTrail's (policies, keys, password)."""
    if src.principal is None and src.history is None:
        found.unanswered(
            "principal.recent_changes", f"{src.no_principal()}, and {src.no_history()}"
        )
        return
    moment = src.event_time
    iam = [
        {"when": c.get("when"), "change": clean(c.get("change")), "of": clean(c.get("of")) or None}
        for c in rows(mapping(src.principal).get("recent_changes"))
    ]
    # The changes before the event: a triggering call that changed the principal (a new access
    # key, a policy) is the event itself, not a change before it.
    trail = [
        {
            "time": c.get("time"),
            "event_name": clean(c.get("event_name")),
            "by": clean(c.get("by")) or None,
            "source_ip": clean(c.get("source_ip")) or None,
            "succeeded": c.get("succeeded"),
            "details": {clean(k): clean(v) for k, v in mapping(c.get("details")).items()},
        }
        for c in rows(mapping(src.history).get("principal_changes"))
        if moment is None or ((t := parse_time(c.get("time"))) is not None and t < moment)
    ]
    soon = [
        c for c in trail
        if c["succeeded"] is not False and moment is not None
        and (t := parse_time(c["time"])) is not None and moment - NEW_WITHIN <= t
    ]
    recent_days = count(mapping(src.principal).get("recent_days"))
    evidence: dict[str, Any] = {
        "cloudtrail_changes": trail[:LISTED],
        "cloudtrail_changes_in_day_before": len(soon),
        "iam_changes": iam[:LISTED],
        "iam_recent_days": recent_days,
        "window_days": src.window_days if src.history is not None else None,
        "missing": [
            m for m, absent in (("cloudtrail", src.history is None), ("iam", src.principal is None))
            if absent
        ],
    }
    who = src.artifacts.name or "the principal"
    parts = []
    for change in soon[:3]:
        details = mapping(change["details"])
        detail = ", ".join(f"{k} {v}" for k, v in details.items() if k != "userName")
        when = parse_time(change["time"])
        parts.append(
            f"{change['event_name']}{' (' + detail + ')' if detail else ''} by "
            f"{change['by'] or 'an unknown caller'} at {shown_time(when) if when else '?'}"
        )
    if parts:
        answer = f"Yes: {who} was changed in the day before the event: {'; '.join(parts)}."
    elif trail:
        answer = (f"{plural(len(trail), 'change')} to {who} in the "
                  f"{days_text(src.window_days)} before, none in the last day before the event.")
    elif src.history is not None:
        answer = f"No change to {who} in the {days_text(src.window_days)} before the event."
    else:
        answer = f"IAM shows {plural(len(iam), 'dated change')} to {who} in the {recent_days} days "
        answer += "before; CloudTrail was not read."
    if src.history is not None and iam:
        answer += f" IAM shows {plural(len(iam), 'dated change')} in the last {recent_days} days."
    found.found(
        "principal.recent_changes",
        answer,
        evidence,
        "high" if src.history is not None else "low",
        "unusual" if soon else ("notable" if trail else
                                ("normal" if src.history is not None else None)),
    )


def sign_in_failures(found: Assessment, src: Sources) -> None:
    """Failed console sign-ins before the event, and the sign-in that followed them."""
    if src.history is None:
        found.unanswered("principal.sign_in_failures", src.no_history())
        return
    moment = src.event_time
    # Before the event: a triggering sign-in (a failed one an alert reported) is not among them.
    sign_ins = [
        (t, s) for s in rows(mapping(src.history.get("console_sign_ins")).get("sign_ins"))
        if (t := parse_time(s.get("time"))) is not None and (moment is None or t < moment)
    ]
    sign_ins.sort(key=lambda pair: pair[0])
    failures = [(t, s) for t, s in sign_ins if s.get("outcome") == "Failure"]
    day = [(t, s) for t, s in failures if moment is None or t >= moment - NEW_WITHIN]
    after = None
    if failures:
        after = next(((t, s) for t, s in sign_ins
                      if s.get("outcome") == "Success" and t >= failures[-1][0]), None)
    evidence: dict[str, Any] = {
        "failures": len(failures),
        "failures_in_day_before": len(day),
        "first_failure": stamp(failures[0][0]) if failures else None,
        "last_failure": stamp(failures[-1][0]) if failures else None,
        "failure_ips": sorted(
            {clean(s.get("source_ip")) for _, s in failures if s.get("source_ip")}
        ),
        "success_after_failures": None if after is None else {
            "time": stamp(after[0]),
            "source_ip": clean(after[1].get("source_ip")) or None,
            "mfa_used": after[1].get("mfa_used"),
        },
        "window_days": src.window_days,
    }
    who = src.artifacts.name or "the principal"
    if not failures:
        answer = f"No: no failed console sign-in by {who} in the {days_text(src.window_days)} " \
                 "before the event."
    else:
        answer = (
            f"Yes: {plural(len(failures), 'failed console sign-in')} by {who} between "
            f"{shown_time(failures[0][0])} and {shown_time(failures[-1][0])}"
            f" from {', '.join(evidence['failure_ips']) or 'unknown addresses'}"
        )
        if after is not None:
            answer += f", then a successful sign-in at {shown_time(after[0])}"
        answer += "."
    found.found(
        "principal.sign_in_failures",
        answer,
        evidence,
        "high",
        "unusual" if len(day) >= FAILURES_UNUSUAL else ("notable" if failures else "normal"),
    )


def mfa(found: Assessment, src: Sources) -> None:
    """Whether MFA was used: by the events' sessions, by the last sign-in before them."""
    art = src.artifacts
    flags = [e.mfa_used for e in art.events if e.mfa_used is not None]
    moment = src.event_time
    successes = sorted(
        ((t, s) for s in rows(mapping(mapping(src.history).get("console_sign_ins")).get("sign_ins"))
         if s.get("outcome") == "Success" and (t := parse_time(s.get("time"))) is not None
         and (moment is None or t < moment)),
        key=lambda pair: pair[0],
    )
    last = successes[-1] if successes else None
    recent = last is not None and moment is not None and moment - last[0] <= timedelta(hours=12)
    device = mapping(src.principal).get("mfa_enabled") if src.principal is not None else None
    if not flags and last is None:
        why = "the triggering events do not say whether their session used MFA"
        why += ", and " + (src.no_history() if src.history is None
                           else "the history holds no successful sign-in before them")
        found.unanswered("principal.mfa", why)
        return
    evidence: dict[str, Any] = {
        "events_with_mfa": sum(1 for f in flags if f),
        "events_without_mfa": sum(1 for f in flags if not f),
        "last_sign_in": None if last is None else {
            "time": stamp(last[0]), "mfa_used": last[1].get("mfa_used"),
            "source_ip": clean(last[1].get("source_ip")) or None,
        },
        "mfa_device": device if isinstance(device, bool) else None,
    }
    used = [*flags, *([last[1].get("mfa_used")] if recent and last else [])]
    decided = [u for u in used if isinstance(u, bool)]
    who = art.name or "the principal"
    parts = []
    if flags:
        with_mfa = evidence["events_with_mfa"]
        share = ("none" if with_mfa == 0 else "all" if with_mfa == len(flags)
                 else f"{with_mfa}")
        verb = "was" if share == "none" or len(flags) == 1 else "were"
        parts.append(
            f"by their records, {share} of the {plural(len(flags), 'event')} {verb} made in an "
            "MFA-authenticated session"
        )
    if last is not None:
        parts.append(
            f"the last console sign-in before them, at {shown_time(last[0])}, "
            + _mfa_words(last[1].get("mfa_used"))
        )
    if isinstance(device, bool):
        parts.append(f"{who} has {'an' if device else 'no'} MFA device")
    if not decided:
        verdict = "Unknown"
    else:
        verdict = "Yes" if all(decided) else "No" if not any(decided) else "Partly"
    evidence["mfa_used"] = None if not decided else all(decided)
    found.found(
        "principal.mfa",
        f"{verdict}: {'; '.join(parts)}.",
        evidence,
        "high" if flags else "medium",
        None if not decided else ("normal" if all(decided) else "unusual"),
    )


def account_purpose(found: Assessment, src: Sources) -> None:
    """What the account is for, from the account registry (RIPOSTE_ACCOUNTS)."""
    account = src.artifacts.account
    if not account:
        found.unanswered("account.purpose", "the triggering events name no account")
        return
    entry = src.accounts.get(account)
    if entry is None:
        found.found(
            "account.purpose",
            f"Unknown account: {account} is not in the account registry (RIPOSTE_ACCOUNTS), "
            "so its purpose and owner are not known to Riposte.",
            {"account": account, "listed": False, "name": None, "environment": None,
             "owner": None},
            "low",
        )
        return
    name = clean(entry.get("name")) or None
    environment = clean(entry.get("environment")) or None
    owner = clean(entry.get("owner")) or None
    answer = f"Account {account}" + (f" is {name}" if name else " is listed")
    if environment:
        answer += f", a {environment} account"
    answer += f", owned by {owner}" if owner else ", with no owner recorded"
    found.found(
        "account.purpose",
        answer + ".",
        {"account": account, "listed": True, "name": name, "environment": environment,
         "owner": owner},
        "high",
    )


def _mfa_words(used: object) -> str:
    if used is True:
        return "used MFA"
    return "did not use MFA" if used is False else "does not say whether MFA was used"
