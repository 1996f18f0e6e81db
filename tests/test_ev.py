"""EV bookkeeping over a batch of days (architecture.md §6, conventions.md habit 4)."""

from __future__ import annotations

import numpy as np

from powertrip_env.config import load_scenario_config
from powertrip_env.ev import AlignedSession, EVFleetState, session_tables
from powertrip_env.scenario import build_scenario

DT_H = 1 / 12


def _walk_no_control(sessions: tuple[AlignedSession, ...], p_max: np.ndarray) -> np.ndarray:
    """(n_cp, 288) the guarantee's upper bound at every step, delivered in full: step by step."""
    ev = EVFleetState(sessions, p_max, DT_H, 288, energy_guarantee=True)
    out = np.zeros((p_max.size, 288))
    for t in range(288):
        _, upper = ev.bounds(t)
        out[:, t] = upper
        ev.deliver(t, upper)
    assert np.all(ev.unserved_kwh() <= 1e-9)  # no control fills every EV
    return out


def test_batched_tables_equal_each_day_stepped_alone() -> None:
    """A batch of days gives, day by day, exactly (bit for bit) what one EVFleetState walked
    under no control gives, and what each day's own tables hold."""
    cfg = load_scenario_config()
    p_max = np.array([d.p_max_kw for d in cfg.devices.cps])
    days = [build_scenario(cfg, s, n_loads=55).sessions for s in range(12)]
    days.append(())  # a day without EVs
    days.append((AlignedSession(1, 100, 120, 1.0),))  # one short session, one CP
    tables = session_tables(days, p_max, DT_H, 288)
    assert tables.requested_kwh.shape == (len(days), max(len(d) for d in days))
    for k, sessions in enumerate(days):
        alone = EVFleetState(sessions, p_max, DT_H, 288, energy_guarantee=False)
        np.testing.assert_array_equal(tables.no_control_kw[k], _walk_no_control(sessions, p_max))
        np.testing.assert_array_equal(tables.no_control_kw[k], alone.request_profile_kw)
        np.testing.assert_array_equal(tables.session_at[k], alone.session_at)
        np.testing.assert_array_equal(tables.stop_at[k], alone.stop_at)
        np.testing.assert_array_equal(
            tables.requested_kwh[k],
            np.pad(alone.requested_kwh, (0, tables.requested_kwh.shape[1] - len(sessions))),
        )
    assert tables.no_control_kw[-2].sum() == 0.0
    np.testing.assert_allclose(tables.no_control_kw[-1].sum() * DT_H, 1.0, rtol=1e-12)
