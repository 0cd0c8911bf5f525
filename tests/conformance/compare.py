"""What counts as a difference between a real server's reply and the lab's (ids and timing excluded)."""

from __future__ import annotations

from tests.conformance.recordings import Recording
from tests.conformance.replay import Step, client_named


def differences(recording: Recording, steps: list[Step]) -> list[str]:
    out: list[str] = []
    for step in steps:
        exchange = recording.exchanges[step.index]
        where = f"#{step.index} {step.request}"
        real, lab = step.recorded, step.lab
        if lab is None:
            continue
        if real.action != lab.action:
            out.append(f"{where}: real {real.action} {real.fault or ''}, lab {lab.action} {lab.fault or ''}")
            continue
        if real.fault != lab.fault:
            out.append(f"{where}: real fault {real.fault}, lab fault {lab.fault}")
        real_messages = [str(m) for m in real.messages]
        lab_messages = [str(m) for m in lab.messages]
        if real_messages != lab_messages:
            out.append(f"{where}: real {real_messages}, lab {lab_messages}")
        if real.command_state != lab.command_state:
            out.append(f"{where}: real CommandState {real.command_state}, lab {lab.command_state}")
        if step.request == "Create" and real.shell_id:
            proposed = client_named(exchange, "ShellId")
            real_named, lab_named = real.shell_id != proposed, lab.shell_id != proposed
            if real_named != lab_named:
                out.append(f"{where}: ShellId named by the server: real {real_named}, lab {lab_named}")
            if real.describes_shell != lab.describes_shell:
                out.append(
                    f"{where}: rsp:Shell in the reply: real {real.describes_shell}, lab {lab.describes_shell}"
                )
        if step.request == "Command" and real.command_id:
            proposed = client_named(exchange, "CommandId")
            real_named, lab_named = real.command_id != proposed, lab.command_id != proposed
            if real_named != lab_named:
                out.append(f"{where}: CommandId named by the server: real {real_named}, lab {lab_named}")
    return out


def split_notes(steps: list[Step]) -> list[str]:
    """Where the lab split replies differently (same messages, same order, more or fewer replies)."""
    return [f"#{s.index} {s.request}: {s.note}" for s in steps if s.note]
