"""The one exception type for bad user input, and how the command-line tools report it."""

import argparse
import sys
from typing import Callable, NoReturn


class UserError(Exception):
    """Bad input: a missing file, a malformed column, an unknown name.

    The CLI prints the message as a single line and exits with status 2, so every message must name the file or
    field at fault and say what to do about it.
    """


def run_command(prog: str, body: Callable[[], int], interrupted: str) -> int:
    """Run a CLI body: bad input prints one line (`<prog>: error: ...`) and returns 2; Ctrl-C says what was kept
    and returns 130. Anything else is a bug and keeps its traceback."""
    try:
        return body()
    except UserError as e:
        from alignslm_eval.io.redaction import redact_text

        # Messages quote flags back, and a URL flag may carry a credential.
        print(f"{prog}: error: {redact_text(' '.join(str(e).split()))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; {interrupted}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`alignslm-eval ls | head`): stop quietly, as Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def first_line(error: BaseException, limit: int = 200) -> str:
    """What an exception says, fit for a one-line message: its first non-empty line with runs of whitespace closed
    up (the exception type's name when it says nothing), cut to `limit` characters."""
    lines = [" ".join(line.split()) for line in str(error).splitlines()]
    text = next((line for line in lines if line), type(error).__name__)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag on one line, like UserError, instead of reprinting the whole usage."""

    def error(self, message: str) -> NoReturn:
        from alignslm_eval.io.redaction import redact_text

        self.exit(2, f"{self.prog}: error: {redact_text(message)} (see {self.prog} --help)\n")
