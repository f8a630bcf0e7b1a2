"""Durable runs on this server (docs/protocol.md, "Runs"): each step started once per run id, and watched until it ends.

The store decides every change of a run record in its atomic step (see
:meth:`~workflow_session.stores.base.SessionStore.start_run` and the other run methods); the
:class:`Runner` drives the steps this server started:

- **The step** runs as a task of its own (an ``async def`` step), or in a thread of its own (a
  ``def`` step), on the variables read in the atomic step that wrote the record.
- **Its keeper** writes the step's progress (at most 4 writes a second, the latest value wins)
  and renews the heartbeat every 5 s (or a third of the lost bound, when that is shorter). A
  write that finds the run no longer ``running`` (cancelled or ended through another server)
  cancels the step.
- **The end** is written once, by the first of: the step's result (``succeeded`` with its
  changes merged in the same atomic step, or ``failed``), the time limit (``timed_out``), a cancel
  (the cancel request writes ``cancelled`` itself), the server's shutdown (``lost``). The store
  writes an end only over a ``running`` record, so whichever lands first wins and nothing of the
  others is merged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from collections.abc import Callable, Container, Mapping
from typing import Any, Literal

from starlette.requests import Request

from .errors import SessionProtocolError
from .feed import ChangeFeed
from .models import JsonValue, Patch, RunRecord
from .rules import compact_json, json_value_problem
from .runs import HEARTBEAT_MS, SHUTDOWN_MESSAGE, UNCHANGED, Unchanged, run_error
from .steps import Step, run_step, step_timeout_ms
from .stores.base import Caller, RunEnd, SessionStore

log = logging.getLogger("workflow_session")

#: At most this many progress writes a second per run.
PROGRESS_WRITES_PER_SECOND = 4
#: How often a waiting request reads the run again when no change was announced (changes made by
#: a server that announces nothing: another process on the same SQLite file; and a loss).
POLL_SECONDS = 1.0

#: Why a run stopped before its step returned.
_Reason = Literal["timed_out", "cancelled", "ended", "shutdown"]


def shutting_down() -> SessionProtocolError:
    return SessionProtocolError("unavailable", "The server is shutting down; try again")


class _Active:
    """A run this server drives: its stop signal, its ``cancelled`` event, the progress not written yet."""

    def __init__(self, session_id: str, run_id: str, step: str) -> None:
        self.session_id = session_id
        self.run_id = run_id
        self.step = step
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        #: Set (once) with the reason the step is stopped before it returned.
        self.stopped: asyncio.Future[_Reason] = self.loop.create_future()
        #: What a ``def`` step checks; set with every stop.
        self.cancelled = threading.Event()
        #: Wakes the keeper: new progress, or the end.
        self.wake = asyncio.Event()
        self.pending: JsonValue | Unchanged = UNCHANGED
        self.ending = False
        self.last_write = self.loop.time()
        self.last_progress = -math.inf
        self.task: asyncio.Task[None] | None = None

    def stop(self, reason: _Reason) -> None:
        if not self.stopped.done():
            self.stopped.set_result(reason)
        self.cancelled.set()

    def offer(self, value: JsonValue) -> None:
        """The step's latest progress (on the loop): kept until the keeper writes it, replaced by a newer one."""
        if self.ending:
            return
        first = isinstance(self.pending, Unchanged)
        self.pending = value
        if first:  # the keeper is told once per write, however often the step reports
            self.wake.set()

    def take(self) -> JsonValue | Unchanged:
        value, self.pending = self.pending, UNCHANGED
        return value


