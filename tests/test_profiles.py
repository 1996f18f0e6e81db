"""Day profiles: seeded, physically sensible, resolution-independent, strict on bad input."""

from __future__ import annotations

import datetime as dt
import itertools
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from baselines.no_control import NoControl
from powertrip_env.config import (
    FeederConfig,
    ProfileConfig,
    ScenarioConfig,
    scenario_config_from_dict,
)
from powertrip_env.errors import ConfigError, ProfileError
from powertrip_env.profiles import (
    ENWL_N_STEPS,
    DayGrid,
    EVSession,
    EVSessionModel,
    HouseholdLoadModel,
    PVModel,
    assign_enwl_profiles,
    day_energy_bounds_kwh,
    day_type_of,
    enwl_house_shape_files,
    household_load_kw,
    load_enwl_ev_profiles,
    load_enwl_load_profiles,
    load_enwl_pv_profiles,
    pv_available_kw,
    reactive_power_kvar,
    read_enwl_house_profiles,
    read_enwl_profile_csv,
    representative_date,
    resample_mean,
    sample_sessions,
    scale_enwl_pv,
    season_in_name,
    season_of,
    session_arrays,
)
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import FeederSimulator

DATA = Path(__file__).parent / "data" / "profiles"
SUMMER = representative_date("summer", "weekday")
WINTER = representative_date("winter", "weekday")
KWP = np.array([3.0, 4.0, 5.0, 3.5])
RESOLUTIONS = (1, 5, 15)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def day_energy(p_kw: np.ndarray, grid: DayGrid) -> np.ndarray:
    return p_kw.sum(axis=-1) * grid.dt_h


# ---------------------------------------------------------------------------------- time grid


@pytest.mark.parametrize(("resolution", "n_steps"), [(1, 1440), (5, 288), (15, 96)])
def test_grid_steps(resolution: int, n_steps: int) -> None:
    grid = DayGrid(resolution)
    assert grid.n_steps == n_steps
    assert grid.dt_h * grid.n_steps == pytest.approx(24.0)
    index = grid.index(SUMMER)
    assert len(index) == n_steps
    assert str(index.tz) == "Europe/London"
    assert index[0].hour == 0 and index[0].minute == 0
    # Midnight BST is 23:00 UTC the day before.
    assert grid.index(SUMMER, utc=True)[0].hour == 23


def test_default_resolution_is_five_minutes() -> None:
    assert DayGrid().n_steps == 288


@pytest.mark.parametrize("resolution", [7, 0, 30, 5.0, True])
def test_unsupported_resolution_is_rejected(resolution: object) -> None:
    with pytest.raises(ConfigError, match=r"resolution_min=.*allowed: 1, 5, 15"):
        DayGrid(resolution)  # type: ignore[arg-type]


def test_clock_change_day_is_rejected() -> None:
    with pytest.raises(ConfigError, match="2023-03-26"):
        DayGrid().index(dt.date(2023, 3, 26))


def test_representative_dates() -> None:
    assert representative_date("summer", "weekday") == dt.date(2023, 7, 12)
    assert representative_date("summer", "weekend") == dt.date(2023, 7, 15)
    assert representative_date("winter", "weekday", year=2024).month == 1
    for season in ("summer", "winter"):
        for day_type in ("weekday", "weekend"):
            date = representative_date(season, day_type)
            assert season_of(date) == season
            assert day_type_of(date) == day_type
    with pytest.raises(ConfigError, match="autumn"):
        representative_date("autumn", "weekday")
    with pytest.raises(ConfigError, match="holiday"):
        representative_date("summer", "holiday")


