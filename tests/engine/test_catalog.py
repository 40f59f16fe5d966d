"""Models by name, and the run settings a model folder asks for."""

import json

import pytest

from foi_engine import ModelError, SettingsError
from foi_engine.catalog import SETTINGS_FILE, model_settings


def test_the_shapes_model_asks_for_its_size_finest_layers_and_softer_masks():
    assert model_settings("shapes") == {"resolution": 64, "grounding_factor": 1, "steps": 50, "gamma": 1,
                                      "image_guidance": 2.0, "text_guidance": 5.0}


def test_hub_models_and_plain_folders_ask_for_nothing(tmp_path):
    assert model_settings("timbrooks/instruct-pix2pix") == {}  # never looked up online
    assert model_settings(str(tmp_path)) == {}


@pytest.mark.parametrize("content, error, message", [
    ("{not json", ModelError, "cannot be read"),
    ('{"resolution": 64, "colour": "red"}', ModelError, "does not have"),
    ('["resolution"]', ModelError, "does not have"),
    ('{"steps": 0}', SettingsError, "Steps"),
])
def test_a_bad_settings_file_is_refused_with_a_message(tmp_path, content, error, message):
    (tmp_path / SETTINGS_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(error, match=message):
        model_settings(str(tmp_path))


def test_a_local_folder_can_ask_for_settings(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"gamma": 5}), encoding="utf-8")
    assert model_settings(str(tmp_path)) == {"gamma": 5}
