"""Simulated CMPP 2.0 and SMGP 3.0 gateways on real localhost TCP sockets, one thread each.

Every PDU the client sends is decoded with the codecs; what breaks the protocol
(a wrong authenticator, bad long-message fields, an unknown PDU) is appended to
``errors`` so tests can assert it stays empty. Knobs: ``login_status`` refuses
logins, ``answer_submits`` goes silent, ``drop()`` breaks the connection; the
``send_*`` methods push reports, inbound messages and active tests.
"""
from __future__ import annotations

import socket
import threading

from appliance.sms import cmpp, smgp

SECRET = "s3cret"


class SimGateway:
    """A gateway for ``protocol`` ("cmpp" or "smgp") accepting one client connection at a time."""

    def __init__(self, protocol: str, account: str, secret: str = SECRET) -> None:
        self.protocol, self.account, self.secret = protocol, account, secret
        self.codec = cmpp if protocol == "cmpp" else smgp
        self.login_status = 0
        self.answer_submits = True
        self.submit_status = 0  # nonzero: every submit answered with this result (a refusal)
        self.submits: list[tuple[int, object]] = []  # (seq, Submit) in arrival order
        self.refs: list[str] = []  # Msg_Id text given to each answered submit, as the client writes it
        self.received: list[object] = []  # every PDU, in order
        self._unanswered: list[int] = []  # sequence ids of submits held back while answer_submits is off
        self.errors: list[str] = []
        self.logins = 0
        self._cond = threading.Condition()
        self._conn: socket.socket | None = None
        self._seq, self._next_id = 1000, 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    # -- test controls ----------------------------------------------------------------------------------------
    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        """Wait (at most ``timeout``) until ``predicate()`` holds; the server thread notifies on each PDU."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def count(self, cls: type) -> int:
        with self._cond:
            return sum(isinstance(p, cls) for p in self.received)

    def drop(self) -> None:
        """Break the current connection (the client sees EOF)."""
        with self._cond:
            if self._conn is not None:
                try:
                    self._conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # the client hung up first

    def send_report(self, ref: str, stat: str = "DELIVRD") -> None:
        if self.protocol == "cmpp":
            rep = cmpp.StatusReport(int(ref), stat, "2611281123", "2611281124", "13800138000", 1)
            pdu = cmpp.Deliver(self._new_id_raw(), "10086", "13800138000", b"", registered_delivery=1, report=rep)
        else:
            rep = smgp.Report(bytes.fromhex(ref), "001", "001", "2611281123", "2611281124", stat, "000")
            pdu = smgp.Deliver(self._new_id_raw(), "13800138000", "10001", b"", is_report=1, report=rep)
        self._send(pdu)

    def send_inbound(self, sender: str, parts: list[bytes], fmt: int = 8, udhi: bool = False) -> None:
        """Send one Deliver per content in ``parts`` (UDH included by the caller when ``udhi``)."""
        for content in parts:
            if self.protocol == "cmpp":
                pdu = cmpp.Deliver(self._new_id_raw(), "10086", sender, content, msg_fmt=fmt, tp_udhi=int(udhi))
            else:
                tlvs = [(smgp.TAG_TP_UDHI, b"\x01")] if udhi else []
                pdu = smgp.Deliver(self._new_id_raw(), sender, "10001", content, msg_format=fmt, tlvs=tlvs)
            self._send(pdu)

    def answer_pending(self) -> None:
        """Answer (accept) every submit held back while ``answer_submits`` was off."""
        with self._cond:
            held, self._unanswered = self._unanswered, []
            for seq in held:
                if self._conn is not None:
                    self._conn.sendall(self.codec.encode(self._submit_resp(), seq))

    def _submit_resp(self) -> object:
        raw = self._new_id_raw()
        if self.submit_status:
            return self.codec.SubmitResp(raw, self.submit_status)
        self.refs.append(str(raw) if isinstance(raw, int) else raw.hex())
        return self.codec.SubmitResp(raw, 0)

    def send_active_test(self) -> None:
        self._send(self.codec.ActiveTest())

    def close(self) -> None:
        self.drop()
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux; close() alone would not
        self._listener.close()
        self._thread.join(5)

    # -- the server thread -----------------------------------------------------------------------------------
    def _send(self, pdu: object) -> None:
        with self._cond:
            self._seq += 1
            if self._conn is not None:
                self._conn.sendall(self.codec.encode(pdu, self._seq))

    def _new_id_raw(self) -> int | bytes:
        self._next_id += 1
        if self.protocol == "cmpp":
            return cmpp.MsgId(11, 28, 11, 23, 0, 4242, self._next_id).to_int()
        return bytes.fromhex("123456" + "11281123" + "%06d" % self._next_id)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # listener closed
            with self._cond:
                self._conn, self._unanswered = conn, []
            decoder = self.codec.Decoder()
            try:
                while data := conn.recv(65536):
                    for seq, pdu in decoder.feed(data):
                        self._handle(conn, seq, pdu)
            except Exception as exc:  # noqa: BLE001 - recorded for the test to see
                if not isinstance(exc, OSError):
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            with self._cond:
                self._conn = None
                conn.close()
                self._cond.notify_all()

    def _handle(self, conn: socket.socket, seq: int, pdu: object) -> None:
        c, reply = self.codec, None
        with self._cond:
            self.received.append(pdu)
            if isinstance(pdu, (cmpp.Connect, smgp.Login)):
                reply = self._login(pdu)
            elif isinstance(pdu, c.Submit):
                self._check_submit(pdu)
                self.submits.append((seq, pdu))
                if self.answer_submits:
                    reply = self._submit_resp()
                else:
                    self._unanswered.append(seq)
            elif isinstance(pdu, c.ActiveTest):
                reply = c.ActiveTestResp()
            elif isinstance(pdu, (cmpp.Terminate, smgp.Exit)):
                reply = cmpp.TerminateResp() if self.protocol == "cmpp" else smgp.ExitResp()
            elif not isinstance(pdu, (c.DeliverResp, c.ActiveTestResp)):
                self.errors.append(f"unexpected PDU {pdu!r}")
            if reply is not None:
                conn.sendall(c.encode(reply, seq))
            self._cond.notify_all()

    def _login(self, pdu: object) -> object:
        self.logins += 1
        if self.protocol == "cmpp":
            want = cmpp.authenticator_source(self.account, self.secret, pdu.timestamp)
            name, version = pdu.source_addr, cmpp.VERSION
        else:
            want = smgp.authenticator_client(self.account, self.secret, pdu.timestamp)
            name, version = pdu.client_id, smgp.VERSION
        if pdu.authenticator != want or name != self.account:
            self.errors.append(f"login: authenticator or account wrong for {name!r}")
        if pdu.version != version or not 101000000 <= pdu.timestamp <= 1231235959:
            self.errors.append(f"login: version {pdu.version:#x} or timestamp {pdu.timestamp} wrong")
        resp = cmpp.ConnectResp if self.protocol == "cmpp" else smgp.LoginResp
        return resp(self.login_status)

    def _check_submit(self, pdu: object) -> None:
        if self.protocol == "cmpp":
            total, number, udhi = pdu.pk_total, pdu.pk_number, pdu.tp_udhi
        else:
            total = smgp.tlv_int(pdu.tlvs, smgp.TAG_PK_TOTAL, 1)
            number = smgp.tlv_int(pdu.tlvs, smgp.TAG_PK_NUMBER, 1)
            udhi = smgp.tlv_int(pdu.tlvs, smgp.TAG_TP_UDHI)
        content = pdu.msg_content
        if total > 1:
            udh_ok = content[:3] == b"\x05\x00\x03" and content[4] == total and content[5] == number
            if not (udhi == 1 and udh_ok and 1 <= number <= total):
                self.errors.append(f"submit part {number}/{total}: UDH {content[:6].hex()} udhi {udhi}")
        elif udhi:
            self.errors.append("single submit with TP_udhi set")
        if len(content) > 140:
            self.errors.append(f"submit content {len(content)} octets, max 140")
