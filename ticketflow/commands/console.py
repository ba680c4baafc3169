"""`ticketflow console`: the local console in the browser, over the same home the CLI uses."""

from __future__ import annotations

import argparse
import ipaddress
import json
import threading
from pathlib import Path

from ticketflow.ops.target import add_home_option, fail, home_of


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "console", help="serve the local console (executions, graph, data, upload, redrive) on http://127.0.0.1")
    add_home_option(p)
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; anything else lets other "
                        "machines upload and redrive: there is no login)")
    p.add_argument("--contract", type=Path,
                   help="contract YAML the uploads, redrives and reprocesses run with "
                        "(default: contracts/support_tickets.yaml)")
    p.add_argument("--max-concurrent-runs", type=int, default=2, help="the local Glue job's MaxConcurrentRuns")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--no-watch", action="store_true",
                      help="leave uploads to a `ticketflow watch` beside the console (the buttons still work)")
    mode.add_argument("--read-only", action="store_true",
                      help="pages only: no runtime, no upload, no buttons")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from waitress import create_server

    from ticketflow.console.app import create_app
    from ticketflow.console.worker import ConsoleWorker
    from ticketflow.local.asl import DEFAULT_DEFINITION
    from ticketflow.local.interrupts import Interrupts

    home = home_of(args).resolve()
    if args.contract and not args.contract.is_file():
        return fail(f"no such contract file: {args.contract}")
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    home.mkdir(parents=True, exist_ok=True)
    worker = None if args.read_only else ConsoleWorker(
        home, args.contract, max_concurrent_runs=args.max_concurrent_runs, event_source=not args.no_watch,
        say=lambda line: print(line, flush=True))
    definition = json.loads(DEFAULT_DEFINITION.read_text(encoding="utf-8"))
    app = create_app(home, worker, definition)
    try:
        server = create_server(app, host=args.host, port=args.port, threads=8, ident="ticketflow-console")
    except OSError as err:
        return fail(f"cannot listen on {args.host}:{args.port}: {err.strerror or err} (another --port?)")
    port = server.effective_port
    # Only the names of the address served are accepted in the Host header (no DNS rebinding).
    if loopback:
        app.config["TRUSTED_HOSTS"] = [f"127.0.0.1:{port}", f"localhost:{port}"]
    if not loopback:
        print(f"warning: listening on {args.host}, reachable from other machines; the console has no login",
              flush=True)
    with Interrupts() as interrupts:
        if worker is not None:
            worker.start()
        serving = threading.Thread(target=server.run, name="console-http", daemon=True)
        serving.start()
        shown = "127.0.0.1" if loopback else args.host
        print(f"console: http://{shown}:{port}/ over {home} (Ctrl-C to stop)", flush=True)
        interrupts.draining.wait()
        if worker is not None:
            running = worker.in_flight()
            if running:
                print(f"stopping: waiting for {len(running)} running execution(s); Ctrl-C again to stop them",
                      flush=True)
            worker.drain()
            while worker.in_flight() and not interrupts.aborting.is_set():
                interrupts.aborting.wait(0.2)
            if interrupts.aborting.is_set():
                worker.abort()
            worker.join(60)
        server.close()
    print("console stopped", flush=True)
    return 130
