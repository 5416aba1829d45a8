"""The python-callable twin of wait.py (runs in a loky worker process)."""

import os
import time


def wait(deps, outs, params):
    with open(outs[0], "w") as f:
        f.write("partial\n")
    with open("started", "w") as f:
        f.write(str(os.getpid()))
    deadline = time.time() + 60
    while not os.path.exists("release") and time.time() < deadline:
        time.sleep(0.02)
    with open(outs[0], "a") as f:
        f.write("done\n")
