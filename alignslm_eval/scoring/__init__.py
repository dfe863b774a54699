"""Scorers: turn model outputs into per-item scores. Registered by name; the training add-on reuses them."""
