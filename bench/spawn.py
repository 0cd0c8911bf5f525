"""Run one command and write its wall time and resource usage as JSON: ``spawn.py RESULT CMD [ARG...]``.

Linux carries a process's peak RSS across fork and exec (``ru_maxrss`` of a child starts at its parent's
RSS when it forked), so a command started straight from the benchmark process, which holds the lab and
pypsrp, would report the benchmark's memory as its own. This launcher is started with ``python -S -I``
(a few MB), and forks the measured command from there. Standard library only, nothing imported from bench.
"""

import json
import os
import sys
import time


def main() -> int:
    result_path, argv = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    with open(result_path, "w", encoding="utf-8") as out:
        json.dump(
            {
                "wall": wall,
                "returncode": os.waitstatus_to_exitcode(status),
                "peak_rss_mb": round(usage.ru_maxrss / scale, 1),
                "cpu": usage.ru_utime + usage.ru_stime,
            },
            out,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
