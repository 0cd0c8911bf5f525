"""A lab in its own process, so that the simulated servers do not share the client's interpreter.

In-process, the lab's HTTP threads, NTLM sealing and PSRP framing compete with the client for one GIL,
and a fan-out figure would measure that contention instead of ocsps. Run as
``python -m bench.labproc --servers N --latency-ms M``: it prints one JSON line (address, port,
credentials, hosts) and serves until its standard input closes or reads ``quit``; ``requests`` prints
the WSMan request counters summed over all hosts, ``reset`` zeroes them. With ``--step-clock`` the
simulated servers' clock stands still until ``clock N`` moves it to N seconds after the start (the drain
measurement moves it one step per poll, so a drain takes the same number of polls on any machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from types import TracebackType
from typing import IO, Any

from bench.common import PYTHON, REPO, child_env


class StepClock:
    """A simulated server clock that only moves when told (``set(n)``: n seconds after the start)."""

    def __init__(self) -> None:
        import time

        self.base = time.time()
        self.offset = 0.0

    def __call__(self) -> float:
        return self.base + self.offset

    def set(self, seconds: float) -> None:
        self.offset = float(seconds)


def serve(servers: int, latency_ms: int, drain_seconds: float, step_clock: bool = False) -> int:
    from ocsps.lab.runtime import Lab
    from ocsps.lab.topology import synthetic_topology

    topology = synthetic_topology(servers, drain_seconds=drain_seconds)
    clock = StepClock()
    if step_clock:
        for server in topology.servers:
            server.clock = clock
    with Lab(topology=topology, latency_ms=latency_ms) as lab:
        info = {
            "address": lab.listener.address,
            "port": lab.port,
            "auth": lab.auth,
            "username": lab.username,
            "password": lab.password,
            "hosts": [
                {"fqdn": s.fqdn, "path": lab.listener.path(s.fqdn), "product": s.product.id}
                for s in topology.servers
            ],
        }
        print(json.dumps(info), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            if command == "requests":
                print(json.dumps(lab.requests()), flush=True)
            elif command == "reset":
                lab.listener.reset_counters()
                print("{}", flush=True)
            elif command.startswith("clock "):
                clock.set(float(command.split()[1]))
                print("{}", flush=True)
    return 0


class LabProcess:
    """Start ``serve`` in a child process and build connection settings that reach its hosts."""

    def __init__(
        self, servers: int, latency_ms: int, drain_seconds: float = 2.0, step_clock: bool = False
    ) -> None:
        self.argv = [
            PYTHON, "-m", "bench.labproc",
            "--servers", str(servers),
            "--latency-ms", str(latency_ms),
            "--drain-seconds", str(drain_seconds),
            *(["--step-clock"] if step_clock else []),
        ]
        self._proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> LabProcess:
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=child_env(),
            cwd=REPO,
            text=True,
        )
        line = self._stdout.readline()
        if not line:
            self.close()
            raise RuntimeError("the lab process exited before it was ready")
        self.info = json.loads(line)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def _stdin(self) -> IO[str]:
        assert self._proc is not None and self._proc.stdin is not None
        return self._proc.stdin

    @property
    def _stdout(self) -> IO[str]:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout

    def _ask(self, command: str) -> dict[str, int]:
        self._stdin.write(command + "\n")
        self._stdin.flush()
        answer: dict[str, int] = json.loads(self._stdout.readline())
        return answer

    def requests(self) -> dict[str, int]:
        return self._ask("requests")

    def reset(self) -> None:
        self._ask("reset")

    def set_clock(self, seconds: float) -> None:
        """Move the simulated servers' clock (started with ``step_clock``)."""
        self._ask(f"clock {seconds}")

    @property
    def hosts(self) -> list[str]:
        return [h["fqdn"] for h in self.info["hosts"]]

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.write("quit\n")
                proc.stdin.close()
            proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=10)
        finally:
            if proc.stdout is not None:
                proc.stdout.close()


def settings_for(info: dict[str, Any], fqdn: str) -> Any:
    """What ``Lab.settings_for`` returns, rebuilt from the lab process's description."""
    from ocsps.remote.settings import ConnectionSettings, Secret

    host = next(h for h in info["hosts"] if h["fqdn"] == fqdn)
    return ConnectionSettings(
        host=fqdn,
        connect_address=info["address"],
        port=info["port"],
        ssl=False,
        path=host["path"],
        auth=info["auth"],
        username=info["username"],
        password=Secret(info["password"]),
        encryption="never" if info["auth"] == "basic" else "auto",
        product=host["product"],
        no_proxy=True,
    )


def client_kwargs(info: dict[str, Any], fqdn: str) -> dict[str, Any]:
    """What ``LabServer.client_kwargs`` returns: keyword arguments for pypsrp's ``WSMan`` / ``Client``."""
    host = next(h for h in info["hosts"] if h["fqdn"] == fqdn)
    kwargs: dict[str, Any] = {
        "server": info["address"],
        "port": info["port"],
        "path": host["path"],
        "ssl": False,
        "auth": info["auth"],
        "username": info["username"],
        "password": info["password"],
        "no_proxy": True,
    }
    if info["auth"] == "basic":
        kwargs["encryption"] = "never"
    return kwargs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.labproc", description=__doc__)
    parser.add_argument("--servers", type=int, required=True)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--drain-seconds", type=float, default=2.0)
    parser.add_argument("--step-clock", action="store_true", help="the clock moves only on 'clock N'")
    args = parser.parse_args(argv)
    return serve(args.servers, args.latency_ms, args.drain_seconds, args.step_clock)


if __name__ == "__main__":
    sys.exit(main())
