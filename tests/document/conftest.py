import pytest
from document_helpers import photo

from foi_desktop.document import Document


@pytest.fixture
def doc():
    document = Document(photo())
    document.add_layer("make the sky a sunset", keyword="sky")
    document.add_layer("add snow")
    document.history.clear()
    return document
