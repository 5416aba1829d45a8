"""Write a partial out, create `started`, wait (up to 60 s) for `release`, finish the out."""

import os
import sys
import time

out = sys.argv[1]
with open(out, "w") as f:
    f.write("partial\n")
with open("started", "w") as f:
    f.write(str(os.getpid()))
deadline = time.time() + 60
while not os.path.exists("release") and time.time() < deadline:
    time.sleep(0.02)
with open(out, "a") as f:
    f.write("done\n")
