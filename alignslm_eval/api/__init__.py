"""The small core: registries and the interfaces that back-ends, tokenizers, tasks and scorers implement."""
