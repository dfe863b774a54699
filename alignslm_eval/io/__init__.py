"""Files and the terminal: audio, unit files, the unit cache, atomic writes, path checks, errors and redaction."""
