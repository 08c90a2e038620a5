"""The simulated card: a virtual PSTN on an E1 span and virtual agents on FXS ports."""

from .card import SPAN_ALARMS, SimCard
from .parties import AgentScript, CallerScript, CallerState, PhoneState
from .pstn import CAUSES, OUTCOMES, OutboundScript, OutboundState
from .traffic import poisson_callers, random_number

__all__ = ["SimCard", "SPAN_ALARMS", "AgentScript", "CallerScript", "CallerState", "PhoneState", "CAUSES", "OUTCOMES",
           "OutboundScript", "OutboundState", "poisson_callers", "random_number"]
