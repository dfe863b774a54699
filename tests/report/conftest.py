import shutil

import pytest

from tests.report.runs import demo_eval_run, tiny_training_run


@pytest.fixture(scope="session")
def demo_results(tmp_path_factory, demo):
    """The demo's full evaluation (about 15 s on the demo build the session has already made)."""
    return demo_eval_run(demo, tmp_path_factory.mktemp("demo-runs"))


@pytest.fixture(scope="session")
def training_run(tmp_path_factory, demo):
    prompts = tmp_path_factory.mktemp("report-prompts")
    for path in sorted((demo.data_root / "sSC").glob("*.wav"))[:8]:
        shutil.copy(path, prompts / path.name)
    return tiny_training_run(demo, prompts, tmp_path_factory.mktemp("report-align"))
