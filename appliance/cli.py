"""The `appliance` command: run the core, the demo, a simulation, or edit the config.

Every failure a person can cause (bad config, missing data directory, port in use,
a second instance) ends with one line `error: ...` on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import signal
import sys

from .acd import LEGACY_NAMES, STRATEGIES
from .errors import ApplianceError

log = logging.getLogger("appliance")


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
        return value
    return parse


def _patience(text: str) -> float:
    if text.strip().lower() in ("inf", "infinity", "none"):
        return math.inf
    return _positive(float)(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="appliance", description="Six-seat call-centre appliance: core, demo, simulation.")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the core (real time) on the card the config names")
    run.add_argument("--data-dir", help="data directory (default: $APPLIANCE_DATA_DIR or ~/.local/share/appliance)")
    run.add_argument("--init", action="store_true", help="create the data directory if it is missing")

    demo = sub.add_parser("demo", help="core + web page on the simulated card with generated traffic")
    demo.add_argument("--data-dir", help="data directory (default: the demo folder under ~/.local/share/appliance)")
    demo.add_argument("--seconds", type=_positive(float), help="stop after this many seconds and print a summary")
    demo.add_argument("--port", type=int, default=None, help="web port (default: the config's web.port, 8080)")
    demo.add_argument("--calls-per-hour", type=_positive(float), default=240.0)
    demo.add_argument("--seats", type=int, default=None, help="seats (default: the config's, 6)")
    demo.add_argument("--aht", type=_positive(float), default=40.0, help="mean talk time, seconds")
    demo.add_argument("--patience", type=_patience, default=90.0, help="mean patience, seconds, or inf")
    demo.add_argument("--seed", type=int, default=None)
    demo.add_argument("--sip-port", type=int, default=None,
                      help="also serve SIP on 127.0.0.1:PORT: IP phones as extensions 2001-2006 (passwords "
                           "generated, in DATA_DIR/demo.json) and a trunk that takes calls to 400 from 127.0.0.1")

    sim = sub.add_parser("simulate", help="the core in virtual time on the simulated card; prints JSON")
    sim.add_argument("--hours", type=_positive(float), required=True)
    sim.add_argument("--calls-per-hour", type=_positive(float), required=True)
    sim.add_argument("--seats", type=int, default=6)
    sim.add_argument("--aht", type=_positive(float), default=180.0, help="mean talk time, seconds (exponential)")
    sim.add_argument("--patience", type=_patience, default=math.inf, help="mean patience, seconds, or inf")
    sim.add_argument("--strategy", default="longest-idle", type=lambda v: LEGACY_NAMES.get(v, v),
                     help=f"which available agent gets the next call: {', '.join(STRATEGIES)}")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--media", action="store_true", help="move all digits and audio through the media path")
    sim.add_argument("--trunks", type=int, default=30)
    sim.add_argument("--ring-delay", type=float, default=2.0, help="seconds an agent lets the phone ring")

    cfg = sub.add_parser("config", help="show, check or change the configuration")
    cfg.add_argument("--data-dir")
    cfg.add_argument("args", nargs=argparse.REMAINDER, help="show | check | defaults | set KEY VALUE")

    ctl = sub.add_parser("call", help="run a command of the running core's control API and print its answer, "
                         "e.g. config.reload, or agent.state seat=1 state=busy reason=meal")
    ctl.add_argument("--data-dir")
    ctl.add_argument("cmd", help="command name (\"commands\" lists them)")
    ctl.add_argument("args", nargs="*", metavar="KEY=VALUE", help="arguments; a value that parses as JSON is taken "
                     "as such (1, true, [..]), any other as a string")

    dahdi = sub.add_parser("dahdi-conf", help="print /etc/dahdi/system.conf for the configuration, or apply it")
    dahdi.add_argument("--data-dir")
    dahdi.add_argument("--apply", action="store_true", help="write it and run dahdi_cfg (restores the old file on failure)")
    dahdi.add_argument("--path", default="/etc/dahdi/system.conf", help="where --apply writes it")
    return p


def _data_dir(path: str | None, create: bool):
    from .datadir import DataDir, default_data_dir
    return DataDir.open(path or default_data_dir(), create=create or path is None)


async def _serve(core, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await core.start()
    try:
        await core.runtime.run_realtime(stop, core.paced)
    finally:
        await core.stop()


def cmd_run(args) -> int:
    from .clock import RealClock
    from .configfile import load_config
    from .core import Core
    from .datadir import InstanceLock
    data = _data_dir(args.data_dir, args.init)
    with InstanceLock(data.lock):
        cfg = load_config(data.config)
        core = Core(data, cfg, RealClock(), hotplug=_hotplug())
        print(f"core running; control socket {data.socket}", flush=True)
        asyncio.run(_serve(core, asyncio.Event()))
    return 0


def _hotplug():
    """The udev watcher for a real run, or None where udev cannot be read (a container, a test box)."""
    try:
        import pyudev

        from drivers.hotplug_watch import Hotplug
        return Hotplug(pyudev.Context())
    except (ImportError, OSError) as e:
        log.warning("hotplug off: udev cannot be read (%s)", e)
        return None


def sim_params(args):
    """The ``simulate`` subcommand's arguments as ``appliance.simulate.SimParams``."""
    from .simulate import SimParams
    if not 1 <= args.seats <= 24:
        raise ApplianceError(f"--seats: {args.seats} is out of range; allowed 1..24")
    if not 1 <= args.trunks <= 31:
        raise ApplianceError(f"--trunks: {args.trunks} is out of range; allowed 1..31")
    return SimParams(hours=args.hours, calls_per_hour=args.calls_per_hour, seats=args.seats, aht=args.aht,
                     patience=args.patience, strategy=args.strategy, seed=args.seed, media=args.media,
                     trunks=args.trunks, ring_delay=args.ring_delay)


def cmd_simulate(args) -> int:
    from .simulate import simulate
    print(json.dumps(simulate(sim_params(args))))
    return 0


def cmd_config(args) -> int:
    from .configfile import config_main
    return config_main(args.args, _data_dir(args.data_dir, False))


def cmd_call(args) -> int:
    from .client import ControlClient
    fields = {}
    for item in args.args:
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise ApplianceError(f"argument {item!r} is not KEY=VALUE")
        try:
            fields[key] = json.loads(text)
        except ValueError:
            fields[key] = text
    with ControlClient(str(_data_dir(args.data_dir, False).socket)) as client:
        print(json.dumps(client.call(args.cmd, **fields), ensure_ascii=False))
    return 0


def cmd_dahdi_conf(args) -> int:
    from drivers.dahdi.sysconf import apply, system_conf

    from .configfile import load_config
    cfg = load_config(_data_dir(args.data_dir, False).config)
    if args.apply:
        print(apply(cfg, args.path), end="")
    else:
        print(system_conf(cfg), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "demo":
            from .demo import cmd_demo
            return cmd_demo(args)
        if args.command == "simulate":
            return cmd_simulate(args)
        if args.command == "dahdi-conf":
            return cmd_dahdi_conf(args)
        if args.command == "call":
            return cmd_call(args)
        return cmd_config(args)
    except ApplianceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
