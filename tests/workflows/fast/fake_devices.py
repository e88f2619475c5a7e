"""A fake fleet for the fast tier: each device answers a command by signalling its target run,
the way the real gateway's event relay does, with a behaviour chosen per device.

Answers (per attempt; the last one repeats for later attempts):
- "success" / "failure": the device reports in progress, then that final status;
- "silent": it never answers (an offline device);
and a held device parks its commands until the test releases it. A cancel is confirmed with a
`cancelled` event while the command is still open, as the simulated gateway does.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from temporalio.client import Client
from temporalio.service import RPCError

from domain.commands import CommandEvent
from domain.ids import target_run_workflow_id
from workflows import names
from workflows.messages import CommandEvents

SUCCESS = "success"
FAILURE = "failure"
SILENT = "silent"
FAILURE_REASON = "the device refused the command"


@dataclass
class SentCommand:
    """A command as the fleet received it, and what became of it."""

    command_id: str
    target_run_id: str
    device_id: str
    attempt: int
    answered: str | None = None  # the final status the device reported, if any
    cancel_requested: bool = False


@dataclass
class FakeDevice:
    answers: list[str]
    held: bool = False
    parked: list[SentCommand] = field(default_factory=list)

    def answer_for(self, attempt: int) -> str:
        return self.answers[min(attempt, len(self.answers) - 1)]


class FakeFleet:
    def __init__(self, client: Client) -> None:
        self._client = client
        self.devices: dict[str, FakeDevice] = {}
        self.commands: dict[str, SentCommand] = {}
        self._signals: set[asyncio.Task[None]] = set()

    # ---- set up by the tests -------------------------------------------------------------
    def device(self, *answers: str, held: bool = False) -> str:
        """A new device answering `answers` (default: success); returns its id."""
        device_id = str(uuid.uuid4())
        self.devices[device_id] = FakeDevice(list(answers) or [SUCCESS], held=held)
        return device_id

    def answer(self, device_id: str, *answers: str) -> None:
        """From now on the device answers this way (a device fixed, or broken, by hand)."""
        self.devices[device_id].answers = list(answers)

    def release(self, device_id: str) -> None:
        """A held device answers what it parked, and every later command at once."""
        device = self.devices[device_id]
        device.held = False
        parked, device.parked = device.parked, []
        for command in parked:
            self._answer(command, device)

    def release_all(self) -> None:
        for device_id in self.devices:
            self.release(device_id)

    # ---- what the tests read -------------------------------------------------------------
    def sent_to(self, device_id: str) -> list[SentCommand]:
        return [c for c in self.commands.values() if c.device_id == device_id]

    def open_commands(self) -> list[SentCommand]:
        return [c for c in self.commands.values() if c.answered is None]

    # ---- called by the fake activities ---------------------------------------------------
    def send(self, command: SentCommand) -> None:
        self.commands[command.command_id] = command
        device = self.devices[command.device_id]
        if device.held:
            device.parked.append(command)
        else:
            self._answer(command, device)

    def cancel(self, command_id: str) -> None:
        command = self.commands.get(command_id)
        if command is None:
            return
        command.cancel_requested = True
        if command.answered is None:
            command.answered = "cancelled"
            self._signal(command, [CommandEvent(command_id, "cancelled",
                                                reason="cancelled at the gateway")])

    async def close(self) -> None:
        """Wait for the signals still on their way (a closed run refuses them quietly)."""
        if self._signals:
            await asyncio.gather(*list(self._signals), return_exceptions=True)

    # ---- the device's side ---------------------------------------------------------------
    def _answer(self, command: SentCommand, device: FakeDevice) -> None:
        final = device.answer_for(command.attempt)
        if final == SILENT or command.answered is not None:
            return
        command.answered = final
        self._signal(command, [
            CommandEvent(command.command_id, "inprogress", sequence=1),
            CommandEvent(command.command_id, final, sequence=2,
                         reason=FAILURE_REASON if final == FAILURE else ""),
        ])

    def _signal(self, command: SentCommand, events: list[CommandEvent]) -> None:
        # From a task, so the answer arrives after the dispatch activity returned, as a real
        # device's would.
        task = asyncio.create_task(self._send_events(command.target_run_id, events))
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)

    async def _send_events(self, target_run_id: str, events: list[CommandEvent]) -> None:
        handle = self._client.get_workflow_handle(target_run_workflow_id(target_run_id))
        try:
            await handle.signal(names.SIGNAL_COMMAND_EVENTS, CommandEvents(events))
        except RPCError:
            pass  # the target run has ended meanwhile (it timed out, say)
