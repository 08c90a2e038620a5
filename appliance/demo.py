"""`appliance demo`: the core and the web process on the simulated card, with Poisson traffic, in real time."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

from drivers.sim import AgentScript, CallerScript, SimCard, poisson_callers, random_number

from . import messages
from .clock import RealClock
from .config import validate
from .configfile import load_config
from .core import Core
from .datadir import DataDir, InstanceLock, default_data_dir
from .errors import ApplianceError

WEB_START_TIMEOUT_S = 20.0
SIP_HOST = "127.0.0.1"  # the demo's SIP server: phones and SIPp on this machine
SIP_TRUNKS = 30  # SIP trunk channels for test calls (SIPp), beside the simulated E1's


def check_port_free(host: str, port: int) -> None:
    """Fail with one clear line if ``host:port`` cannot be bound (before anything is started)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == 98:  # EADDRINUSE
                raise ApplianceError(f"port {port} on {host} is already in use") from None
            raise ApplianceError(f"cannot listen on {host}:{port}: {e.strerror}") from None


def resize_seats(cfg: dict, seats: int) -> dict:
    """``cfg`` with ``seats`` seats, named and numbered by the config's defaults."""
    raw = {k: v for k, v in cfg.items() if k != "seats"}
    raw["card"] = {**cfg["card"], "seats": seats}
    return validate(raw)


def add_phone_seats(cfg: dict, phones: dict[str, str]) -> dict:
    """``cfg`` with one more seat per IP phone (extension -> password) after the simulated agents' seats."""
    seats = cfg["seats"]
    first = max(s["seat"] for s in seats) + 1 if seats else 1
    extra = [{"seat": first + i, "name": f"IP {ext}", "extension": ext, "sip_password": pw}
             for i, (ext, pw) in enumerate(phones.items())]
    raw = {k: v for k, v in cfg.items() if k not in ("seats", "card")}
    raw["card"] = {**cfg["card"], "seats": len(seats) + len(extra)}
    raw["seats"] = seats + extra
    return validate(raw)


def _wait_for_port(host: str, port: int, proc: subprocess.Popen, timeout: float) -> None:
    for _ in range(int(timeout / 0.1)):
        if proc.poll() is not None:
            raise ApplianceError(f"the web process exited with status {proc.returncode} before it was ready")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ApplianceError(f"the web process did not answer on {host}:{port} within {timeout:.0f} s")


def cmd_demo(args) -> int:
    from .users import ensure_admin

    data = DataDir.open(args.data_dir or default_data_dir() / "demo", create=True)
    with InstanceLock(data.lock):
        cfg = load_config(data.config)
        if args.seats is not None:
            cfg = resize_seats(cfg, args.seats)
        host, port = cfg["web"]["listen"], args.port or cfg["web"]["port"]
        check_port_free(host, port)
        sim_seats = cfg["card"]["seats"]
        phones = sip = None
        if args.sip_port is not None:
            check_port_free(SIP_HOST, args.sip_port)
            phones = {f"200{i}": secrets.token_urlsafe(9) for i in range(1, 7)}
            cfg = add_phone_seats(cfg, phones)
        seed = args.seed if args.seed is not None else secrets.randbits(31)
        agent = AgentScript(ring_delay_s=2.0, talk_s=lambda r: r.exponential(args.aht), speech=True, tone_dbm0=-20.0)
        card = sim_card = SimCard(cfg["card"]["trunk_channels"], sim_seats, box_number=cfg["system"]["box_number"],
                                  agent=agent, media=True, seed=seed)
        if phones is not None:
            from drivers.composite import CompositeCard
            from drivers.sip.card import SipCard
            sip = SipCard(trunk_channels=SIP_TRUNKS, seats=phones, host=SIP_HOST, port=args.sip_port,
                          trunk={"host": SIP_HOST, "username": "400", "password": "", "register": False,
                                 "options": False})
            card = CompositeCard([sim_card, sip])
        core = Core(data, cfg, RealClock(), card=card)
        # a first caller at once, so even a short demo shows a whole call; then Poisson arrivals
        voice = {"speech": True, "tone_dbm0": -18.0}  # callers and agents talk, so recordings hold voices
        sim_card.add_caller(CallerScript(random_number(sim_card.rng), arrive_at=1.0, digit_delay_s=1.5, **voice))
        sim_card.set_traffic(poisson_callers(args.calls_per_hour, start=1.0, patience_s=args.patience,
                                             digit_delay_s=1.5, seed=seed, **voice))
        password = ensure_admin(data.config, reset=True)
        before = dict(core.logic.counts)
        sip_info = None if phones is None else {"host": SIP_HOST, "port": args.sip_port, "extensions": phones,
                                                 "trunk": f"sip:400@{SIP_HOST}:{args.sip_port}"}
        asyncio.run(_run(core, data, host, port, password, args.seconds, sip_info))
        after = core.logic.counts
        summary = {k: after[k] - before[k] for k in ("offered", "answered", "abandoned")}
        print(" ".join(f"{k}={v}" for k, v in summary.items()), flush=True)
    return 0


async def _run(core: Core, data: DataDir, host: str, port: int, password: str, seconds: float | None,
               sip_info: dict | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await core.start()
    web = None
    try:
        web = subprocess.Popen(
            [sys.executable, "-m", "webui", "--data-dir", str(data.root), "--listen", host, "--port", str(port)],
            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        await loop.run_in_executor(None, _wait_for_port, host, port, web, WEB_START_TIMEOUT_S)
        url = f"http://{host}:{port}/"
        info = {"url": url, "user": "admin", "password": password, "data_dir": str(data.root),
                "socket": str(data.socket), "pid": os.getpid(), "web_pid": web.pid}
        if sip_info is not None:
            info["sip"] = sip_info
        fd = os.open(data.demo_info, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info, f, ensure_ascii=False, indent=1)
        lang = core.cfg["system"]["language"]
        print(messages.text("cli.demo.ready", lang, url=url, user="admin", password=password,
                            data_dir=data.root), flush=True)
        if sip_info is not None:
            print(messages.text("cli.demo.sip", lang, host=sip_info["host"], port=sip_info["port"],
                                extensions=", ".join(sip_info["extensions"]), info=data.demo_info), flush=True)
        if seconds is not None:
            loop.call_later(seconds, stop.set)
        await core.runtime.run_realtime(stop, core.paced)
    finally:
        if web is not None and web.poll() is None:
            web.terminate()
            try:
                await loop.run_in_executor(None, web.wait, 10)
            except subprocess.TimeoutExpired:
                web.kill()
        await core.stop()
