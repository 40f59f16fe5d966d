"""The instruction rows (issue 13): a text field that grows with its instruction, a token count
that is there as soon as a project opens, and a row that becomes the selected instruction
when the user works in it."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPlainTextEdit

from foi_engine import Instruction

LEFT = Qt.MouseButton.LeftButton
CTRL = Qt.KeyboardModifier.ControlModifier


def _new_row(window, qtbot, photo_path):
    assert window.open_path(photo_path)
    qtbot.mouseClick(window.panel.add_button, LEFT)
    layer = window.doc.layers[-1]
    return layer, window.panel.rows[layer.id]


def test_the_instruction_field_grows_with_its_text_up_to_five_lines(window, qtbot, photo_path):
    layer, row = _new_row(window, qtbot, photo_path)
    field = row.text_edit
    assert isinstance(field, QPlainTextEdit) and field.hasFocus()  # + Add puts the cursor there
    qtbot.waitUntil(field.isVisible)
    one_line = field.height()
    line = field.fontMetrics().lineSpacing()
    qtbot.keyClicks(field, "make the sky stormy")
    assert field.height() == one_line and layer.text == "make the sky stormy"
    qtbot.keyClicks(field, " with dark clouds rolling in over the hills behind the old barn")
    qtbot.waitUntil(lambda: field.height() > one_line)
    assert field.verticalScrollBar().maximum() == 0  # all of it in view
    qtbot.keyClicks(field, " and rain" * 80)
    qtbot.waitUntil(lambda: field.verticalScrollBar().maximum() > 0)  # it scrolls beyond five lines
    assert field.height() == one_line + 4 * line
    assert layer.text == field.toPlainText()
    # Undo brings the short text back, and the field shrinks to it.
    window.doc.update_layer(layer.id, text="make the sky stormy")
    qtbot.waitUntil(lambda: field.height() == one_line)


def test_enter_breaks_the_line_and_ctrl_enter_runs_edit(window, qtbot, photo_path, run):
    layer, row = _new_row(window, qtbot, photo_path)
    field = row.text_edit
    qtbot.keyClicks(field, "make the cat a tiger")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    qtbot.keyClicks(field, "with stripes")
    assert layer.text == "make the cat a tiger\nwith stripes"
    assert layer.instruction().text == "make the cat a tiger with stripes"  # the model reads one line
    qtbot.keyClick(field, Qt.Key.Key_Tab)  # Tab moves on, as in every form, instead of typing a tab
    assert "\t" not in layer.text and not field.hasFocus()
    field.setFocus()
    edits = []
    window.edit_action.triggered.connect(lambda: edits.append(True))
    qtbot.keyClick(field, Qt.Key.Key_Return, CTRL)
    assert edits == [True] and layer.text == "make the cat a tiger\nwith stripes"
    assert run(window.task) is not None and len(window.doc.results) == 1


def test_working_in_a_row_selects_its_instruction(window, qtbot):
    window.open_sample()
    first, second = (window.panel.rows[layer.id] for layer in window.doc.layers)
    assert window.panel.active_layer_id == first.layer_id
    qtbot.mouseClick(second.text_edit.viewport(), LEFT)
    assert second.text_edit.hasFocus()
    assert window.panel.active_layer_id == window.canvas.active_layer_id == second.layer_id
    qtbot.mouseClick(first.threshold_slider, LEFT)
    assert window.panel.active_layer_id == window.canvas.active_layer_id == first.layer_id
    second.text_edit.setFocus(Qt.FocusReason.TabFocusReason)  # reached with the keyboard
    assert window.panel.active_layer_id == second.layer_id
    qtbot.keyClicks(second.text_edit, " tonight")
    assert window.doc.layers[1].text.endswith(" tonight") and window.panel.active_layer_id == second.layer_id


def test_a_reopened_project_shows_its_token_count_before_the_model_loads(window, make_window, shared_client,
                                                                       qtbot, run, tmp_path):
    window.open_sample()
    path = str(tmp_path / "sample.foi")
    assert window._save_to(path)
    expected = shared_client.count_tokens([Instruction(layer.text) for layer in window.doc.layers])
    fresh = make_window()  # a new session: its own engine, nothing loaded
    assert run(fresh.open_path(path)) is True
    label = fresh.panel.tokens_label
    qtbot.waitUntil(lambda: label.text() != "", timeout=60000)
    assert label.text() == f"Tokens {expected} / {shared_client.info.max_tokens}"
    assert fresh.client.info is None  # the model itself still loads only when a run needs it
    assert [row.text_edit.toPlainText() for row in fresh.panel.rows.values()] == \
        [layer.text for layer in fresh.doc.layers]


def test_an_instruction_the_model_would_refuse_says_why_in_the_counter(window, shared_client, qtbot, photo_path):
    layer, row = _new_row(window, qtbot, photo_path)
    label = window.panel.tokens_label
    row.text_edit.setPlainText("make it snowy " * 80)  # pasted: more than the 1000 characters a run takes
    assert "write at most 1000" in label.text() and label.property("over") == "true"
    row.text_edit.setPlainText("make it snowy")
    assert label.text().startswith("Tokens ") and label.property("over") == "false"
