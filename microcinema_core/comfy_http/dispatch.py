"""One batch over several ComfyUI servers: spread by free capacity, a dead or erroring server's prompts to the
others, each job collected exactly once.

The caller says how a job becomes a prompt on a given server (``prepare(job, client)``: it may upload files
there) and what to keep of a finished one (``collect(job, client, prompt_id, entry, seconds)``: download, write
the record). Resuming is the caller's: it passes only the jobs its record does not hold yet.

* A server that does not answer (refused, reset, timed out) is **down**: its queued prompts go back to the
  batch at once and run elsewhere; it is probed again every ``revive_every`` s and, when back, its stale
  prompts are deleted from its queue so nothing runs twice there.
* A prompt that a server refuses or fails is tried on a server that has not tried it; it fails for good once
  every live server did. A server whose failures were made by other servers ``max_server_errors`` times in a
  row is **retired** for the rest of the batch (it lacks a model, is out of memory...).
* When every server is down for ``give_up_after`` s the batch stops; what is left is reported ``not run``.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from .client import ComfyClient
from .errors import ComfyError, PromptRejected, ServerUnreachable
from .history import describe_error, execution_error
from .server_state import DOWN, RETIRED, UP, ServerState

DONE, REJECTED, FAILED, TIMEOUT, NOT_RUN = "done", "rejected", "failed", "timeout", "not run"


@dataclass
class Outcome:
    """How one job ended: ``status`` (done, rejected, failed, timeout, not run), where, and ``collect``'s result."""
    status: str
    server: str | None = None
    prompt_id: str | None = None
    error: str | None = None
    seconds: float | None = None
    result: Any = None
    tried: list = field(default_factory=list)


