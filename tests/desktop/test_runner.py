"""The job runner, Qt-free: it takes the queue's jobs one at a time, hands each to the engine
client with its id and cancel event, and reports back by job id (a fake client stands for the
engine thread)."""

import asyncio
from types import SimpleNamespace

import pytest

from foi_desktop.document import EditRequest
from foi_desktop.jobs import JobKind, JobQueue, JobState
from foi_desktop.runner import JobRunner, LocateRequest
from foi_engine import Cancelled, ModelError
from foi_engine.errors import ServerGoneError


class Signal:
    def __init__(self):
        self.slots = []

    def connect(self, slot):
        self.slots.append(slot)

    def disconnect(self, slot):
        self.slots.remove(slot)

    def emit(self, *args):
        for slot in list(self.slots):
            slot(*args)


class FakeClient:
    """Records each request; the test settles its future as the engine thread would."""

    def __init__(self, remote=False):
        self.progress = Signal()
        self.choice = SimpleNamespace(remote=remote)
        self.calls = []

    def edit(self, image, instructions, settings, seed, masks, job_id, cancel):
        return self._call("edit", seed, job_id, cancel)

    def locate(self, image, instructions, settings, seed, job_id, cancel):
        return self._call("locate", seed, job_id, cancel)

    def _call(self, kind, seed, job_id, cancel):
        future = asyncio.get_event_loop().create_future()
        self.calls.append(SimpleNamespace(kind=kind, seed=seed, job_id=job_id, cancel=cancel, future=future))
        return future


def request(seed):
    """An EditRequest with only what the runner hands on."""
    return EditRequest(photo=None, instructions=[], masks=[], settings=None, seed=seed, layer_ids=[], names=[],
                       colors=[], snapshot=[])


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()
    asyncio.set_event_loop(None)


def settle(loop):
    for _ in range(5):
        loop.run_until_complete(asyncio.sleep(0))


def test_jobs_run_one_at_a_time_oldest_first_with_their_own_cancel_event(loop):
    queue, client = JobQueue(), FakeClient()
    JobRunner(queue, client)
    first = queue.enqueue(JobKind.LOCATE, LocateRequest(None, [], None, 1, []), "Find regions")
    second = queue.enqueue(JobKind.EDIT, request(2), "seed 2")
    settle(loop)
    assert [(c.kind, c.job_id) for c in client.calls] == [("locate", first.id)]
    assert client.calls[0].cancel is queue.cancel_event(first.id)
    client.calls[0].future.set_result("maps")
    settle(loop)
    assert queue.get(first.id).state is JobState.DONE and queue.get(first.id).result == "maps"
    assert [(c.kind, c.seed) for c in client.calls] == [("locate", 1), ("edit", 2)]
    assert queue.running().id == second.id


def test_a_late_progress_report_never_shows_against_another_job(loop):
    queue, client = JobQueue(), FakeClient()
    JobRunner(queue, client)
    first, second = (queue.enqueue(JobKind.EDIT, request(seed)) for seed in (1, 2))
    settle(loop)
    client.progress.emit(first.id, 0, 10, "preview of the first")
    queue.cancel(first.id)
    client.calls[0].future.set_exception(Cancelled("Cancelled."))  # the engine stopped within the step
    settle(loop)
    assert queue.get(first.id).state is JobState.CANCELLED and queue.running().id == second.id
    client.progress.emit(first.id, 1, 10, "a late preview of the first")  # sent before it stopped
    assert (queue.get(second.id).step, queue.get(second.id).preview) == (0, None)
    client.progress.emit(second.id, 0, 4, "preview of the second")
    assert (queue.get(second.id).step, queue.get(second.id).preview) == (1, "preview of the second")
    client.progress.emit(999, 0, 4, None)  # a request made outside the queue: nobody's


def test_a_failed_job_keeps_its_message_and_the_next_one_runs(loop):
    queue, client = JobQueue(), FakeClient(remote=True)
    runner = JobRunner(queue, client)
    first, second = (queue.enqueue(JobKind.EDIT, request(seed)) for seed in (1, 2))
    settle(loop)
    waited = runner.wait(first.id)
    client.calls[0].future.set_exception(ServerGoneError("The server at http://gpu-box:8765 stopped answering."))
    settle(loop)
    assert waited.result().state is JobState.FAILED
    assert queue.get(first.id).error == "The server at http://gpu-box:8765 stopped answering."
    assert queue.running().id == second.id
    # A server's missing model is the server's business: failed, nobody asked.
    client.calls[1].future.set_exception(ModelError("The server has no model 'x'."))
    settle(loop)
    assert queue.get(second.id).state is JobState.FAILED


def test_a_model_missing_here_is_asked_for_then_the_job_runs_again_or_the_queue_stops(loop):
    queue, client = JobQueue(), FakeClient()
    answers = [True, False]
    asked = []

    async def ask_model(error):
        asked.append(str(error))
        return answers.pop(0)

    JobRunner(queue, client, ask_model)
    first, second, third = (queue.enqueue(JobKind.EDIT, request(seed)) for seed in (1, 2, 3))
    settle(loop)
    client.calls[0].future.set_exception(ModelError("No model here."))
    settle(loop)
    assert asked == ["No model here."] and [c.job_id for c in client.calls] == [first.id, first.id]
    client.calls[1].future.set_result("edited on the model chosen instead")
    settle(loop)
    assert queue.get(first.id).state is JobState.DONE
    client.calls[2].future.set_exception(ModelError("No model here."))
    settle(loop)
    # "Not now": this job and the one waiting behind it need a model too.
    assert [queue.get(job.id).state for job in (second, third)] == [JobState.CANCELLED, JobState.CANCELLED]
    assert len(client.calls) == 3


def test_closing_lets_the_client_go_and_cancels_those_who_wait(loop):
    queue, client = JobQueue(), FakeClient()
    runner = JobRunner(queue, client)
    job = queue.enqueue(JobKind.EDIT, request(1))
    settle(loop)
    waited = runner.wait(job.id)
    runner.close()
    runner.close()  # a window may be closed twice
    assert waited.cancelled() and client.progress.slots == []
    queue.enqueue(JobKind.EDIT, request(2))
    settle(loop)
    assert len(client.calls) == 1
