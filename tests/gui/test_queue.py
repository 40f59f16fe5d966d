"""Runs queue behind one another: the results strip shows them waiting and running, Cancel
takes one off, Edit ×N is N jobs; driven through the real window with the tiny model."""

from foi_desktop.jobs import JobState
from foi_desktop.results import JOB_ROLE
from foi_engine import EditSettings


def _captions(window):
    strip = window.results.list
    return [strip.item(row).text() for row in range(strip.count())]


def _job_tile(window, job_id):
    strip = window.results.list
    return next(strip.item(row) for row in range(strip.count()) if strip.item(row).data(JOB_ROLE) == job_id)


def _edit_with_seed(window, seed):
    window.doc.set_seed(seed, fixed=True)
    window.edit_action.trigger()
    return window.task


def test_three_edits_queue_behind_a_running_one_and_cancel_takes_the_second_off(window, qtbot, run, photo_path):
    window.open_path(photo_path)
    window.doc.add_layer("make it snowy")
    window.doc.settings = EditSettings(steps=40, strength=1.0, resolution=64)
    first = _edit_with_seed(window, 1)
    qtbot.waitUntil(lambda: window.jobs.running() is not None and window.jobs.running().step >= 1, timeout=60000)
    assert window.edit_action.isEnabled()  # Edit while one runs queues another
    queued = [_edit_with_seed(window, seed) for seed in (2, 3, 4)]
    running, *waiting = window.jobs.active()
    assert running.state is JobState.RUNNING and running.label == "seed 1"
    assert [(job.state, job.label) for job in waiting] == [(JobState.QUEUED, f"seed {seed}") for seed in (2, 3, 4)]
    # The strip shows them after the results: the running one with its step, the others waiting.
    captions = _captions(window)
    assert captions[0].startswith("Step ") and captions[0].endswith("/40\nseed 1")
    assert captions[1:] == ["Queued\nseed 2", "Queued\nseed 3", "Queued\nseed 4"]
    assert "Cancel (Esc) takes it off the queue" in _job_tile(window, waiting[1].id).toolTip()
    # Select the second one waiting and Cancel: it ends at once, the running one goes on.
    window.results.list.setCurrentItem(_job_tile(window, waiting[1].id))
    assert window.results.current() is None and window.results.current_job_id() == waiting[1].id
    window.cancel_action.trigger()
    assert window.jobs.running().id == running.id and waiting[1].id not in [j.id for j in window.jobs.jobs()]
    assert "Queued\nseed 3" not in _captions(window)
    entries = [run(task) for task in (first, *queued)]
    assert entries[2] is None and window.doc.results == [entries[0], entries[1], entries[3]]
    assert [entry.seed for entry in window.doc.results] == [1, 2, 4]
    assert [caption.split("\n")[1] for caption in _captions(window)] == ["seed 1", "seed 2", "seed 4"]
    assert window.jobs.jobs() == [] and not window.cancel_action.isEnabled()


def test_edit_times_n_is_n_jobs_each_with_its_seed(window, qtbot, run, photo_path):
    window.open_path(photo_path)
    window.doc.add_layer("make it snowy")
    window.doc.settings = EditSettings(steps=4, resolution=64)
    window.variations_box.setValue(3)
    window.variations_action.trigger()
    jobs = window.jobs.active()
    assert len(jobs) == 3 and jobs[0].label == "seed 0"  # the fixed seed first, as Edit would use it
    assert len({job.label for job in jobs}) == 3
    assert _captions(window) == [f"Queued\n{job.label}" for job in jobs]  # none has started yet
    entries = run(window.task)
    assert [f"seed {entry.seed}" for entry in entries] == [job.label for job in jobs]


def test_progress_shows_on_the_running_jobs_tile_and_in_the_status_bar(window, qtbot, run, photo_path):
    window.open_path(photo_path)
    window.doc.add_layer("make it snowy")
    window.doc.settings = EditSettings(steps=60, strength=1.0, resolution=64)
    task = window.start_edit()
    qtbot.waitUntil(lambda: (window.jobs.running() is not None and window.jobs.running().step >= 2
                             and window.jobs.running().preview is not None), timeout=60000)
    job = window.jobs.running()
    tile = _job_tile(window, job.id)
    assert tile.text().startswith("Step ") and window.step_label.text().startswith("Step ")
    assert window.progress_bar.isVisible() and window.progress_bar.maximum() == 60
    window.cancel_action.trigger()  # nothing selected in the strip: the running one
    assert run(task) is None and window.doc.results == [] and window.results.list.count() == 0
    assert not window.progress_bar.isVisible() and window.statusBar().currentMessage() == "Cancelled."