class Runner:
    """Starts, watches, cancels and ends the durable runs of one app (see the module docstring)."""

    def __init__(
        self,
        *,
        store: SessionStore,
        feed: ChangeFeed,
        steps: Mapping[str, Step[Any]],
        report: Callable[[BaseException, Request, str | None], None],
        max_bytes: int,
        timeout_ms: int,
        lost_after_ms: int,
        concurrent: Literal["join", "refuse"],
    ) -> None:
        self.store = store
        self.feed = feed
        self.steps = steps
        self.report = report
        self.max_bytes = max_bytes
        self.timeout_ms = timeout_ms
        self.lost_after_ms = lost_after_ms
        self.concurrent = concurrent
        #: The heartbeat: every 5 s, or a third of the lost bound when that is shorter.
        self.heartbeat_seconds = min(HEARTBEAT_MS, lost_after_ms / 3) / 1000
        #: How often a waiting request reads again: every second, or a quarter of the lost bound.
        self.poll_seconds = min(POLL_SECONDS, lost_after_ms / 4000)
        self._active: dict[str, dict[str, _Active]] = {}
        self._closing = False

    def alive(self, session_id: str) -> Container[str]:
        """The ids of the session's runs this server drives: never ended ``lost`` by its own reads."""
        return frozenset(self._active.get(session_id, ()))

    async def start(
        self, session_id: str, run_id: str, step: str, input: JsonValue, caller: Caller, request: Request, schema_version: int | None = None
    ) -> tuple[RunRecord, bool]:
        """The run with ``run_id`` (True: started now, its step launched), or the running run of ``step`` it joined.

        ``schema_version``: the client's; anything but the store's is ``schema_mismatch`` (None: the store's).
        """
        if self._closing:
            raise shutting_down()
        start = await self.store.start_run(
            session_id,
            run_id,
            step,
            input,
            caller=caller,
            concurrent=self.concurrent,
            lost_after_ms=self.lost_after_ms,
            alive=self.alive(session_id),
            schema_version=schema_version,
        )
        if start.wrote:
            self.feed.announce(session_id)
        if start.conflict:
            raise SessionProtocolError("run_in_progress", f'A run of step "{step}" is running in this session')
        if start.started:
            active = _Active(session_id, run_id, step)
            self._active.setdefault(session_id, {})[run_id] = active
            active.task = asyncio.get_running_loop().create_task(
                self._drive(active, self.steps[step], start.variables, input, caller.user_id, request), name=f"workflow-session run {run_id}"
            )
            if self._closing:  # closed while the record was written: the run ends at once
                self._stop_for_shutdown(active)
        return start.run, start.started

    async def get(self, session_id: str, run_id: str, caller: Caller) -> RunRecord | None:
        return await self.store.get_run(session_id, run_id, caller=caller, lost_after_ms=self.lost_after_ms, alive=self.alive(session_id))

    async def list(self, session_id: str, caller: Caller) -> list[RunRecord] | None:
        return await self.store.list_runs(session_id, caller=caller, lost_after_ms=self.lost_after_ms, alive=self.alive(session_id))

    async def cancel(self, session_id: str, run_id: str, caller: Caller) -> RunRecord | None:
        """Ends a running run ``cancelled`` in the store first, then stops its step if this server runs it."""
        run = await self.store.cancel_run(session_id, run_id, caller=caller)
        if run is None:
            return None
        active = self._active.get(session_id, {}).get(run_id)
        if active is not None and run["status"] != "running":
            active.stop("cancelled")
        self.feed.announce(session_id)
        return run

    async def wait(self, session_id: str, run_id: str, caller: Caller, done: Callable[[RunRecord], bool], wait_ms: int) -> RunRecord | None:
        """The run once ``done(run)`` or it ended, or as it is after ``wait_ms``; ``unavailable`` when the server shuts down meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_ms / 1000
        try:
            run = await self.get(session_id, run_id, caller)
            while run is not None and run["status"] == "running" and not done(run):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                if not await self.feed.wait(session_id, min(remaining, self.poll_seconds)) or self._closing:
                    raise shutting_down()
                run = await self.get(session_id, run_id, caller)
        except asyncio.CancelledError:
            # The server cancels requests still open when its graceful shutdown ends: this one is
            # answered in the protocol's JSON (503), not with the server's plain-text 500.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            raise shutting_down() from None
        return run

    def close(self) -> None:
        """Stops every run this server drives: each ends ``lost`` in the store (``store.close()`` waits for those writes)."""
        self._closing = True
        for runs in list(self._active.values()):
            for active in list(runs.values()):
                self._stop_for_shutdown(active)

    def _stop_for_shutdown(self, active: _Active) -> None:
        active.stop("shutdown")
        if active.task is not None:
            self.store.finish_before_close(active.task)

    async def wait_closed(self) -> None:
        """Waits until every run this server drove has ended (after ``close()``)."""
        tasks = [active.task for runs in self._active.values() for active in runs.values() if active.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- One run, from its start to its end ---

    async def _drive(self, active: _Active, step: Step[Any], variables: dict[str, JsonValue], input: JsonValue, user_id: str | None, request: Request) -> None:
        loop = asyncio.get_running_loop()
        keeper = loop.create_task(self._keep(active), name=f"workflow-session run {active.run_id} keeper")

        def report(error: BaseException) -> None:
            self.report(error, request, active.step)

        inner: asyncio.Task[Any] = loop.create_task(
            run_step(
                step,
                session_id=active.session_id,
                variables=variables,
                input=input,
                user_id=user_id,
                report=report,
                run_id=active.run_id,
                progress=self._progress_of(active),
                cancelled=active.cancelled,
            ),
            name=f"workflow-session run {active.run_id} step",
        )
        timeout_ms = step_timeout_ms(step) or self.timeout_ms
        reason: _Reason | None = None
        interrupted = False
        try:
            done, _ = await asyncio.wait({inner, active.stopped}, timeout=timeout_ms / 1000, return_when=asyncio.FIRST_COMPLETED)
            if inner not in done:
                reason = active.stopped.result() if active.stopped.done() else "timed_out"
        except asyncio.CancelledError:  # the loop is going away without close(): end it as a shutdown would
            reason, interrupted = "shutdown", True
        try:
            if reason is not None:
                active.stop(reason)
                inner.cancel()
                inner.add_done_callback(_retrieved)
            active.ending = True
            active.wake.set()
            await asyncio.gather(keeper, return_exceptions=True)
            await self._end(active, inner, reason, timeout_ms, report)
        finally:
            runs = self._active.get(active.session_id, {})
            runs.pop(active.run_id, None)
            if not runs:
                self._active.pop(active.session_id, None)
        if interrupted:
            raise asyncio.CancelledError

    async def _end(self, active: _Active, inner: asyncio.Task[Any], reason: _Reason | None, timeout_ms: int, report: Callable[[BaseException], None]) -> None:
        """Writes the run's end (unless a cancel, or another server, wrote it already); the step's changes merged when it succeeded."""
        session_id, run_id = active.session_id, active.run_id
        progress = active.take()  # the last progress, not written yet: kept with the end
        end: RunEnd | None = None
        try:
            if reason is None:
                try:
                    outcome = inner.result()
                except SessionProtocolError as failure:  # step_failed, reported by run_step (a StepError without a traceback)
                    end = await self.store.finish_run(session_id, run_id, "failed", error=run_error("step_failed", failure.message), progress=progress)
                except BaseException as error:  # the step's own cancellation, or worse: the step failed
                    report(error)
                    end = await self.store.finish_run(session_id, run_id, "failed", error=run_error("step_failed", "The step failed"), progress=progress)
                else:
                    changes: Patch = {"variables": outcome["variables"], "deleted": outcome["deleted"]}
                    end = await self.store.finish_run(
                        session_id, run_id, "succeeded", output=outcome["output"], changes=changes, progress=progress, max_bytes=self.max_bytes
                    )
                    if end.problem is not None:  # its changes broke a rule: the step's failure, reported once
                        report(end.problem)
            elif reason == "timed_out":
                message = f"The step did not finish within {timeout_ms} ms"
                end = await self.store.finish_run(session_id, run_id, "timed_out", error=run_error("timed_out", message), progress=progress)
            elif reason == "shutdown":
                end = await self.store.finish_run(session_id, run_id, "lost", error=run_error("lost", SHUTDOWN_MESSAGE), progress=progress)
                if end.ended:
                    log.warning('workflow-session: run "%s" of step "%s" (session %s) ended lost: the server stopped while the step ran', run_id, active.step, session_id)
            # "cancelled" and "ended": the cancel, or another server, wrote the end already.
        except Exception as error:
            log.warning(
                'workflow-session: the end of run "%s" of step "%s" (session %s) could not be stored (%s); it will read as lost',
                run_id,
                active.step,
                session_id,
                error,
            )
            return
        if end is not None and end.ended:
            self.feed.announce(session_id)

    def _progress_of(self, active: _Active) -> Callable[[JsonValue], None]:
        """``ctx.progress``: checks the value in the step's thread, hands a copy to the loop."""

        def progress(value: JsonValue) -> None:
            problem = json_value_problem(value)
            if problem:
                raise ValueError(f"progress: {problem}")
            text = compact_json(value)
            if len(text.encode("utf-8")) > self.max_bytes:
                raise ValueError(f"progress: the value is larger than {self.max_bytes} bytes")
            copied: JsonValue = json.loads(text)
            if threading.get_ident() == active.loop_thread:
                active.offer(copied)
                return
            try:
                active.loop.call_soon_threadsafe(active.offer, copied)
            except RuntimeError:  # the loop is closed: the run ended long ago
                pass

        return progress

    async def _keep(self, active: _Active) -> None:
        """Writes the progress (at most 4 times a second) and renews the heartbeat until the run ends; stops the step when the run ended elsewhere."""
        loop = asyncio.get_running_loop()
        interval = 1 / PROGRESS_WRITES_PER_SECOND
        while not active.ending:
            active.wake.clear()
            now = loop.time()
            progress_due = not isinstance(active.pending, Unchanged) and now >= active.last_progress + interval
            beat_due = now >= active.last_write + self.heartbeat_seconds
            if not progress_due and not beat_due:
                due = active.last_write + self.heartbeat_seconds
                if not isinstance(active.pending, Unchanged):
                    due = min(due, active.last_progress + interval)
                try:
                    await asyncio.wait_for(active.wake.wait(), max(0.0, due - now))
                except asyncio.TimeoutError:
                    pass
                continue
            value = active.take() if progress_due else UNCHANGED
            try:
                if isinstance(value, Unchanged):
                    run = await self.store.renew_run(active.session_id, active.run_id)
                else:
                    run = await self.store.progress_run(active.session_id, active.run_id, value)
                    active.last_progress = loop.time()
            except Exception as error:  # the store is away for now: the next beat tries again
                log.debug("workflow-session: run %s: could not write its heartbeat or progress (%s)", active.run_id, error)
                if not isinstance(value, Unchanged) and isinstance(active.pending, Unchanged):
                    active.pending = value
                active.last_write = loop.time()
                continue
            active.last_write = loop.time()
            if not isinstance(value, Unchanged) and run is not None and run["status"] == "running":
                self.feed.announce(active.session_id)
            if run is None or run["status"] != "running":
                active.stop("ended")
                return


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Reads the outcome of a step that was stopped, so that asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()
