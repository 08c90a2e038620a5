"""The DAHDI constants our binding asks the compiler for, by group; names only, never values.

Pure data with no imports: ``_build.py`` loads this file by path at install time
(when the package itself may not be importable) to write the cffi declarations, and
``binding`` uses the same groups to print and check what the compiled module holds.
"""

# ioctl requests: the value encodes direction, argument size, magic 0xDA and a number,
# and the encoding differs between architectures, so only the compiler may tell.
IOCTLS = (
    "DAHDI_SPECIFY",
    "DAHDI_GET_BLOCKSIZE",
    "DAHDI_SET_BLOCKSIZE",
    "DAHDI_GET_BUFINFO",
    "DAHDI_SET_BUFINFO",
    "DAHDI_GET_PARAMS",
    "DAHDI_SETLAW",
    "DAHDI_HOOK",
    "DAHDI_GETEVENT",
    "DAHDI_SPANSTAT",
    "DAHDI_DIAL",
    "DAHDI_DIALING",
    "DAHDI_FLUSH",
    "DAHDI_SETCADENCE",
    "DAHDI_GETTONEZONE",
    "DAHDI_SETTONEZONE",
    "DAHDI_ECHOCANCEL_PARAMS",
    "DAHDI_GETRXBITS",
    "DAHDI_SETTXBITS",
    "DAHDI_CHANNO",
)

# codes DAHDI_GETEVENT returns; the three flags at the end are OR'd with a digit
EVENTS = (
    "DAHDI_EVENT_NONE",
    "DAHDI_EVENT_ONHOOK",
    "DAHDI_EVENT_RINGOFFHOOK",
    "DAHDI_EVENT_WINKFLASH",
    "DAHDI_EVENT_ALARM",
    "DAHDI_EVENT_NOALARM",
    "DAHDI_EVENT_ABORT",
    "DAHDI_EVENT_OVERRUN",
    "DAHDI_EVENT_BADFCS",
    "DAHDI_EVENT_DIALCOMPLETE",
    "DAHDI_EVENT_RINGERON",
    "DAHDI_EVENT_RINGEROFF",
    "DAHDI_EVENT_HOOKCOMPLETE",
    "DAHDI_EVENT_BITSCHANGED",
    "DAHDI_EVENT_PULSE_START",
    "DAHDI_EVENT_TIMER_EXPIRED",
    "DAHDI_EVENT_TIMER_PING",
    "DAHDI_EVENT_POLARITY",
    "DAHDI_EVENT_RINGBEGIN",
    "DAHDI_EVENT_EC_DISABLED",
    "DAHDI_EVENT_REMOVED",
    "DAHDI_EVENT_NEONMWI_ACTIVE",
    "DAHDI_EVENT_NEONMWI_INACTIVE",
    "DAHDI_EVENT_TX_CED_DETECTED",
    "DAHDI_EVENT_RX_CED_DETECTED",
    "DAHDI_EVENT_TX_CNG_DETECTED",
    "DAHDI_EVENT_RX_CNG_DETECTED",
    "DAHDI_EVENT_EC_NLP_DISABLED",
    "DAHDI_EVENT_EC_NLP_ENABLED",
    "DAHDI_EVENT_READ_OVERRUN",
    "DAHDI_EVENT_WRITE_UNDERRUN",
    "DAHDI_EVENT_PULSEDIGIT",
    "DAHDI_EVENT_DTMFDOWN",
    "DAHDI_EVENT_DTMFUP",
)

# values for DAHDI_HOOK
HOOKS = (
    "DAHDI_ONHOOK",
    "DAHDI_OFFHOOK",
    "DAHDI_WINK",
    "DAHDI_FLASH",
    "DAHDI_START",
    "DAHDI_RING",
    "DAHDI_RINGOFF",
)

# bits of dahdi_spaninfo.alarms and dahdi_params.chan_alarms
ALARMS = (
    "DAHDI_ALARM_NONE",
    "DAHDI_ALARM_RECOVER",
    "DAHDI_ALARM_LOOPBACK",
    "DAHDI_ALARM_YELLOW",
    "DAHDI_ALARM_RED",
    "DAHDI_ALARM_BLUE",
    "DAHDI_ALARM_NOTOPEN",
    "DAHDI_ALARM_LOS",
    "DAHDI_ALARM_LFA",
    "DAHDI_ALARM_LMFA",
)

# dahdi_params.sigtype. DAHDI_SIG_BROKEN is left out on purpose: it is (1 << 31) in an
# int, which C leaves undefined; a broken port shows as a negative sigtype.
SIGNALLING = (
    "DAHDI_SIG_NONE",
    "DAHDI_SIG_FXSLS",
    "DAHDI_SIG_FXSGS",
    "DAHDI_SIG_FXSKS",
    "DAHDI_SIG_FXOLS",
    "DAHDI_SIG_FXOGS",
    "DAHDI_SIG_FXOKS",
    "DAHDI_SIG_EM",
    "DAHDI_SIG_EM_E1",
    "DAHDI_SIG_CLEAR",
    "DAHDI_SIG_HDLCRAW",
    "DAHDI_SIG_HDLCFCS",
    "DAHDI_SIG_HDLCNET",
    "DAHDI_SIG_HARDHDLC",
    "DAHDI_SIG_MTP2",
    "DAHDI_SIG_SLAVE",
    "DAHDI_SIG_SF",
    "DAHDI_SIG_CAS",
    "DAHDI_SIG_DACS",
    "DAHDI_SIG_DACS_RBS",
)

# arguments of the other ioctls, and the limits of their structs
OTHER = (
    "DAHDI_LAW_DEFAULT",
    "DAHDI_LAW_MULAW",
    "DAHDI_LAW_ALAW",
    "DAHDI_FLUSH_READ",
    "DAHDI_FLUSH_WRITE",
    "DAHDI_FLUSH_BOTH",
    "DAHDI_FLUSH_EVENT",
    "DAHDI_FLUSH_ALL",
    "DAHDI_DIAL_OP_APPEND",
    "DAHDI_DIAL_OP_REPLACE",
    "DAHDI_DIAL_OP_CANCEL",
    "DAHDI_POLICY_IMMEDIATE",
    "DAHDI_POLICY_WHEN_FULL",
    "DAHDI_POLICY_HALF_FULL",
    "DAHDI_MAX_DTMF_BUF",
    "DAHDI_MAX_CADENCE",
    "DAHDI_MAX_ECHOCANPARAMS",
    "DAHDI_MAX_BLOCKSIZE",
    "DAHDI_DEFAULT_BLOCKSIZE",
    "DAHDI_MAX_NUM_BUFS",
    "DAHDI_DEFAULT_NUM_BUFS",
    "DAHDI_TONE_ZONE_MAX",
    "ELAST",
)

GROUPS = {
    "ioctl": IOCTLS,
    "event": EVENTS,
    "hook": HOOKS,
    "alarm": ALARMS,
    "signalling": SIGNALLING,
    "other": OTHER,
}

ALL = IOCTLS + EVENTS + HOOKS + ALARMS + SIGNALLING + OTHER
