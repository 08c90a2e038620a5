"""A bridged pair passes every A-law byte unchanged through the tick (decode, switch, encode): an E1
B-channel bridged to a SIP leg carries the carrier's bytes to the phone as they came."""

from __future__ import annotations

import numpy as np

from appliance.switch import Switch
from dsp.g711 import alaw_decode, alaw_encode


def test_every_alaw_code_crosses_a_bridge_unchanged():
    rng = np.random.default_rng(7)
    n = 4
    sw = Switch(n)
    sw.connect(0, 3)  # say an E1 channel and an IP phone's port
    rx_alaw = rng.integers(0, 256, (n, 160), dtype=np.uint8)
    rx_alaw[0, :] = np.arange(160, dtype=np.uint8)  # codes 0..159 one way
    rx_alaw[3, :] = np.arange(96, 256, dtype=np.uint8)  # and 96..255 the other
    rxf = alaw_decode(rx_alaw).astype(np.float32)
    txf = np.zeros_like(rxf)
    sw.mix(rxf, txf)
    tx = np.clip(txf, -32768, 32767).astype(np.int16)
    tx_alaw = alaw_encode(tx)
    assert (tx_alaw[3] == rx_alaw[0]).all() and (tx_alaw[0] == rx_alaw[3]).all()
