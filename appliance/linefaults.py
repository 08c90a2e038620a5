"""Line faults in call control: spans in alarm and ports out of service (a part of ``CallCentre``)."""

from __future__ import annotations

from drivers.base import Alarm, PortFault

from .actions import Action, Publish


class LineFaults:
    def _span_alarm(self, event: Alarm, now: float) -> list[Action]:
        """Mark a span down or up; its calls end by the card's own Released events (cause 38)."""
        alarms = sorted(event.alarms)
        if alarms:
            self.span_alarms[event.span] = alarms
        else:
            self.span_alarms.pop(event.span, None)
        return [Publish("span.alarm", {"span": event.span, "alarms": alarms})]

    def _port_fault(self, event: PortFault, now: float) -> list[Action]:
        """A port that fails is out of service until it works again, then back as the agent had chosen
        (available, busy with its reason, or logged out); a seat's call on it ends."""
        out: list[Action] = [Publish("port.fault", {"port": event.port, "ok": event.ok, "reason": event.reason})]
        agent = self.acd.by_port.get(event.port)
        if not event.ok:
            self.faulty_ports[event.port] = event.reason
            if agent is not None and agent.state != "out_of_service":
                if agent.state == "talking":
                    out += self._onhook(event.port, now)  # nobody can hear the agent any more
                # what the seat goes back to: its chosen state; a call or a lifted phone is over by then
                state = agent.resume if agent.resume is not None else agent.state
                reason = agent.resume_reason if agent.resume is not None else agent.reason
                if state not in ("busy", "logged_out") or reason == "off_hook":
                    state, reason = "available", None
                agent.before_fault = (state, reason)
                agent.resume, agent.wrap_until = None, None
                out += self._agent_state(agent, "out_of_service", now, event.reason or None)
            return out
        self.faulty_ports.pop(event.port, None)
        if agent is not None and agent.state == "out_of_service":
            state, reason = agent.before_fault or ("available", None)
            agent.before_fault = None
            if state == "available":
                agent.idle_since = now
            out += self._agent_state(agent, state, now, reason) + self._dispatch(now)
        return out
