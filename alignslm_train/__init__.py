"""Align-SLM training add-on: preference optimisation (DPO with LoRA) of textless speech unit language models.

`alignslm_train.dpo` turns unit-level preference pairs into a TRL preference dataset over a word-level unit
tokenizer, trains a LoRA adapter against the adapter-disabled base as the reference, and saves the adapter with its
tokenizer and unit vocabulary so the evaluation side (`alignslm_eval`) and vLLM can load it.
"""
