"""Writes the adapters' test inputs: text lines, gzipped when the name ends in .gz."""

import gzip


def write_lines(path, lines):
    """Writes one line per element to `path` (a pathlib.Path); returns the path."""
    text = "".join(line + "\n" for line in lines)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
