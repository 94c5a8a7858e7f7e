"""``ofpra-vault alerts ...``: run the outbox dispatcher and the reminder sweep by hand.

``serve`` runs the same work as background tasks; this command is for a separate
dispatcher process (several may run against PostgreSQL: rows are claimed with
``FOR UPDATE SKIP LOCKED``) or for a one-shot pass from cron or a test.
"""

from __future__ import annotations

import json
import time
from typing import Any

import typer

alerts_app = typer.Typer(no_args_is_help=True, help="Alerts: outbox dispatcher and reminders")


def _pass(vault: Any) -> dict[str, Any]:
    from vault.alerts.dispatcher import configured_channels, dispatch_due
    from vault.alerts.reminders import send_reminders

    reminders = send_reminders(vault)
    report = dispatch_due(vault)
    return {
        "channels": list(configured_channels(vault)),
        "reminders_queued": reminders.queued,
        "claimed": report.claimed,
        "sent": report.sent,
        "retrying": report.retrying,
        "dead": report.dead,
        "cancelled": report.cancelled,
        "lost_lease": report.lost_lease,
        "summary": report.summary(),
    }


@alerts_app.command("run")
def run(
    once: bool = typer.Option(False, "--once", help="one pass, then exit"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
    interval: float = typer.Option(3.0, "--interval", help="seconds between passes"),
) -> None:
    """Queue due reminders and send due outbox messages (forever, or --once)."""
    from vault.config import load_settings
    from vault.service import open_vault

    vault = open_vault(load_settings())
    try:
        while True:
            result = _pass(vault)
            if as_json:
                typer.echo(json.dumps(result, sort_keys=True))
            else:
                typer.echo(
                    f"channels: {', '.join(result['channels']) or 'none configured'}; "
                    f"{result['reminders_queued']} reminders queued; {result['summary']}"
                )
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return
    finally:
        vault.close()
