"""DAHDI voice cards: the cffi binding to ``dahdi/user.h`` (``binding``), the system-call seam (``kernel``),
the channel layer (``channel``, ``events``), the card (``card``, ``ports``) and system.conf (``sysconf``).

The binding is compiled at install time where the header exists; without it this
package still imports, and whatever needs the kernel ABI raises a DriverError that
says what to install (``binding.missing_reason()``). Import the modules you need:
this package imports none of them, so ``sysconf`` (which the configuration's
validation uses) costs nothing of the binding.
"""
