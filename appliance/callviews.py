"""What call control shows of itself: trunks, seats and queues for the status command and the dashboard
(a part of ``CallCentre``)."""

from __future__ import annotations


class Views:
    def snapshot(self, now: float) -> dict:
        """Trunks, seats and queues for the status command; times are on the runtime's clock."""
        trunk_state = {"ivr": "ivr", "blocked": "ivr", "queued": "queued", "ringing": "queued", "talking": "agent",
                       "moving": "queued", "leaving": "ivr", "external": "external", "voicemail": "voicemail",
                       "calling_back": "external"}
        trunks = []
        for channel, port in enumerate(self.trunk_ports, 1):
            # a channel carries a caller, an outbound leg, a consulted number or a conference's outside party
            c = self.calls.get(port) or self.legs.get(port) or self.consults.get(port) or self.parties.get(port)
            down = port in self.faulty_ports or self.port_spans.get(port) in self.span_alarms
            trunks.append({"port": port, "channel": channel,
                           "state": trunk_state.get(c.state, "idle") if c else ("alarm" if down else "idle"),
                           "caller": c.caller if c else None, "call_id": c.call_id if c else None})
        seats = []
        for a in self.acd.agents:
            c = self.by_id.get(a.call_id) if a.call_id else None
            seats.append({"seat": a.seat, "name": a.name, "extension": a.extension, "state": a.state,
                          "reason": a.reason, "agent_id": a.agent_id,
                          "caller": c.caller if c else None, "call_id": a.call_id, "since": a.since})
        queues = {}
        for name, q in self.acd.queues.items():
            queues[name] = [{"call_id": e.call_id, "caller": self.by_id[e.call_id].caller, "position": i + 1,
                             "waiting_s": round(now - e.enqueued_at, 1), "callback": self.by_id[e.call_id].callback}
                            for i, e in enumerate(q.entries)]
        return {"trunks": trunks, "seats": seats, "queue": queues[self.queue_name], "queues": queues,
                "today": {**self.counts, "in_progress": len(self.by_id)},
                "alarms": {"spans": {str(k): v for k, v in sorted(self.span_alarms.items())},
                           "ports": {str(k): v for k, v in sorted(self.faulty_ports.items())}}}
