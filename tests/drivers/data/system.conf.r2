#| Expected system.conf for China No.1 signalling: span.signalling mfcr2, span.framing cas, span.crc4 false,
#| card.echo_canceller mg2; the six default FXS ports.
#| Written and checked by hand against: dahdi-tools 3.1.0 /usr/share/doc/dahdi/examples/system.conf.sample
#|   ("Span Configuration": framing cas for E1, crc4 only when asked for; "Echo Cancellers": mg2);
#|   /usr/share/doc/dahdi/examples/genconf_parameters ("For MFC/R2 Support": E1 spans CAS with the
#|   r2_idle_bits, default 1101); openr2's doc/asterisk/mx/README (system.conf: span=1,1,0,cas,hdb3,
#|   cas=1-15:1101, cas=17-31:1101 and no dchan line: timeslot 16 carries the CAS bits).
#| `dahdi_cfg -t -vv` parses it: test_expected_files_parse_with_dahdi_cfg.
#| The tests drop these "#|" lines and compare the rest byte for byte with system_conf().
# /etc/dahdi/system.conf, generated from the call-centre appliance's configuration.
# Do not edit by hand: the next change of settings overwrites it. Change the
# span, analog and card settings instead (web page or `appliance config set`).
# Read by dahdi_cfg.

# Span 1: E1 to the carrier, mfcr2 signalling, timing from the line
span=1,1,0,cas,hdb3
cas=1-15:1101
cas=17-31:1101
echocanceller=mg2,1-15,17-31

# Analog ports: fxoks = a port that rings a phone (FXS), fxsks = a port on a line (FXO)
fxoks=32-37
echocanceller=mg2,32-37

# Tone zone: dial tone, ringing cadence and other tones DAHDI plays
loadzone=cn
defaultzone=cn