def test_resample_keeps_energy() -> None:
    values = rng().random((3, 288))
    for to_min in (1, 15):
        out = resample_mean(values, 5, to_min)
        assert out.shape == (3, 1440 // to_min)
        assert out.sum(axis=1) * to_min == pytest.approx(values.sum(axis=1) * 5)
    with pytest.raises(ConfigError, match="neither divides"):
        resample_mean(values, 5, 7)


# ---------------------------------------------------------------------------------- loads


def test_loads_are_seeded() -> None:
    grid = DayGrid()
    a = household_load_kw(rng(1), grid, SUMMER, 10)
    b = household_load_kw(rng(1), grid, SUMMER, 10)
    c = household_load_kw(rng(2), grid, SUMMER, 10)
    assert a.shape == (10, 288)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # Houses differ from one another.
    assert not np.allclose(a[0] / a[0].sum(), a[1] / a[1].sum())


@pytest.mark.parametrize("date", [SUMMER, WINTER, representative_date("winter", "weekend")])
def test_household_day_energy_in_documented_range(date: dt.date) -> None:
    grid = DayGrid()
    energy = day_energy(household_load_kw(rng(3), grid, date, 500), grid)
    low, high = day_energy_bounds_kwh(date)
    assert np.all(energy >= low - 1e-9)
    assert np.all(energy <= high + 1e-9)
    # The documented year-round range of the defaults.
    assert low >= 3.3 and high <= 25.5


def test_household_mean_day_energy_matches_documentation() -> None:
    grid = DayGrid()
    summer = day_energy(household_load_kw(rng(4), grid, SUMMER, 2000), grid).mean()
    winter = day_energy(household_load_kw(rng(4), grid, WINTER, 2000), grid).mean()
    assert summer == pytest.approx(7.3, abs=0.3)
    assert winter == pytest.approx(10.6, abs=0.4)


def test_loads_same_energy_at_every_resolution() -> None:
    energies = [
        day_energy(household_load_kw(rng(5), DayGrid(r), WINTER, 6), DayGrid(r))
        for r in RESOLUTIONS
    ]
    for energy in energies[1:]:
        np.testing.assert_allclose(energy, energies[0], rtol=1e-9)
    fine = household_load_kw(rng(5), DayGrid(1), WINTER, 6)
    coarse = household_load_kw(rng(5), DayGrid(15), WINTER, 6)
    np.testing.assert_allclose(coarse, fine.reshape(6, 96, 15).mean(axis=2))


def test_loads_positive_and_reactive_power() -> None:
    p = household_load_kw(rng(6), DayGrid(), SUMMER, 5)
    assert np.all(p > 0)
    q = reactive_power_kvar(p)
    np.testing.assert_allclose(p / np.hypot(p, q), 0.95)
    np.testing.assert_array_equal(reactive_power_kvar(p, 1.0), 0.0)
    with pytest.raises(ConfigError, match=r"power_factor=1\.2"):
        reactive_power_kvar(p, 1.2)


def test_demandlib_does_not_change_warning_filters() -> None:
    before = list(warnings.filters)
    # A year not used elsewhere, so demandlib really runs.
    household_load_kw(rng(), DayGrid(), dt.date(2019, 6, 5), 1)
    assert warnings.filters == before


def test_bad_load_parameters_are_rejected() -> None:
    with pytest.raises(ConfigError, match="annual_kwh_min"):
        HouseholdLoadModel(annual_kwh_min=5000.0)
    with pytest.raises(ConfigError, match="n_houses=-1"):
        household_load_kw(rng(), DayGrid(), SUMMER, -1)


# ---------------------------------------------------------------------------------- PV


def test_pv_is_seeded() -> None:
    grid = DayGrid()
    a = pv_available_kw(rng(1), grid, SUMMER, KWP)
    b = pv_available_kw(rng(1), grid, SUMMER, KWP)
    c = pv_available_kw(rng(2), grid, SUMMER, KWP)
    assert a.shape == (4, 288)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("sky", ["clear", "overcast", "sampled"])
def test_pv_zero_at_night_and_bounded(sky: str) -> None:
    grid = DayGrid()
    p = pv_available_kw(rng(7), grid, SUMMER, KWP, model=PVModel(sky=sky))  # type: ignore[arg-type]
    hours = grid.hours()
    night = (hours < 3.0) | (hours >= 23.0)
    assert np.all(p[:, night] == 0.0)
    assert np.all(p >= 0.0)
    assert np.all(p <= KWP[:, None] + 1e-12)
    assert np.all(p[:, (hours >= 12.0) & (hours < 14.0)] > 0.0)


def test_pv_clear_summer_day_is_plausible() -> None:
    grid = DayGrid()
    p = pv_available_kw(
        rng(), grid, SUMMER, KWP, tilt_deg=35.0, azimuth_deg=180.0, model=PVModel(sky="clear")
    )
    peak_per_kwp = p.max(axis=1) / KWP
    assert np.all((peak_per_kwp > 0.6) & (peak_per_kwp < 0.85))
    yield_kwh_per_kwp = day_energy(p, grid) / KWP
    assert np.all((yield_kwh_per_kwp > 4.5) & (yield_kwh_per_kwp < 7.0))
    winter = pv_available_kw(
        rng(), grid, WINTER, KWP, tilt_deg=35.0, azimuth_deg=180.0, model=PVModel(sky="clear")
    )
    assert np.all(day_energy(winter, grid) < 0.5 * day_energy(p, grid))


def test_pv_same_energy_at_every_resolution() -> None:
    energies = [
        day_energy(pv_available_kw(rng(8), DayGrid(r), SUMMER, KWP), DayGrid(r))
        for r in RESOLUTIONS
    ]
    for energy in energies[1:]:
        np.testing.assert_allclose(energy, energies[0], rtol=1e-9)


def test_pv_systems_share_clouds() -> None:
    """Two identical roofs on one feeder see nearly the same clouds; another day does not."""
    grid = DayGrid(15)
    same_roof = {"tilt_deg": 35.0, "azimuth_deg": 180.0, "model": PVModel(sky="mixed")}
    feeder = pv_available_kw(rng(9), grid, SUMMER, [4.0, 4.0], **same_roof)  # type: ignore[arg-type]
    other = pv_available_kw(rng(99), grid, SUMMER, [4.0], **same_roof)  # type: ignore[arg-type]
    neighbours = np.abs(feeder[0] - feeder[1]).mean()
    strangers = np.abs(feeder[0] - other[0]).mean()
    assert neighbours < 0.4 * strangers


@pytest.mark.parametrize("kwp", [[4.0, -1.0], [0.0], [np.nan]])
def test_bad_kwp_is_rejected(kwp: list[float]) -> None:
    with pytest.raises(ConfigError, match=r"kwp\[\d\]="):
        pv_available_kw(rng(), DayGrid(), SUMMER, kwp)


def test_bad_pv_parameters_are_rejected() -> None:
    with pytest.raises(ConfigError, match="sky='foggy'"):
        PVModel(sky="foggy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"dc_ac_ratio=0\.5"):
        PVModel(dc_ac_ratio=0.5)
    with pytest.raises(ConfigError, match="tilt_deg"):
        pv_available_kw(rng(), DayGrid(), SUMMER, [4.0], tilt_deg=120.0, azimuth_deg=180.0)


# ---------------------------------------------------------------------------------- EV


def test_ev_sessions_are_seeded() -> None:
    a = sample_sessions(rng(1), 3, 7.0, "weekday")
    b = sample_sessions(rng(1), 3, 7.0, "weekday")
    c = sample_sessions(rng(2), 3, 7.0, "weekday")
    assert a == b
    assert a != c
    assert len(a) == 3


@pytest.mark.parametrize("charger_kw", [3.7, 7.0])
@pytest.mark.parametrize("day_type", ["weekday", "weekend"])
def test_ev_sessions_in_documented_range(charger_kw: float, day_type: str) -> None:
    sessions = sample_sessions(rng(10), 200, charger_kw, day_type)
    flat = [s for cp in sessions for s in cp]
    assert flat
    for s in flat:
        assert 0.0 < s.energy_kwh <= 40.0
        assert s.energy_kwh <= charger_kw * s.duration_h + 1e-9  # deliverable
        assert (s.arrival_h * 4).is_integer() and (s.departure_h * 4).is_integer()
        if s.kind == "fleet":
            assert s.arrival_h >= 10.0 and s.departure_h <= 15.0
            assert 1.0 <= s.duration_h <= 4.0
        else:
            assert 15.0 <= s.arrival_h <= 23.0 and s.departure_h == 24.0
    for cp in sessions:
        for first, second in itertools.pairwise(cp):
            assert first.departure_h <= second.arrival_h
    energies = np.array([s.energy_kwh for s in flat])
    assert 5.0 < np.median(energies) < 9.0  # DfT median event 7.5 kWh, a few capped


def test_default_mix_overlaps_pv_hours() -> None:
    sessions = sample_sessions(rng(11), 3, 7.0, "weekday")
    for cp in sessions:
        assert [s.kind for s in cp] == ["fleet", "home"]
    none = sample_sessions(
        rng(11), 3, 7.0, "weekday", EVSessionModel(fleet_probability_weekday=0.0)
    )
    assert all(s.kind == "home" for cp in none for s in cp)
    # The mix does not reshuffle the remaining sessions.
    assert [cp[-1] for cp in none] == [cp[-1] for cp in sessions]


def test_session_arrays_same_energy_at_every_resolution() -> None:
    sessions = sample_sessions(rng(12), 3, 7.0, "weekday")
    requested = np.array([sum(s.energy_kwh for s in cp) for cp in sessions])
    for r in RESOLUTIONS:
        grid = DayGrid(r)
        arrays = session_arrays(sessions, grid, 7.0)
        assert arrays.plugged.shape == (3, grid.n_steps)
        np.testing.assert_allclose(arrays.arrival_energy_kwh.sum(axis=1), requested)
        plugged_h = arrays.plugged.sum(axis=1) * grid.dt_h
        np.testing.assert_allclose(plugged_h, [sum(s.duration_h for s in cp) for cp in sessions])
        assert np.all((arrays.departure_step >= 0) == arrays.plugged)


def test_session_arrays_hand_case() -> None:
    sessions = [[EVSession(10.0, 11.0, 3.0, "fleet"), EVSession(23.0, 24.0, 20.0)], []]
    arrays = session_arrays(sessions, DayGrid(15), 7.0)
    assert arrays.plugged[0].sum() == 8 and not arrays.plugged[1].any()
    assert arrays.plugged[0, 40:44].all() and arrays.plugged[0, 92:].all()
    assert arrays.arrival_energy_kwh[0, 40] == 3.0
    assert arrays.arrival_energy_kwh[0, 92] == 7.0  # capped: 1 h at 7 kW
    assert arrays.departure_step[0, 40] == 44 and arrays.departure_step[0, 95] == 96
    overlapping = [[EVSession(10.0, 12.0, 1.0), EVSession(11.0, 13.0, 1.0)]]
    with pytest.raises(ConfigError, match="overlaps"):
        session_arrays(overlapping, DayGrid(), 7.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"arrival_h": 18.0, "departure_h": 17.0, "energy_kwh": 5.0}, "departure_h"),
        ({"arrival_h": 18.0, "departure_h": 25.0, "energy_kwh": 5.0}, "departure_h"),
        ({"arrival_h": -1.0, "departure_h": 17.0, "energy_kwh": 5.0}, "arrival_h"),
        ({"arrival_h": 8.0, "departure_h": 17.0, "energy_kwh": -5.0}, "energy_kwh"),
        ({"arrival_h": 8.0, "departure_h": 17.0, "energy_kwh": 5.0, "kind": "taxi"}, "kind"),
    ],
)
def test_bad_session_is_rejected(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"EVSession.{field}="):
        EVSession(**kwargs)  # type: ignore[arg-type]


