"""Writes the numbers 1..ROWS, then the lines of src/extra.txt."""

import sys

from helpers import banner

rows, out = int(sys.argv[1]), sys.argv[2]
with open("src/extra.txt") as f:
    extra = [line.strip() for line in f if line.strip()]
with open(out, "w") as f:
    f.write(banner() + "\n")
    for i in range(1, rows + 1):
        f.write(f"{i}\n")
    for line in extra:
        f.write(f"{line}\n")
