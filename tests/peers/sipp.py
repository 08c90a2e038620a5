"""SIPp (Debian sip-tester) scenarios for the tests: a caller of the box's number over the SIP trunk.

Run SIPp where ``pcap`` links to /usr/share/sip-tester (``link_pcaps``): the scenarios play its
``g711a.pcap`` audio and its RFC 4733 ``dtmf_2833_1.pcap`` key press.
"""

from __future__ import annotations

import os

PCAPS = "/usr/share/sip-tester"

_HEAD = """Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{calling}@[local_ip]:[local_port]>;tag=[pid]c[call_number]
To: <sip:{called}@[remote_ip]:[remote_port]>{to_tag}
Call-ID: [call_id]
CSeq: {cseq}
Max-Forwards: 70"""


def caller_scenario(called: str, calling: str, *, audio: bool, dtmf_after_ms: int, hangup_after_ms: int) -> str:
    """A caller who calls ``called`` as ``calling`` (SIPp keywords allowed), plays the PCMA pcap if ``audio``,
    presses 1 (RFC 4733) ``dtmf_after_ms`` after the answer, and hangs up ``hangup_after_ms`` after that."""
    def head(cseq: str, to_tag: str = "") -> str:
        return _HEAD.format(calling=calling, called=called, cseq=cseq, to_tag=to_tag)

    play = '  <nop><action><exec play_pcap_audio="pcap/g711a.pcap"/></action></nop>\n' if audio else ""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="a caller of {called}: presses 1, hangs up">
  <send retrans="500"><![CDATA[
INVITE sip:{called}@[remote_ip]:[remote_port] SIP/2.0
{head("1 INVITE")}
Contact: sip:caller@[local_ip]:[local_port]
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[local_ip_type] [local_ip]
t=0 0
m=audio [auto_media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
{head("1 ACK", "[peer_tag_param]")}
Content-Length: 0

]]></send>
{play}  <pause milliseconds="{dtmf_after_ms}"/>
  <nop><action><exec play_pcap_audio="pcap/dtmf_2833_1.pcap"/></action></nop>
  <pause milliseconds="{hangup_after_ms}"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
{head("2 BYE", "[peer_tag_param]")}
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


def link_pcaps(where) -> None:
    """Make ``where/pcap`` the sip-tester pcaps the scenarios play."""
    os.symlink(PCAPS, os.path.join(where, "pcap"))
