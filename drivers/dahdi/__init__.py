"""DAHDI voice cards: the cffi binding to ``dahdi/user.h``, the system-call seam and the channel layer.

The binding is compiled at install time where the header exists; without it this
package still imports, and whatever needs the kernel ABI raises a DriverError that
says what to install (``binding.missing_reason()``).
"""

from .binding import available, missing_reason, require
from .channel import ChannelParams, DahdiChannel, HookResult, SpanInfo
from .events import BitsChanged, DialComplete, EventDecoder, HookComplete, Ringer
from .kernel import Kernel, OsKernel

__all__ = [
    "available", "missing_reason", "require",
    "ChannelParams", "DahdiChannel", "HookResult", "SpanInfo",
    "BitsChanged", "DialComplete", "EventDecoder", "HookComplete", "Ringer",
    "Kernel", "OsKernel",
]
