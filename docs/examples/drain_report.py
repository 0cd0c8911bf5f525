"""Drain one service on one server with the ocsps library, print the report as JSON, exit like the CLI.

    python drain_report.py med01.contoso.com RTCMEDSRV --timeout 45m --poll 10s

Connection settings come from the same places as for the ocsps command: OCSPS_* environment variables,
the config file and its profiles (OCSPS_PROFILE), the password from OCSPS_PASSWORD. The product comes
from the profile or OCSPS_PRODUCT, else --product.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import ocsps
from ocsps.catalog import load_catalog
from ocsps.durations import parse_duration
from ocsps.jsonout import to_builtins
from ocsps.operations.drain import DrainReportDocument, Phase
from ocsps.remote.profiles import find_config, resolve_settings


def main() -> int:
    parser = argparse.ArgumentParser(description="Drain a service and report as JSON.")
    parser.add_argument("host")
    parser.add_argument("service")
    parser.add_argument("--product", help="product id when neither the profile nor OCSPS_PRODUCT sets it")
    parser.add_argument("--timeout", default="30m", help="how long the drain may take (default 30m)")
    parser.add_argument("--poll", default="5s", help="how often to read status (default 5s)")
    parser.add_argument("--then", default="fail", choices=["fail", "force-stop", "leave"])
    args = parser.parse_args()
    try:
        settings = resolve_settings(
            {"host": args.host, "product": args.product}, os.environ, find_config(os.environ), None, None
        )
        if settings.product is None:
            raise ocsps.UsageError("which product? pass --product or set OCSPS_PRODUCT")
        product = load_catalog().product(settings.product)
        with ocsps.Server(ocsps.ServerSession(settings, product)) as server:
            report = server.drain(
                args.service,
                timeout=parse_duration(args.timeout),
                poll=parse_duration(args.poll),
                then=args.then,
            )
    except ocsps.OcspsError as exc:
        # One line naming the host; exit_code follows the CLI: 2 usage, 3 connection, 4 timeout, 1 other.
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(to_builtins(DrainReportDocument.of(report)), indent=2))
    if report.phase is Phase.DEADLINE:
        return 4
    return 0 if report.ok and not report.error else 1


if __name__ == "__main__":
    sys.exit(main())
