"""A stand-in third-party plugin: registering through the public decorator is all a plugin does."""

from alignslm_eval.api.registry import register_model


@register_model("test-plugin-lm")
class PluginLM:
    pass
