"""`python -m appliance.sms`: send a text message through the running core and follow it, for technicians.

A client of the control API, like the console: ``send`` subscribes to ``sms.*``
first (so no state change is missed), asks the core to queue the message with
``sms.send``, prints its id, then follows its ``sms.state`` events until the
state is final, asking ``sms.status`` every few seconds in case events were
lost. ``status ID`` prints one message's state.

Exit status: 0 delivered or sent (and ``--no-wait``, and an answered
``status``); 1 failed, unknown, or still queued/sending at ``--timeout``;
2 bad usage or a command the core refused; 3 the core is not running.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from appliance.client import ApiError, ApiUnavailable, ControlClient, subscribe
from appliance.datadir import DataDir, default_data_dir

VIAS = ("modem", "smgp", "cmpp", "http")
FINAL = ("delivered", "failed", "unknown")
PROGRESS = ("queued", "sending", "sent")  # the order a message moves in before its final state
STATUS_EVERY = 3.0  # seconds between sms.status checks: events can be lost (overflow, a core restart)
# The message id goes to sms.status as msg_id, not id: on the wire ``id`` is the request's own id (the server
# takes it out before the arguments), as fax.status takes job_id.
ID_ARG = "msg_id"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_CORE = 0, 1, 2, 3


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds greater than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m appliance.sms", description="Send a text message through the running core.")
    sub = p.add_subparsers(dest="command", required=True)
    send = sub.add_parser("send", help="queue a message, print its id, wait for its delivery report")
    send.add_argument("--to", required=True, help="the recipient's phone number")
    send.add_argument("--text", required=True, help="the message text")
    send.add_argument("--via", choices=VIAS, help="transport (default: the core's configured one)")
    send.add_argument("--timeout", type=_positive_seconds, default=120.0,
                      help="seconds to wait for a final state (default 120)")
    send.add_argument("--no-wait", action="store_true", help="print the id and return once the message is queued")
    status = sub.add_parser("status", help="print the state of one message")
    status.add_argument("id", help="the message id that send printed")
    for q in (send, status):
        q.add_argument("--socket", help="the control socket (default: control.sock in the data directory)")
        q.add_argument("--data-dir", help="data directory (default: $APPLIANCE_DATA_DIR or ~/.local/share/appliance)")
    return p


def socket_path(args: argparse.Namespace) -> str:
    """``--socket``, else the data directory's socket; nothing is created or checked (the connect says why)."""
    if args.socket:
        return args.socket
    root = pathlib.Path(args.data_dir or default_data_dir()).expanduser().absolute()
    return str(DataDir(root).socket)


def _status_line(state: str, reason: str | None) -> str:
    if state in ("failed", "unknown"):
        return f"status: {state}: {reason or 'no reason given'}"
    return f"status: {state}"


def _timeout_line(state: str, timeout: float) -> str:
    if state == "sent":
        return f"status: sent (no delivery report within {timeout:g} s)"
    return f"status: {state} (not sent within {timeout:g} s)"


class _Tracker:
    """The furthest state one message has reached, from events and status answers in any order.

    A final state ends it; among queued/sending/sent a late answer never moves it back
    (a status answer may overtake events still in the socket).
    """

    def __init__(self, msg_id: str, state: str) -> None:
        self.id, self.state, self.reason = msg_id, state, None

    def update(self, state: str, reason: str | None) -> None:
        if self.final or not isinstance(state, str):  # a final state stays; a malformed answer is no news
            return
        if state in PROGRESS and self.state in PROGRESS and PROGRESS.index(state) < PROGRESS.index(self.state):
            return
        self.state, self.reason = state, reason

    @property
    def final(self) -> bool:
        return self.state in FINAL


def _follow(client: ControlClient, sub, msg: _Tracker, timeout: float, poll_s: float) -> None:
    """Update ``msg`` from ``sub``'s events and sms.status until it is final or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    next_poll = time.monotonic() + poll_s
    while not msg.final:
        now = time.monotonic()
        if now >= deadline:
            return
        if now >= next_poll:
            m = client.call("sms.status", **{ID_ARG: msg.id})["message"]
            msg.update(m["state"], m.get("reason"))
            next_poll = time.monotonic() + poll_s
            continue
        if sub is None:
            time.sleep(min(next_poll, deadline) - now)
            continue
        try:
            event = next(sub)  # None after the subscription's idle timeout
        except (ApiUnavailable, StopIteration):
            sub.close()
            sub = None  # the event stream broke (overflow, restart): sms.status alone from here on
            continue
        if event is not None and event.get("event") == "sms.state":
            data = event.get("data") or {}
            if data.get("id") == msg.id:
                msg.update(data.get("state"), data.get("reason"))


def cmd_send(args: argparse.Namespace, path: str, poll_s: float) -> int:
    # Subscribe before sending: the core may publish the first states before it answers sms.send.
    with subscribe(path, patterns=["sms.*"], timeout=min(poll_s, args.timeout)) as sub, \
            ControlClient(path) as client:
        fields = {"to": args.to, "text": args.text}
        if args.via:
            fields["via"] = args.via
        m = client.call("sms.send", **fields)["message"]
        print(f"id: {m['id']}", flush=True)
        msg = _Tracker(m["id"], m["state"])
        if args.no_wait:
            print(_status_line(msg.state, m.get("reason")))
            return EXIT_OK
        _follow(client, sub, msg, args.timeout, poll_s)
        why = None if msg.final or msg.state == "sent" else _why_waiting(client, m.get("via"), msg.reason)
    if msg.final:
        print(_status_line(msg.state, msg.reason))
        return EXIT_OK if msg.state == "delivered" else EXIT_FAILED
    print(_timeout_line(msg.state, args.timeout) + (f": {why}" if why else ""))
    return EXIT_OK if msg.state == "sent" else EXIT_FAILED


def _why_waiting(client: ControlClient, via: str, reason: str | None) -> str | None:
    """Why a message is still waiting: its transport down (and why), or the last try's reason."""
    try:
        transport = client.call("sms.transports")["transports"].get(via) or {}
    except ApiError:
        transport = {}
    if transport and not transport.get("up", True):
        return f"{via} is down: {transport.get('reason') or 'no reason given'}"
    return reason


def cmd_status(args: argparse.Namespace, path: str) -> int:
    with ControlClient(path) as client:
        m = client.call("sms.status", **{ID_ARG: args.id})["message"]
    print(f"id: {m.get('id', args.id)}")
    for key in ("to", "via", "parts", "tries", "transport_ref"):
        if key in m:
            print(f"{key}: {'-' if m[key] is None else m[key]}")
    print(_status_line(m["state"], m.get("reason")))
    return EXIT_OK


def main(argv: list[str] | None = None, poll_s: float = STATUS_EVERY) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status.

    ``poll_s`` is the interval between sms.status checks while waiting (tests shorten it).
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage error (status 2) or the help (0)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    path = socket_path(args)
    try:
        if args.command == "send":
            return cmd_send(args, path, poll_s)
        return cmd_status(args, path)
    except ApiError as e:
        print(f"sms: {e.code}: {e.message}", file=sys.stderr)
        return EXIT_USAGE
    except ApiUnavailable as e:
        print(f"sms: {e}", file=sys.stderr)
        return EXIT_NO_CORE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
