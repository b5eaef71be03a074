"""``microcinema_core.comfy_http.dispatch`` on stand-in servers (no ComfyUI): free capacity, an erroring server
retired, a prompt every server refuses, a dead server, each job collected once. The real two-server batch with
a server killed mid-batch is ``test_batch_servers.py``."""
from __future__ import annotations

import pytest

from microcinema_core.comfy_http.client import ComfyClient
from microcinema_core.comfy_http.dispatch import Dispatcher
from microcinema_core.comfy_http.errors import PromptRejected, ServerUnreachable


class StandIn(ComfyClient):
    """A server that finishes each prompt on the second poll; ``fail`` / ``refuse`` / ``dead`` / ``others``
    (prompts of other users it holds) make it misbehave."""

    def __init__(self, url, fail=False, refuse=(), dead=False, others=0):
        super().__init__(url)
        self.fail, self.refuse, self.dead, self.others = fail, set(refuse), dead, others
        self.polls, self.queued, self.deleted = {}, [], []

    def _alive(self):
        if self.dead:
            raise ServerUnreachable(f"{self.url} refused")

    def system_stats(self, timeout=None):
        self._alive()
        return {}

    def queue_remaining(self):
        self._alive()
        return self.others + sum(1 for p in self.queued if self.polls.get(p, 0) < 2)

    def queue(self, prompt, client_id=None):
        self._alive()
        if prompt["job"] in self.refuse:
            raise PromptRejected(400, {"error": f"job {prompt['job']} refused"})
        prompt_id = f"{self.url}/{len(self.queued)}"
        self.queued.append(prompt_id)
        return prompt_id

    def history(self, prompt_id):
        self._alive()
        self.polls[prompt_id] = self.polls.get(prompt_id, 0) + 1
        if self.polls[prompt_id] < 2:
            return None
        if self.fail:
            return {"status": {"status_str": "error", "messages": [
                ["execution_error", {"node_id": "6", "node_type": "Loader", "exception_message": "no model"}]]}}
        return {"outputs": {}, "status": {"status_str": "success", "messages": []}}

    def delete_queued(self, prompt_ids):
        self.deleted.extend(prompt_ids)


def _run(servers, jobs=8, **kwargs):
    made = []

    def collect(job, client, prompt_id, entry, seconds):
        made.append((job, client.url))
        return client.url

    dispatcher = Dispatcher(servers, lambda job, client: {"job": job}, collect, poll=0.001,
                            log=lambda msg: None, **kwargs)
    return dispatcher, dispatcher.run(list(range(jobs))), made


def test_healthy_servers_share_the_batch_each_job_once():
    a, b = StandIn("http://a:1"), StandIn("http://b:1")
    dispatcher, outcomes, made = _run([a, b])
    assert [o.status for o in outcomes] == ["done"] * 8
    assert sorted(job for job, _ in made) == list(range(8))
    rows = {r["server"]: r for r in dispatcher.throughput()}
    assert rows["http://a:1"]["done"] >= 2 and rows["http://b:1"]["done"] >= 2


def test_a_server_full_of_other_users_prompts_gets_none():
    busy, idle = StandIn("http://busy:1", others=5), StandIn("http://idle:1")
    _, outcomes, made = _run([busy, idle], depth=2)
    assert all(o.status == "done" for o in outcomes) and {url for _, url in made} == {"http://idle:1"}
    assert busy.queued == []


def test_an_erroring_server_is_retired_and_its_jobs_made_elsewhere():
    bad, good = StandIn("http://bad:1", fail=True), StandIn("http://good:1")
    dispatcher, outcomes, made = _run([bad, good], jobs=12, max_server_errors=3)
    assert [o.status for o in outcomes] == ["done"] * 12
    assert {url for _, url in made} == {"http://good:1"} and sorted(j for j, _ in made) == list(range(12))
    rows = {r["server"]: r for r in dispatcher.throughput()}
    assert rows["http://bad:1"]["state"] == "retired" and rows["http://bad:1"]["done"] == 0
    assert 3 <= rows["http://bad:1"]["failed_attempts"] < 12 and "no model" in rows["http://bad:1"]["last_error"]


def test_a_prompt_every_server_refuses_fails_without_retiring_them():
    a, b = StandIn("http://a:1", refuse={2}), StandIn("http://b:1", refuse={2})
    dispatcher, outcomes, made = _run([a, b], jobs=5)
    assert [o.status for o in outcomes] == ["done", "done", "rejected", "done", "done"]
    assert sorted(outcomes[2].tried) == ["http://a:1", "http://b:1"] and "refused" in outcomes[2].error
    assert {r["state"] for r in dispatcher.throughput()} == {"up"}


def test_a_dead_server_is_skipped_and_all_dead_is_said_at_once():
    dead, live = StandIn("http://dead:1", dead=True), StandIn("http://live:1")
    dispatcher, outcomes, made = _run([dead, live])
    assert all(o.status == "done" for o in outcomes) and {url for _, url in made} == {"http://live:1"}
    assert dispatcher.throughput()[0]["state"] == "down"
    with pytest.raises(ServerUnreachable, match="no ComfyUI server answers"):
        _run([StandIn("http://x:1", dead=True), StandIn("http://y:1", dead=True)])


def test_a_server_dying_mid_batch_hands_its_jobs_over():
    dying, live = StandIn("http://dying:1"), StandIn("http://live:1")
    made = []

    def collect(job, client, prompt_id, entry, seconds):
        made.append((job, client.url))
        if client is dying:
            dying.dead = True            # dies right after its first video, with another one queued

    dispatcher = Dispatcher([dying, live], lambda job, client: {"job": job}, collect, poll=0.001,
                            log=lambda msg: None, revive_every=1e9)
    outcomes = dispatcher.run(list(range(8)))
    assert all(o.status == "done" for o in outcomes)
    assert sorted(j for j, _ in made) == list(range(8)) and [u for _, u in made].count("http://dying:1") == 1
    row = dispatcher.throughput()[0]
    assert row["state"] == "down" and row["moved_to_others"] >= 1


def test_bad_server_lists_are_refused():
    with pytest.raises(ValueError, match="at least one --server"):
        Dispatcher([], None, None)
    with pytest.raises(ValueError, match="same URL given twice"):
        Dispatcher(["http://a:1", "http://a:1/"], None, None)
    with pytest.raises(ValueError, match="expected http://HOST:PORT"):
        Dispatcher(["a:1"], None, None)


def test_a_job_failed_on_every_server_still_up_ends_when_the_other_dies():
    a, b = StandIn("http://a:1", refuse={0}), StandIn("http://b:1", others=5)   # b is full at first

    def collect(job, client, prompt_id, entry, seconds):
        b.dead = True                    # b dies before it could try job 0

    dispatcher = Dispatcher([a, b], lambda job, client: {"job": job}, collect, poll=0.001,
                            log=lambda msg: None, revive_every=1e9)
    outcomes = dispatcher.run(list(range(4)))
    assert [o.status for o in outcomes] == ["rejected", "done", "done", "done"]
    assert outcomes[0].tried == ["http://a:1"]
