"""The simulated card: a virtual PSTN on an E1 span and virtual agents on FXS ports."""

from .card import SimCard
from .parties import AgentScript, CallerScript, CallerState, PhoneState
from .traffic import poisson_callers, random_number

__all__ = ["SimCard", "AgentScript", "CallerScript", "CallerState", "PhoneState", "poisson_callers", "random_number"]
