"""Unit language model back-ends, one module each, registered by name."""
