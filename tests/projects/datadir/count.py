"""Count the files of each class and their bytes."""

import os
import sys

src, out = sys.argv[1], sys.argv[2]
lines = []
for c in sorted(os.listdir(src)):
    path = os.path.join(src, c)
    if os.path.isdir(path) and not os.path.islink(path):
        names = sorted(os.listdir(path))
        size = sum(os.path.getsize(os.path.join(path, n)) for n in names)
        lines.append(f"{c} {len(names)} {size}\n")
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    f.writelines(lines)
