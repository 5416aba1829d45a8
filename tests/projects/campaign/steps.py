"""Write an out in several steps with short sleeps (a kill -9 can land between any two).

python steps.py raw OUT ROWS SCALE       each row times SCALE
python steps.py shards OUT RAW           a directory: 3 shard files and an index
python steps.py notes OUT NOTES          the notes, upper-cased, line by line
python steps.py report OUT RAW SHARDS NOTES
"""

import os
import sys
import time

PAUSE = 0.03


def write_slowly(path: str, lines: list[str]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        for line in lines:
            f.write(line + "\n")
            f.flush()
            time.sleep(PAUSE)


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def main() -> None:
    kind, out, *args = sys.argv[1:]
    if kind == "raw":
        rows = read(args[0]).split()
        write_slowly(out, [str(int(r) * int(args[1])) for r in rows])
    elif kind == "shards":
        rows = read(args[0]).split()
        for i in range(3):
            write_slowly(f"{out}/part/{i}.txt", rows[i::3] or ["empty"])
        write_slowly(f"{out}/index.txt", [f"part/{i}.txt" for i in range(3)])
    elif kind == "notes":
        write_slowly(out, [line.upper() for line in read(args[0]).splitlines()])
    elif kind == "report":
        raw, shards, notes = args
        total = sum(int(r) for r in read(raw).split())
        parts = sorted(os.listdir(f"{shards}/part"))
        sizes = [len(read(f"{shards}/part/{p}").split()) for p in parts]
        write_slowly(out, [f"total={total}", f"parts={sizes}", *read(notes).splitlines()])
    else:
        raise SystemExit(f"unknown step {kind}")


main()
