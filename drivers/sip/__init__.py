"""SIP and RTP for IP phones and SIP trunks: our own stack, sans-I/O cores with thin asyncio transports.

The package imports none of its modules.
"""
