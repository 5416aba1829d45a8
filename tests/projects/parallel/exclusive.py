"""Hold the 'gpu' for a moment; fail if someone else holds it at the same time."""

import os
import sys
import time

me, out = sys.argv[1:3]
try:
    fd = os.open("gpu.lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
except FileExistsError:
    sys.exit(f"{me}: the gpu was oversubscribed")
time.sleep(0.3)
os.close(fd)
os.unlink("gpu.lock")
with open(out, "w") as f:
    f.write(me + "\n")
