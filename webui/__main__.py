"""``python -m webui --data-dir D``: serve the web pages of the box until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from appliance.errors import ApplianceError
from appliance.messages import text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webui", description="Web pages of the call-centre box")
    parser.add_argument("--data-dir", required=True, help="the box's data directory")
    parser.add_argument("--listen", help="address to listen on (default: web.listen in the config)")
    parser.add_argument("--port", type=int, help="TCP port (default: web.port in the config)")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh")
    args = parser.parse_args(argv)
    if args.port is not None and not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is out of range; allowed 0..65535")

    from appliance.configfile import load_config
    from appliance.datadir import DataDir

    from .app import make_app
    from appliance.users import ensure_admin
    from .server import serve

    try:
        data = DataDir.open(args.data_dir, create=False)
        web = load_config(data.config)["web"]
        host = args.listen if args.listen is not None else web["listen"]
        port = args.port if args.port is not None else web["port"]
        server = serve(make_app(data.config, data.socket, lang=args.lang), host, port)
    except ApplianceError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    try:  # only once listening, so a failed start never swallows the one-time password
        password = ensure_admin(data.config)
    except ApplianceError as e:
        server.stop()
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(server.url, flush=True)
    if password is not None:
        for lang in ("zh", "en"):
            print(text("cli.admin.created", lang, user="admin", password=password), flush=True)
    try:
        while not done.wait(1.0):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
