"""SMS (短信): message coding, the GSM modem and the carriers' gateways, the outbox, templates and campaigns.

Codecs are sans-I/O: ``gsm7`` (the GSM default alphabet and septet packing),
``pdu`` (SMS-SUBMIT, SMS-DELIVER and SMS-STATUS-REPORT in PDU mode, long
messages split and joined by UDH), ``gwcodec`` (what CMPP and SMGP frames share),
``smgp`` and ``cmpp`` (the carriers' enterprise gateway protocols).

Transports (``transport.SmsTransport``): ``modemlink`` (the AT dialogue of
``atmodem`` on a serial port), ``gatewaylink`` (a ``gateway`` session on TCP),
``httpgw`` (an HTTP gateway by URL template).

The box: ``outbox`` (the durable queue, sent at most once), ``service`` (the pump
between the outbox and the transports), ``worker`` (the thread that runs it),
``store`` (templates, campaigns, opt-outs, messages received; it and the outbox
open their files through ``sqlfile``), ``templates``,
``schedule`` and ``campaign`` (campaigns in time and within allowed hours),
``dispatch`` (notices on events), ``settings`` (the config sections). The control
API's commands are ``appliance.smsapi``; the command line is ``python -m appliance.sms``.
"""
