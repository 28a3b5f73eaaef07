"""A notifier, in Python: pages through PagerDuty's Events API v2 when an upgrade needs a human,
and resolves the page when it no longer does (wasmvisor:plugin@0.2.1, world `notifier`).

- trigger, severity critical: an upgrade failed, was rolled back, or its node is unhealthy;
- trigger, severity error: the next upgrade is not ready and due within `page-before` seconds;
- trigger, severity warning: the node crashed and is being restarted;
- resolve: the upgrade's node is healthy or its validator signs again (the upgrade's page), the
  upgrade is ready or done (its readiness page).

Each upgrade has two pages, deduplicated by `wasmvisor/<chain>/<host>/<upgrade>/{upgrade,ready}`:
a second trigger updates the open page instead of opening another. Other events are not sent.

Settings (plugins.toml `config`):
  routing-key = "..."          the Events API v2 integration key (or grant the variable
                               PAGERDUTY_ROUTING_KEY with `env`)
  url         = "https://events.pagerduty.com/v2/enqueue"
  page-before = 3600           seconds: a not-ready upgrade due sooner than this pages
Allowlist events.pagerduty.com (`allow-hosts`).
"""

import json
import os
from datetime import datetime, timezone

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.notify import (
    Event_CrashRestart,
    Event_HealthVerdict,
    Event_ReadinessChanged,
    Event_RolledBack,
    Event_SigningResumed,
    Event_UpgradeDone,
    Event_UpgradeFailed,
)

from wasi_http import request

ENQUEUE = "https://events.pagerduty.com/v2/enqueue"


def setting(settings, key, default=None):
    value = default
    for k, v in settings:
        if k == key:
            value = v
    return value


def where(notice):
    return f"{notice.chain or 'chain ?'} · {notice.daemon}" + (f" on {notice.hostname}" if notice.hostname else "")


def page(notice, subject, kind, action, severity=None, summary=None, details=None):
    """One Events API v2 event: `subject`'s (an upgrade's name, or `node`) `kind` page."""
    key = f"wasmvisor/{notice.chain}/{notice.hostname or notice.daemon}/{subject}/{kind}"
    event = {"event_action": action, "dedup_key": key[:255]}
    if action == "trigger":
        at = datetime.fromtimestamp(notice.at_unix_ms / 1000, tz=timezone.utc)
        event["payload"] = {
            "summary": f"[{where(notice)}] {summary}"[:1024],
            "source": notice.hostname or notice.daemon,
            "severity": severity,
            "timestamp": at.isoformat(timespec="milliseconds"),
            "component": notice.daemon,
            "group": notice.chain,
            "class": f"upgrade-{kind}",
            "custom_details": details,
        }
    return event


def at(upgrade):
    return f"upgrade {upgrade.name} at height {upgrade.height}"


def event_for(notice, page_before):
    """The Events API v2 event a notice calls for, or None."""
    e = notice.event
    if isinstance(e, (Event_UpgradeFailed, Event_RolledBack)):
        u, verb = e.value.upgrade, "FAILED" if isinstance(e, Event_UpgradeFailed) else "ROLLED BACK"
        summary = f"{at(u)} {verb}: {e.value.reason}"
        return page(notice, u.name, "upgrade", "trigger", "critical", summary, {"reason": e.value.reason})
    if isinstance(e, Event_HealthVerdict):
        v = e.value
        if v.healthy:
            return page(notice, v.upgrade.name, "upgrade", "resolve")
        summary = f"{at(v.upgrade)}: UNHEALTHY ({v.action}): {v.detail}"
        details = {"detail": v.detail, "check": v.by, "action": v.action}
        return page(notice, v.upgrade.name, "upgrade", "trigger", "critical", summary, details)
    if isinstance(e, Event_SigningResumed):
        return page(notice, e.value.upgrade.name, "upgrade", "resolve")
    if isinstance(e, Event_ReadinessChanged):
        r = e.value
        if r.ready:
            return page(notice, r.upgrade.name, "ready", "resolve")
        if r.eta_seconds is not None and r.eta_seconds <= page_before:
            minutes = (r.eta_seconds + 59) // 60
            summary = f"{at(r.upgrade)} is NOT READY, due in about {minutes} min: {r.reason}"
            details = {"reason": r.reason, "eta_seconds": r.eta_seconds}
            return page(notice, r.upgrade.name, "ready", "trigger", "error", summary, details)
        return None
    if isinstance(e, Event_UpgradeDone):
        return page(notice, e.value.upgrade.name, "ready", "resolve")
    if isinstance(e, Event_CrashRestart):
        c = e.value
        summary = f"the node died ({c.status}); restart {c.death} of at most {c.of}"
        details = {"status": c.status, "death": c.death, "of": c.of}
        return page(notice, "node", "crash", "trigger", "warning", summary, details)
    return None


class Notify(exports.Notify):
    def notify(self, notice, settings):
        key = setting(settings, "routing-key") or os.environ.get("PAGERDUTY_ROUTING_KEY")
        if not key:
            raise Err("pagerduty: set routing-key, or grant PAGERDUTY_ROUTING_KEY with env")
        try:
            page_before = int(setting(settings, "page-before", "3600"))
        except ValueError:
            raise Err("pagerduty: page-before is not a number of seconds")
        event = event_for(notice, page_before)
        if event is None:
            return
        event["routing_key"] = key
        url = setting(settings, "url", ENQUEUE)
        try:
            status, body = request("POST", url, [("content-type", "application/json")], json.dumps(event).encode())
        except RuntimeError as e:
            raise Err(str(e))
        if status == 202:
            return
        try:
            said = json.loads(body)
            said = "; ".join([said.get("message", "")] + said.get("errors", []))
        except ValueError:
            said = body[:200].decode(errors="replace")
        raise Err(f"{url} answered HTTP {status}: {said}")
