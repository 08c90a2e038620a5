"""ISDN PRI signalling for the E1 trunk: Q.921 (LAPD) on the D-channel and Q.931 call control.

Sans-I/O: the protocol objects take frames and ``now`` and hand back frames and
events; the DAHDI card moves the frames through the D-channel (timeslot 16).
The package imports none of its modules.
"""
