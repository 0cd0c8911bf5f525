"""Drain a service on several servers with the ocsps command and act on its JSON document.

    python drain_with_cli.py RTCMEDSRV --hosts-file mediation.txt --product sfb2019 --rolling

Every argument after the service name is passed to ``ocsps drain`` unchanged (``--rolling``: one server at
a time, each started again before the next). The script prints one line
per host and exits with ocsps's own exit code (0 all ok, 1 a host failed, 2 bad input, 3 connection,
4 deadline, 130 interrupted).
"""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: drain_with_cli.py SERVICE [ocsps drain options...]", file=sys.stderr)
        return 2
    service, options = sys.argv[1], sys.argv[2:]
    # The same interpreter that has ocsps installed; stderr (progress, errors) passes through.
    done = subprocess.run(
        [sys.executable, "-m", "ocsps", "drain", "--service", service, *options, "--json"],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode == 2 or not done.stdout.strip():
        return done.returncode  # bad input: nothing was sent and the error is already on stderr
    document = json.loads(done.stdout)
    for host in document["hosts"]:
        result = host.get("result") or {}
        detail = host.get("error") or result.get("note") or ""
        print(f"{host['host']}: {host['state']} ({result.get('phase', '-')}) {detail}".rstrip())
    return int(document["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
