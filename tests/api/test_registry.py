import pytest

from alignslm_eval.api.registry import Registry
from alignslm_eval.io.errors import UserError


def test_register_get_and_unknown_name():
    reg = Registry("widget", "alignslm.test-widgets", ())

    @reg.register("a")
    class A:
        pass

    assert reg.get("a") is A and reg.names() == ["a"]
    with pytest.raises(UserError, match="unknown widget 'b'; registered: a"):
        reg.get("b")
    with pytest.raises(ValueError, match="twice"):
        reg.register("a")(object)


def test_builtin_components_are_registered():
    from alignslm_eval.api.registry import MODELS, SCORERS, TASK_KINDS, TOKENIZERS

    assert "hf" in MODELS.names()
    assert {"hubert", "offline"} <= set(TOKENIZERS.names())
    assert {"zerospeech_lexical", "zerospeech_syntactic", "storycloze", "salmon"} <= set(TASK_KINDS.names())
    assert "likelihood_choice" in SCORERS.names()


def test_entry_point_plugins_are_imported(monkeypatch):
    import importlib.metadata as md

    from alignslm_eval.api import registry as registry_module

    ep = md.EntryPoint(name="plug", value="tests.api.plugin_module", group="alignslm.models")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [ep] if group == "alignslm.models" else [])
    reg = Registry("model back-end", "alignslm.models", ())
    reg._items = registry_module.MODELS._items  # the plugin registers through the public decorator
    reg._loaded = False
    assert "test-plugin-lm" in reg.names()
