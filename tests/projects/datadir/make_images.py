"""Write a small image-dataset-shaped directory: 3 classes x 20 files, a script, a link."""

import os
import sys

out = sys.argv[1]
for c in ("cat", "dog", "fox"):
    os.makedirs(os.path.join(out, c), exist_ok=True)
    for i in range(20):
        with open(os.path.join(out, c, f"{i:03d}.bin"), "w") as f:
            f.write(f"{c} {i}\n" * (i + 1))
with open(os.path.join(out, "fetch.sh"), "w") as f:
    f.write("#!/bin/sh\necho fetched\n")
os.chmod(os.path.join(out, "fetch.sh"), 0o755)
os.symlink("cat/000.bin", os.path.join(out, "first.bin"))