def test_bad_sampler_input_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"charger_kw\[1\]=-7"):
        sample_sessions(rng(), 2, [7.0, -7.0], "weekday")
    with pytest.raises(ConfigError, match="day_type='sunday'"):
        sample_sessions(rng(), 2, 7.0, "sunday")
    with pytest.raises(ConfigError, match="home_arrival_window_h"):
        EVSessionModel(home_arrival_window_h=(12.0, 20.0))


# ---------------------------------------------------------------------------------- ENWL files


def test_enwl_load_fixture() -> None:
    profiles = load_enwl_load_profiles(DATA / "enwl_load_small.csv")
    assert profiles.shape == (4, ENWL_N_STEPS)
    assert profiles[0, 0] == pytest.approx(0.25)  # the BOM did not spoil the first value
    assert profiles[3, 0] == pytest.approx(0.40)
    for r in RESOLUTIONS:
        grid = DayGrid(r)
        houses = assign_enwl_profiles(rng(1), profiles, 3, grid)
        assert houses.shape == (3, grid.n_steps)
        # Distinct columns while there are enough, energy kept by the resampling.
        assert len({round(e, 9) for e in day_energy(houses, grid)}) == 3
        assert set(np.round(day_energy(houses, grid), 9)) <= set(
            np.round(profiles.sum(axis=1) * 5 / 60, 9)
        )
    many = assign_enwl_profiles(rng(1), profiles, 10, DayGrid())
    assert many.shape == (10, 288)


