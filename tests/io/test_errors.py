from alignslm_eval.io.errors import first_line


def test_first_line_is_the_first_said_line_with_whitespace_closed_up() -> None:
    assert first_line(ValueError("\n   \n  size  mismatch\tfor x\nsecond line")) == "size mismatch for x"


def test_first_line_of_a_silent_exception_is_its_type_name() -> None:
    assert first_line(KeyError()) == "KeyError" and first_line(OSError("  \n ")) == "OSError"


def test_first_line_is_cut_to_the_limit_with_a_mark() -> None:
    text = first_line(RuntimeError("x" * 500), limit=40)
    assert len(text) == 40 and text.endswith("...")
    assert first_line(RuntimeError("y" * 40), limit=40) == "y" * 40
