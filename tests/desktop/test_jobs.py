"""The editor's Qt-free jobs model: order, cancel, observable changes carrying their job's id."""

import pytest

from foi_desktop.jobs import Job, JobError, JobEvent, JobEventKind, JobKind, JobQueue, JobState


@pytest.fixture
def queue():
    return JobQueue()


@pytest.fixture
def seen(queue):
    events = []
    queue.events.connect(events.append)
    return events


def test_jobs_run_one_at_a_time_in_the_order_enqueued(queue):
    first = queue.enqueue(JobKind.LOCATE, "request 1", "Find regions")
    second = queue.enqueue(JobKind.EDIT, "request 2", "Edit: make it winter")
    assert (first.state, first.kind, second.kind) == (JobState.QUEUED, JobKind.LOCATE, JobKind.EDIT)
    taken = queue.take()
    assert taken.id == first.id and taken.state is JobState.RUNNING and taken.request == "request 1"
    assert queue.take() is None  # one runs already
    queue.finish(first.id, "located")
    assert queue.take().id == second.id
    queue.fail(second.id, RuntimeError("The model ran out of memory."))
    assert queue.take() is None
    assert [(j.state, j.result, j.error) for j in queue.jobs()] == [
        (JobState.DONE, "located", None), (JobState.FAILED, None, "The model ran out of memory.")]
    assert queue.get(first.id).request is None  # a finished job lets its photo go


def test_every_change_is_announced_with_its_jobs_id(queue, seen):
    job = queue.enqueue(JobKind.EDIT)
    queue.take()
    queue.progress(job.id, 0, 4, preview="preview 1")
    queue.progress(job.id, 1, 4)  # no new preview: the last one stays
    queue.finish(job.id, "result")
    assert [(e.kind, e.job_id) for e in seen] == [("added", job.id), ("state", job.id), ("progress", job.id),
                                                   ("progress", job.id), ("state", job.id)]
    assert all(isinstance(e, JobEvent) and e.job.id == e.job_id for e in seen)
    progress = [e.job for e in seen if e.kind == "progress"]
    assert [(j.step, j.steps, j.progress, j.preview) for j in progress] == [(1, 4, 0.25, "preview 1"),
                                                                           (2, 4, 0.5, "preview 1")]
    assert seen[-1].job.state is JobState.DONE and seen[-1].job.progress == 1.0


def test_cancel_ends_a_queued_job_at_once_and_asks_a_running_one_to_stop(queue, seen):
    running = queue.enqueue(JobKind.EDIT)
    waiting = queue.enqueue(JobKind.EDIT)
    queue.take()
    assert queue.cancel(waiting.id).state is JobState.CANCELLED
    assert queue.cancel_event(waiting.id).is_set()
    still = queue.cancel(running.id)
    assert still.state is JobState.RUNNING and queue.cancel_event(running.id).is_set()
    queue.cancelled(running.id)  # the runner reports the engine stopped
    assert queue.get(running.id).state is JobState.CANCELLED
    assert queue.take() is None  # the cancelled queued job never runs


def test_reports_after_a_job_ended_change_nothing(queue, seen):
    job = queue.enqueue(JobKind.EDIT)
    queue.take()
    queue.cancel(job.id)
    queue.cancelled(job.id)
    count = len(seen)
    queue.progress(job.id, 3, 4, "late preview")
    queue.finish(job.id, "late result")
    queue.fail(job.id, "late failure")
    assert len(seen) == count
    assert queue.get(job.id).state is JobState.CANCELLED and queue.get(job.id).result is None


def test_jobs_are_values_and_unknown_ids_are_refused(queue):
    job = queue.enqueue(JobKind.EDIT)
    queue.take()
    assert job.state is JobState.QUEUED  # the Job handed out earlier is not changed behind the holder's back
    with pytest.raises(JobError):
        queue.progress(999, 0, 1)
    with pytest.raises(TypeError):
        queue.enqueue("edit")
    queue.finish(job.id, "done")
    queue.forget_finished()
    assert queue.jobs() == [] and isinstance(job, Job)


def test_cancel_all_and_active(queue):
    jobs = [queue.enqueue(JobKind.EDIT) for _ in range(3)]
    queue.take()
    assert [j.id for j in queue.active()] == [j.id for j in jobs]
    queue.cancel_all()
    assert [j.state for j in queue.jobs()] == [JobState.RUNNING, JobState.CANCELLED, JobState.CANCELLED]
    assert queue.running().id == jobs[0].id



def test_a_view_hears_only_the_kinds_of_job_event_it_connects_to(queue):
    progress = []
    queue.events.progress.connect(progress.append)
    job = queue.enqueue(JobKind.EDIT)
    queue.take()
    queue.progress(job.id, 0, 2)
    with queue.events.progress.blocker():  # a job list that rebuilds itself anyway
        queue.progress(job.id, 1, 2)
    queue.finish(job.id, "result")
    assert [(e.kind, e.job.step) for e in progress] == [(JobEventKind.PROGRESS, 1)]


def test_forget_drops_a_finished_job_and_says_so(queue, seen):
    job = queue.enqueue(JobKind.EDIT)
    queue.take()
    with pytest.raises(JobError):
        queue.forget(job.id)  # still running
    queue.fail(job.id, "The server stopped answering.")
    queue.forget(job.id)
    assert queue.jobs() == [] and (seen[-1].kind, seen[-1].job_id) == ("removed", job.id)