class Dispatcher:
    """Runs ``jobs`` over ``servers`` (URLs or ``ComfyClient``s); ``run()`` returns one ``Outcome`` per job."""

    def __init__(self, servers: list, prepare: Callable[[Any, ComfyClient], dict],
                 collect: Callable[[Any, ComfyClient, str, dict, float], Any], depth: int = 2,
                 job_timeout: float = 3600.0, poll: float = 0.25, max_server_errors: int = 3,
                 revive_every: float = 15.0, give_up_after: float = 120.0, log: Callable[[str], None] = print,
                 trace: Callable[[str], None] | None = None):
        if not servers:
            raise ValueError("no ComfyUI server given: pass at least one --server URL")
        clients = [s if isinstance(s, ComfyClient) else ComfyClient(s) for s in servers]
        urls = [c.url for c in clients]
        if len(set(urls)) != len(urls):
            raise ValueError(f"--server: the same URL given twice ({urls}); a server's capacity is --queue-depth")
        if depth < 1:
            raise ValueError(f"queue depth {depth}: must be at least 1 prompt per server")
        self.servers = [ServerState(c) for c in clients]
        self.prepare, self.collect, self.depth = prepare, collect, depth
        self.job_timeout, self.poll, self.max_server_errors = job_timeout, poll, max_server_errors
        self.revive_every, self.give_up_after, self.log = revive_every, give_up_after, log
        self.trace = trace or (lambda msg: None)   # one line per prompt queued / made
        self.prompt_jobs: dict[str, int] = {}     # every prompt id queued -> job index (progress display)
        self.wall_seconds = 0.0

    # -- the loop ----------------------------------------------------------------------------------------------
    def run(self, jobs: list) -> list[Outcome]:
        """Run every job; raises ``ServerUnreachable`` at once when no server answers at the start."""
        self.jobs = jobs
        self.outcomes: list[Outcome | None] = [None] * len(jobs)
        self.tried: list[list[str]] = [[] for _ in jobs]
        self.blame: list[list[ServerState]] = [[] for _ in jobs]
        self.last_failure: dict[int, tuple[str, str, str]] = {}   # job -> (status, server, error)
        self.pending: deque[int] = deque(range(len(jobs)))
        start = time.monotonic()
        for server in self.servers:
            self._probe(server, first=True)
        if jobs and not any(s.state == UP for s in self.servers):
            raise ServerUnreachable("no ComfyUI server answers: " + "; ".join(
                f"{s.url}: {s.last_error}" for s in self.servers))
        while self.pending or any(s.in_flight for s in self.servers):
            self._revive()
            if not any(s.state == UP for s in self.servers):
                down_for = time.monotonic() - min(s.down_since or start for s in self.servers)
                if down_for > self.give_up_after:
                    self.log(f"every server down for {down_for:.0f} s: stopping; a rerun finishes the rest")
                    break
            self._poll_all()     # collect first, so freed slots are filled at once
            self._fill()
            self._settle()
            if self.pending or any(s.in_flight for s in self.servers):
                time.sleep(self.poll)
        for job in range(len(jobs)):
            if self.outcomes[job] is None:
                self.outcomes[job] = Outcome(NOT_RUN, error="no server could run it (all down); rerun to finish",
                                             tried=self.tried[job])
        self.wall_seconds = time.monotonic() - start
        return self.outcomes

    def throughput(self) -> list[dict]:
        """Per server: videos made, videos per minute, seconds per video, failures, prompts moved away."""
        return [s.throughput() for s in self.servers]

    # -- queueing ----------------------------------------------------------------------------------------------
    def _fill(self) -> None:
        """Queue pending jobs where there is free capacity, the emptiest server first."""
        if not self.pending:
            return
        free = {}
        for server in self.servers:
            if server.state != UP:
                continue
            try:
                remaining = server.client.queue_remaining()
            except ServerUnreachable as err:
                self._down(server, err)
                continue
            except (ComfyError, KeyError, ValueError):
                remaining = len(server.in_flight)
            if server.free_slots(self.depth, remaining) > 0:
                free[server] = server.free_slots(self.depth, remaining)
        for job in list(self.pending):
            choices = [s for s in free if free[s] > 0 and s.state == UP and s.url not in self.tried[job]]
            if not choices:
                if not any(free.values()):
                    return
                continue
            server = max(choices, key=lambda s: (free[s], -len(s.in_flight), -self.servers.index(s)))
            self.pending.remove(job)
            if self._queue(job, server):
                free[server] -= 1
            else:
                free.pop(server, None)

    def _queue(self, job: int, server: ServerState) -> bool:
        """Queue one job on one server; False when that server can take no more now."""
        try:
            prompt = self.prepare(self.jobs[job], server.client)
            prompt_id = server.client.queue(prompt, client_id=server.client_id)
        except ServerUnreachable as err:
            self.pending.appendleft(job)
            self._down(server, err)
            return False
        except PromptRejected as err:
            self._attempt_failed(job, server, str(err), REJECTED)
            return server.state == UP
        server.mark_queued(prompt_id, job)
        self.prompt_jobs[prompt_id] = job
        self.trace(f"job {job} -> {server.url} ({prompt_id})")
        return True

    # -- following ---------------------------------------------------------------------------------------------
    def _poll_all(self) -> None:
        for server in self.servers:
            if server.state == UP and server.in_flight:
                self._poll(server)

    def _poll(self, server: ServerState) -> None:
        for prompt_id, (job, queued_at) in list(server.in_flight.items()):
            try:
                entry = server.client.history(prompt_id)
            except ServerUnreachable as err:
                self._down(server, err)
                return
            except ComfyError as err:
                server.last_error = str(err)
                continue
            if entry is None:
                if time.monotonic() - queued_at > self.job_timeout:
                    del server.in_flight[prompt_id]
                    self._forget_queued(server, [prompt_id])
                    self._attempt_failed(job, server, f"not finished {self.job_timeout:.0f} s after it was "
                                                      "queued (raise --timeout)", TIMEOUT)
                continue
            del server.in_flight[prompt_id]
            error = execution_error(entry)
            if error is not None:
                self._attempt_failed(job, server, describe_error(error), FAILED)
                continue
            seconds = time.monotonic() - queued_at
            try:
                result = self.collect(self.jobs[job], server.client, prompt_id, entry, seconds)
            except ServerUnreachable as err:      # made there, but lost with the server: made again elsewhere
                self.pending.appendleft(job)
                self._down(server, err)
                return
            except ComfyError as err:
                self._attempt_failed(job, server, str(err), FAILED)
                continue
            server.mark_done(seconds)
            self.outcomes[job] = Outcome(DONE, server.url, prompt_id, seconds=round(seconds, 2),
                                         result=result, tried=self.tried[job] + [server.url])
            for other in self.blame[job]:
                self._blame(other)

    # -- failures ----------------------------------------------------------------------------------------------
    def _attempt_failed(self, job: int, server: ServerState, error: str, status: str) -> None:
        """One attempt failed: try a live server that has not tried the job, else the job ends ``status``."""
        self.tried[job].append(server.url)
        self.blame[job].append(server)
        self.last_failure[job] = (status, server.url, error)
        server.failed += 1
        server.last_error = error
        if any(s.state == UP and s.url not in self.tried[job] for s in self.servers):
            self.log(f"job {job} {status} on {server.url}: {error[:300]}; trying another server")
            self.pending.appendleft(job)
            return
        self.outcomes[job] = Outcome(status, server.url, error=error, tried=list(self.tried[job]))
        self.log(f"job {job} {status}: {error[:1000]}")

    def _settle(self) -> None:
        """End the pending jobs that failed on every server still up (the others went down or were retired)."""
        if not any(s.state == UP for s in self.servers):
            return                       # all down: wait for one to come back (or give up in ``run``)
        for job in [j for j in self.pending if j in self.last_failure]:
            if not any(s.state == UP and s.url not in self.tried[job] for s in self.servers):
                self.pending.remove(job)
                status, url, error = self.last_failure[job]
                self.outcomes[job] = Outcome(status, url, error=error, tried=list(self.tried[job]))
                self.log(f"job {job} {status}: {error[:1000]} (every server still up tried it)")

    def _blame(self, server: ServerState) -> None:
        """A job that failed on ``server`` was made by another: ``server`` erred, not the prompt."""
        server.blamed += 1
        others = [s for s in self.servers if s.state == UP and s is not server]
        if server.state == UP and server.blamed >= self.max_server_errors and others:
            server.state = RETIRED
            jobs = server.hand_back()
            self._forget_queued(server, list(server.stale))
            self.pending.extendleft(reversed(jobs))
            self.log(f"{server.url} retired: {server.blamed} prompts failed there that other servers made "
                     f"(last: {server.last_error[:300]}); its {len(jobs)} queued prompts go to the others")

    def _down(self, server: ServerState, err: Exception) -> None:
        server.state = DOWN
        server.down_since = server.last_probe = time.monotonic()
        server.last_error = str(err)
        jobs = server.hand_back()
        self.pending.extendleft(reversed(jobs))
        self.log(f"{server.url} is down ({err}); its {len(jobs)} queued prompts go to the others, "
                 f"it is probed again every {self.revive_every:.0f} s")

    def _forget_queued(self, server: ServerState, prompt_ids: list[str]) -> None:
        """Best effort: delete prompts from a server's queue (they run elsewhere now)."""
        try:
            server.client.delete_queued(prompt_ids)
            server.stale.difference_update(prompt_ids)
        except ComfyError:
            pass

    # -- servers coming back -----------------------------------------------------------------------------------
    def _probe(self, server: ServerState, first: bool = False) -> bool:
        """Whether the server answers ``/system_stats``; the first probe marks a silent one down."""
        server.last_probe = time.monotonic()
        try:
            server.client.system_stats(timeout=10)
            return True
        except ComfyError as err:
            if first:
                self._down(server, err)
            return False

    def _revive(self) -> None:
        now = time.monotonic()
        for server in self.servers:
            if server.state == DOWN and now - server.last_probe >= self.revive_every and self._probe(server):
                server.state, server.down_since = UP, None
                self._forget_queued(server, list(server.stale))
                self.log(f"{server.url} is back: it takes prompts again")
