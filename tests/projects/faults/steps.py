"""Python callables for the faults project."""

import os


def explode(deps, outs, params):
    print("about to fail")
    raise RuntimeError("boom from a python callable")


def write(deps, outs, params):
    with open(deps[0]) as f:
        first = f.read().strip()
    with open(outs[0], "w") as f:
        f.write(f"{params['greeting']} {first} pid={os.getpid() != 0}\n")
    os.makedirs(os.path.join(outs[1], "sub"), exist_ok=True)
    with open(os.path.join(outs[1], "sub", "a.txt"), "w") as f:
        f.write("a\n")
    with open(os.path.join(outs[1], "b.txt"), "w") as f:
        f.write("b\n")
