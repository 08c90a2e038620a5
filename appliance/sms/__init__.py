"""SMS (短信): message coding, the GSM modem and the carriers' gateways, the outbox.

Codecs are sans-I/O: ``gsm7`` (the GSM default alphabet and septet packing),
``pdu`` (SMS-SUBMIT, SMS-DELIVER and SMS-STATUS-REPORT in PDU mode, long
messages split and joined by UDH), ``smgp`` and ``cmpp`` (the carriers'
enterprise gateway protocols).
"""
