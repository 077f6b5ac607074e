"""The soak's goals, its table, and the files under var/soak/."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal with the figure it is judged on and whether it is met."""
    limit = result["claim_seconds"] + result["sweep_seconds"]
    waits = [k["delivered_after"] for k in result["kills"] if k["delivered_after"] is not None]
    rows = [
        {"goal": "lost = 0", "value": result["lost"], "met": result["lost"] == 0},
        {
            "goal": "stuck rows = 0",
            "value": sum(result["stuck"].values()),
            "met": not result["stuck"],
        },
        {
            "goal": "duplicates ≤ kills between DATA and the answer, each one of those",
            "value": f"{result['duplicates']} ≤ {result['kills_between_data_and_answer']}",
            "met": result["duplicates"] <= result["kills_between_data_and_answer"]
            and not result["unexplained_duplicates"],
        },
        {
            "goal": f"after a kill, its messages delivered ≤ claim + sweep ({limit:g} s)",
            "value": f"{max(waits):.1f} s" if waits else "no message held at a kill",
            "met": all(wait <= limit for wait in waits),
        },
    ]
    resumed = result["broker"].get("resumed_after")
    if result["broker"].get("cut_at") is not None and not result["broker"]["left_after_cut"]:
        rows.append(
            {
                "goal": "after the broker is back, delivery resumes ≤ claim + sweep",
                "value": "not measured: nothing was left to deliver (more SOAK_MESSAGES)",
                "met": None,  # neither met nor failed: say so rather than "yes"
            }
        )
    elif result["broker"].get("cut_at") is not None:
        rows.append(
            {
                "goal": f"after the broker is back, delivery resumes ≤ claim + sweep ({limit:g} s)",
                "value": f"{resumed:.1f} s" if resumed is not None else "never",
                "met": resumed is not None and resumed <= limit,
            }
        )
    return rows


def table(result: dict[str, Any]) -> str:
    config = result["config"]
    broker = result["broker"]
    kills = result["kills"]
    schedule = (
        f"a SIGKILL each {config['kill_after_messages']} messages delivered"
        if config["kill_after_messages"]
        else f"a SIGKILL every {config['kill_every']:g} s"
    )
    lines = [
        f"# make soak, {result['started']} UTC",
        "",
        f"{result['database']} and {result['broker_label']}; {config['workers']} workers, "
        f"{schedule}, claims {result['claim_seconds']:g} s, "
        f"beat's sweep every {result['sweep_seconds']:g} s",
        "",
        "| figure | value |",
        "|---|---|",
        f"| queued | {result['queued']} |",
        f"| delivered (received by the server) | {result['delivered']} |",
        f"| unique | {result['unique']} |",
        f"| duplicates | {result['duplicates']} {result['duplicate_ids'] or ''} |",
        f"| lost | {result['lost']} |",
        f"| stuck rows by state | {result['stuck'] or 0} |",
        f"| drain time (queued → last arrival) | {result['drain_seconds']:.1f} s |",
        f"| messages/s | {result['messages_per_second']:.1f} |",
        f"| kills | {len(kills)} |",
        f"| kills between DATA and the answer | {result['kills_between_data_and_answer']} |",
        f"| connections cut while a message arrived | {result['dropped_in_data']} |",
        "| kill → its messages delivered | "
        + (
            ", ".join(
                f"{k['second']:.0f} s: "
                + (f"{k['delivered_after']:.1f} s" if k["delivered_after"] is not None else "none")
                for k in kills
            )
            or "no kill"
        )
        + " |",
    ]
    if broker.get("cut_at") is not None:
        resumed = broker.get("resumed_after")
        if not broker["left_after_cut"]:
            after = "nothing was left to deliver when it was back"
        elif resumed is None:
            after = "delivery never resumed after it was back"
        else:
            after = f"delivery resumed {resumed:.1f} s after it was back"
        lines.append(
            f"| broker cut | at {broker['cut_at']:.0f} s for {broker['cut_seconds']:g} s; {after} |"
        )
    else:
        lines.append(f"| broker cut | {result.get('cut_note') or 'none'} |")
    lines += ["", "| goal | value | met |", "|---|---|---|"]
    for goal in result["goals"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[goal["met"]]
        lines.append(f"| {goal['goal']} | {goal['value']} | {met} |")
    lines += [
        "",
        "Kills between DATA and the answer: connections that the server saw end without QUIT "
        "right after it accepted a message, before any further command (the client may have "
        "died before reading the 250). A kill after the worker recorded the message as sent "
        "counts too, so this is an upper bound on the duplicates a kill can cause.",
        "Kill → its messages delivered: the latest first arrival, after the kill, of the "
        "messages claimed when the worker was dead (the dead one's waits for its claim).",
    ]
    return "\n".join(lines)


def save(result: dict[str, Any], text: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (folder / f"soak-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    path = folder / f"soak-{stamp}.md"
    path.write_text(text + "\n")
    return path
