"""Built-in benchmark definitions for alignslm, installed as the package ``alignslm_tasks``.

Each ``*.yaml`` file here declares one task (data folder, likelihood protocol, scorer, citation) and names a task
kind; the kinds are implemented in this package's modules and registered with ``register_task_kind``:

- ``zerospeech``: ``zerospeech_lexical`` (sWUGGY) and ``zerospeech_syntactic`` (sBLIMP) from ZeroSpeech 2021.
- ``choice``: ``storycloze`` (spoken and topic StoryCloze) and ``salmon`` (SALMon acoustic consistency/alignment).
"""
