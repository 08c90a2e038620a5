"""Fax over audio: V.21 HDLC control channel, fax tones, and (later) the page modems, T.4 and T.30."""
