"""The hardware seam: the Card protocol, the simulated card, DAHDI and SIP."""
