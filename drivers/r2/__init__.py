"""MFC/R2 signalling for E1 channels, China No.1 variant (中国一号信令), sans-I/O: line signalling on
the CAS bits (``line``), the compelled MF register exchange (``register``) and the span the card drives
(``span.R2Span``). The MF tones themselves are ``dsp.r2mf``.
"""
