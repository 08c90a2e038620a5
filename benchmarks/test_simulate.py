"""One busy day of a six-seat centre in `appliance simulate` without media (issue 6): 8 hours, about 2,000
calls, AHT 60 s, everyone patient. The target is 10 s or less on the appliance's class of machine; it is
recorded, and asserted only with a wide margin so that a loaded 2-core CI machine does not fail it."""

from __future__ import annotations

from appliance.simulate import SimParams, simulate


def test_simulate_busy_day_without_media(benchmark):
    params = SimParams(hours=8, calls_per_hour=250, seats=6, aht=60.0, seed=1)
    out = benchmark.pedantic(simulate, args=(params,), rounds=3, iterations=1)
    assert out["offered"] > 1900 and out["answered"] == out["offered"]
    benchmark.extra_info.update(calls=out["offered"], wall_s=out["wall_s"])
    assert benchmark.stats.stats.max < 10.0
