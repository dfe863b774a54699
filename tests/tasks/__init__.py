"""Tests of the built-in task kinds and task definitions (the alignslm_tasks package, folder tasks/)."""