def test_enwl_pv_fixture() -> None:
    profiles = load_enwl_pv_profiles(DATA / "enwl_pv_small.csv")
    assert profiles.shape == (3, ENWL_N_STEPS)
    assert profiles.min() == 0.0  # the -0.010 night standby draw is no availability
    assert profiles[:, :60].max() == 0.0  # before 05:00
    kwp = np.array([4.0, 2.0, 5.0])
    scaled = scale_enwl_pv(profiles, kwp)
    np.testing.assert_allclose(scaled.max(axis=1), 0.75 * kwp, rtol=1e-3)
    known = scale_enwl_pv(profiles, kwp, reference_kwp=[3.0, 4.0, 2.0])
    np.testing.assert_allclose(known[0], profiles[0] * 4.0 / 3.0)
    with pytest.raises(ConfigError, match=r"kwp\[1\]=-2"):
        scale_enwl_pv(profiles, [4.0, -2.0, 5.0])


def test_enwl_ev_fixture() -> None:
    profiles = load_enwl_ev_profiles(DATA / "enwl_ev_small.csv")
    assert profiles.shape == (3, ENWL_N_STEPS)
    np.testing.assert_allclose(profiles.sum(axis=1) * 5 / 60, [7.4, 10.5, 0.0])
    requests = assign_enwl_profiles(rng(2), profiles, 3, DayGrid(15))
    assert requests.shape == (3, 96)
    assert sorted(np.round(requests.sum(axis=1) / 4, 9)) == [0.0, 7.4, 10.5]


