"""``python -m mlbuild.executors.pyjob``: run one pickled Job's callable in this fresh
interpreter (the Job on stdin, the pickled JobResult on stdout).

How a Dask worker runs a ``python:`` target (see executors/local.py): a worker may not
start a process pool, and the callable must not share the worker's process (it redirects
file descriptors and changes directory). A separate module, not ``mlbuild.jobs.call`` itself,
so that the result pickles as ``mlbuild.jobs.spec.JobResult``, not ``__main__.JobResult``.
"""

from __future__ import annotations

import pickle
import sys

from ..jobs.call import call_python


def main() -> None:
    job = pickle.loads(sys.stdin.buffer.read())
    result = call_python(job)
    sys.stdout.buffer.write(pickle.dumps(result))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
