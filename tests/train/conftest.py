import shutil

import pytest


@pytest.fixture(scope="module")
def six_prompts(tmp_path_factory, demo):
    """Six of the demo's spoken stories as training prompts: enough for a few preference pairs, quick to sample."""
    folder = tmp_path_factory.mktemp("prompts")
    for path in sorted((demo.data_root / "sSC").glob("*.wav"))[:6]:
        shutil.copy(path, folder / path.name)
    return folder