def test_enwl_wrong_shape_is_rejected() -> None:
    path = DATA / "enwl_bad_shape.csv"
    with pytest.raises(ProfileError, match=r"enwl_bad_shape\.csv.*287 rows.*expected 288"):
        load_enwl_load_profiles(path)


def test_enwl_missing_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "Summer_Load_Profiles.csv"
    with pytest.raises(ProfileError, match=r"Summer_Load_Profiles\.csv.*does not exist"):
        load_enwl_load_profiles(path)


def test_enwl_non_numeric_value_is_rejected(tmp_path: Path) -> None:
    rows = ["0.5,0.6"] * ENWL_N_STEPS
    rows[9] = "0.5,n/a"
    path = tmp_path / "Winter_EV_Profiles.csv"
    path.write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"Winter_EV_Profiles\.csv.*row 10, column 2"):
        load_enwl_ev_profiles(path)


def test_enwl_header_row_is_rejected(tmp_path: Path) -> None:
    rows = ["a,b"] + ["0.5,0.6"] * ENWL_N_STEPS
    path = tmp_path / "with_header.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"with_header\.csv"):
        load_enwl_load_profiles(path)


# ------------------------------------------------------------------ ENWL semantics in a scenario
SAMPLE = Path(__file__).parent / "data" / "enwl_sample"  # ENWL data, CC BY 4.0 (see NOTICE)
EV_WINTER = DATA / "Winter_EV_Profiles_small.csv"  # BOM, CR-only lines, no final newline


def _scenario_config(**sections: dict[str, object]) -> ScenarioConfig:
    data: dict[str, object] = {
        "devices": {"cps": [{"name": "cp", "bus": "906", "phase": 1, "p_max_kw": 7.0}]},
    }
    data.update(sections)
    return scenario_config_from_dict(data)


def test_enwl_ev_file_with_bom_and_cr_only_lines_reads() -> None:
    profiles = load_enwl_ev_profiles(EV_WINTER)
    assert profiles.shape == (4, ENWL_N_STEPS)
    assert set(np.unique(profiles)) == {0.0, 3.0}
    np.testing.assert_allclose(profiles.sum(axis=1) * 5 / 60, [6.0, 0.75, 0.75, 0.0])


@pytest.mark.parametrize("energy_guarantee", [True, False])
def test_enwl_ev_sessions_charge_at_the_files_power(energy_guarantee: bool) -> None:
    """A 7 kW CP given ENWL's 3 kW profile draws 3 kW exactly when the file does."""
    cfg = _scenario_config(
        profiles={"season": "winter"},
        ev={
            "sessions": "enwl",
            "enwl_ev_file": str(EV_WINTER),
            "energy_guarantee": energy_guarantee,
        },
    )
    table = load_enwl_ev_profiles(EV_WINTER)
    for seed in range(4):  # every seed gives the CP one of the file's columns
        scenario = build_scenario(cfg, seed, n_loads=55)
        with FeederSimulator(scenario) as sim:
            steps = sim.run(NoControl()).steps
        cp_kw = steps["cp_kw"].to_numpy()
        assert any(np.allclose(cp_kw, column) for column in table)
        charging = cp_kw > 0
        np.testing.assert_allclose(steps["cp_request_kw"].to_numpy()[charging], 3.0)
        np.testing.assert_allclose(cp_kw[charging], 3.0)


