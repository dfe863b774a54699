"""The command-line tools: `alignslm-eval` (eval.py), `alignslm-data` (data.py), `alignslm-leaderboard`
(leaderboard.py). Each only parses flags and calls the library; nothing imports them."""
