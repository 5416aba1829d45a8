"""Announce `me`, then wait (up to PATIENCE seconds) for `other` to announce itself."""

import os
import sys
import time

me, other, out, patience = sys.argv[1:5]
os.makedirs("flags", exist_ok=True)
open(f"flags/{me}", "w").close()
deadline = time.time() + float(patience)
while not os.path.exists(f"flags/{other}"):
    if time.time() > deadline:
        sys.exit(f"{other} never started while {me} was running: not parallel")
    time.sleep(0.01)
with open(out, "w") as f:
    f.write(f"{me} saw {other}\n")