def test_enwl_files_of_the_other_season_are_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"ev.enwl_ev_file=.*is a winter file but "
        r"profiles.season='summer'",
    ):
        _scenario_config(ev={"sessions": "enwl", "enwl_ev_file": str(EV_WINTER)})
    winter_loads = tmp_path / "Winter_Load_Profiles.csv"
    winter_loads.write_bytes((DATA / "enwl_load_small.csv").read_bytes())
    with pytest.raises(ConfigError, match=r"profiles.enwl_load_file=.*winter file"):
        ProfileConfig(load_source="enwl", enwl_load_file=str(winter_loads))
    # Under the matching season it loads; a file whose name gives no season is taken as is.
    assert ProfileConfig(
        season="winter", load_source="enwl", enwl_load_file=str(winter_loads)
    ).enwl_load_file
    assert ProfileConfig(load_source="enwl", enwl_load_file=str(DATA / "enwl_load_small.csv"))
    assert season_in_name("Summer_PV_Profiles.csv") == "summer"
    assert season_in_name("profiles.csv") is None


def _house_config() -> ScenarioConfig:
    return _scenario_config(
        feeder={"kind": "enwl", "path": str(SAMPLE), "network": 16, "feeder": 1},
        profiles={
            "load_source": "enwl",
            "enwl_load_folder": str(SAMPLE / "profiles" / "Load_profiles"),
        },
        devices={"cps": [{"name": "cp", "bus": "7", "phase": 1, "p_max_kw": 7.0}]},
    )


def test_each_house_gets_its_own_enwl_profile() -> None:
    """``LoadShapes.txt`` assigns Shape_k -> Load<k>_5min.csv; the Windows path is ignored."""
    assignment = enwl_house_shape_files(SAMPLE / "network_16" / "Feeder_1")
    assert len(assignment) == 39
    assert assignment["load15"] == "Load15_5min.csv"  # the three-phase load
    scenario = build_scenario(_house_config(), 0)
    load_p = scenario.profiles.load_p_kw  # (n_steps, n_loads), engine load order
    for k in (1, 15, 39):
        own = read_enwl_profile_csv(SAMPLE / "profiles" / "Load_profiles" / f"Load{k}_5min.csv")
        np.testing.assert_allclose(load_p[:, k - 1], own[0])
    # Not drawn at random: another seed gives the same loads.
    np.testing.assert_array_equal(build_scenario(_house_config(), 1).profiles.load_p_kw, load_p)
    # The feeder's own Master.txt as kind: master gives the houses the same files.
    master = replace(
        _house_config(),
        feeder=FeederConfig(
            kind="master", path=str(SAMPLE / "network_16" / "Feeder_1" / "Master.txt")
        ),
    )
    np.testing.assert_array_equal(build_scenario(master, 0).profiles.load_p_kw, load_p)


def test_house_profiles_need_an_enwl_feeder_and_every_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"enwl_load_folder=.*needs feeder.kind: enwl"):
        _scenario_config(profiles={"load_source": "enwl", "enwl_load_folder": str(tmp_path)})
    # A master in an ENWL feeder folder (without LoadShapes.txt here) is read, and refused
    # when the day is built, naming what is missing.
    master = _scenario_config(
        feeder={"kind": "master", "path": str(SAMPLE / "network_5" / "Feeder_4" / "Master.txt")},
        profiles={"load_source": "enwl", "enwl_load_folder": str(tmp_path)},
        devices={"cps": [{"name": "cp", "bus": "68", "phase": 1, "p_max_kw": 7.0}]},
    )
    with pytest.raises(ProfileError, match=r"lacks \['loadshapes.txt'\]"):
        build_scenario(master, 0, n_loads=30)
    with pytest.raises(ConfigError, match="give one of them"):
        ProfileConfig(load_source="enwl", enwl_load_file="a.csv", enwl_load_folder="b")
    (tmp_path / "Load1_5min.csv").write_bytes(
        (SAMPLE / "profiles" / "Load_profiles" / "Load1_5min.csv").read_bytes()
    )
    with pytest.raises(ProfileError, match=r"load 'load2' uses 'Load2_5min.csv'.*not in"):
        read_enwl_house_profiles(SAMPLE / "network_16" / "Feeder_1", tmp_path)
