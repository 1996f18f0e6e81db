"""``powertrip benchmark`` and ``powertrip reproduce`` end to end on tiny budgets.

Days run at 15-minute resolution to 13:00 (52 steps: past the midday fleet sessions, so the
fronts have a trade-off), NSGA-II with population 8 over 3 generations.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from agents.config import EVAL_DAY_BASE, PPOParams, TrainConfig
from experiments import benchmark as bench
from experiments.benchmark_config import (
    BenchmarkConfig,
    benchmark_config_from_dict,
    load_benchmark_config,
)
from experiments.cli import main
from powertrip_env.config import default_scenario_path
from powertrip_env.errors import ConfigError

STEPS = 52
#: Columns that hold wall-clock timings: the only ones that may differ between two runs.
TIMINGS = ["decision_s", "decision_ms_per_step", "wall_s", "decision_s_per_step"]


def write_scenario(folder: Path) -> Path:
    """The default scenario at 15-minute resolution (96 steps a day)."""
    data = yaml.safe_load(default_scenario_path().read_text(encoding="utf-8"))
    data["profiles"]["resolution_min"] = 15
    path = folder / "scenario15.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def write_config(folder: Path, **changes: Any) -> Path:
    """A tiny benchmark YAML in ``folder`` (one day, two seeds, no control and NSGA-II)."""
    data: dict[str, Any] = {
        "scenario": str(write_scenario(folder)),
        "days": [{"season": "summer", "day_type": "weekday"}],
        "seeds": [0, 1],
        "steps": STEPS,
        "rule_based": [],
        "nsga2": {"pop_size": 8, "n_gen": 3},
        "lookahead": [],
        "oracle": False,
        "out": str(folder / "runs"),
    }
    data.update(changes)
    path = folder / "benchmark.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def only_run(folder: Path) -> Path:
    (run,) = [p for p in (folder / "runs").iterdir() if p.name.startswith("benchmark__")]
    return run


def without_timings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in TIMINGS if c in frame.columns])


@pytest.fixture(scope="module")
def agent_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PPO agent trained for 32 steps (it only has to act, not to be good)."""
    from experiments.train import train

    params = PPOParams(n_steps=32, batch_size=32, n_epochs=1, net_arch=(16, 16))
    config = TrainConfig(
        algo="ppo",
        total_timesteps=32,
        checkpoint_every=64,
        eval_every=0,
        eval_days=(EVAL_DAY_BASE,),
        train_days=1,
        max_episode_steps=32,
        params=params,
        out=str(tmp_path_factory.mktemp("agent")),
        progress_bar=False,
    )
    return train(config)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, agent_run: Path) -> Path:
    """Two days x two seeds x (no control, NSGA-II, an agent, a missing agent), via the CLI."""
    folder = tmp_path_factory.mktemp("bench")
    config = write_config(
        folder,
        days=[
            {"season": "summer", "day_type": "weekday"},
            {"season": "winter", "day_type": "weekend"},
        ],
        agents=[
            {"name": "ppo", "run_dir": str(agent_run)},
            {"name": "ghost", "run_dir": str(folder / "no-such-run")},
        ],
    )
    code = main(["benchmark", "--config", str(config), "--workers", "1", "--no-progress"])
    assert code == 2  # the missing agent's units failed; the rest finished
    return only_run(folder)


# ------------------------------------------------------------------------------ config
def test_shipped_config_is_the_four_days_by_three_seeds() -> None:
    config = load_benchmark_config()
    assert [d.label for d in config.days] == [
        "summer-weekday",
        "summer-weekend",
        "winter-weekday",
        "winter-weekend",
    ]
    assert config.seeds == (0, 1, 2)
    assert config.controllers == (
        "no_control",
        "flat_rate",
        "pv_following",
        "volt_watt",
        "nsga2",
        "lookahead_persistence",
        "oracle",
    )
    assert len(bench.plan_units(config)) == 84


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"days": [{"season": "autumn"}]}, "season"),
        ({"days": [{"day_type": "holiday"}]}, "day_type"),
        ({"seeds": [0, -1]}, "seeds"),
        ({"seeds": []}, "seeds"),
        ({"weights": [0.7, 0.7]}, "weights"),
        ({"steps": 0}, "steps"),
        ({"nsga2": {"pop_size": 2}}, "nsga2.pop_size"),
        ({"nsga2": {"selection": "best"}}, "nsga2.selection"),
        ({"agents": [{"name": "a b", "run_dir": "x"}]}, "agents[].name"),
        ({"agents": [{"name": "nsga2", "run_dir": "x"}]}, "agents[].name"),
        ({"agents": [{"name": "a", "run_dir": "x", "weights": [2, 0]}]}, "weights"),
        ({"agents": [{"name": "a", "run_dir": "x"}, {"name": "a", "run_dir": "y"}]}, "unique"),
        ({"agents": [{"name": "a", "run_dir": "x", "colour": "red"}]}, "colour"),
        ({"controllers": ["nsga2"]}, "controllers"),
        (
            {
                "no_control": False,
                "nsga2": None,
                "rule_based": [],
                "lookahead": [],
                "oracle": False,
            },
            "no controllers",
        ),
        ({"lookahead": ["psychic"]}, "lookahead"),
        ({"lookahead_horizon_h": 0}, "lookahead_horizon_h"),
        ({"rule_based": ["round_robin"]}, "rule_based"),
        ({"oracle": "yes"}, "oracle"),
    ],
)
def test_bad_config_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        benchmark_config_from_dict(changes)


def test_config_round_trips_through_config_json() -> None:
    config = load_benchmark_config()
    again = benchmark_config_from_dict(
        json.loads(json.dumps(config.to_dict())), resolve_paths=False
    )
    assert again == config


def test_units_are_day_by_seed_by_controller() -> None:
    config = benchmark_config_from_dict(
        {"days": [{"season": "winter"}], "seeds": [3, 4], "agents": [{"name": "a", "run_dir": "x"}]}
    )
    ids = [u.id for u in bench.plan_units(config)]
    controllers = (
        "no_control",
        "flat_rate",
        "pv_following",
        "volt_watt",
        "nsga2",
        "lookahead_persistence",
        "lookahead_perfect",
        "oracle",
        "a",
    )
    assert ids == [f"winter-weekday__seed{s}__{c}" for s in (3, 4) for c in controllers]


@pytest.mark.slow
def test_every_controller_has_its_optimality_gap_against_the_oracle(tmp_path: Path) -> None:
    """Whole 15-minute days: the oracle is the floor of every controller's day cost."""
    config = write_config(
        tmp_path,
        seeds=[0],
        steps=None,
        rule_based=["flat_rate", "pv_following", "volt_watt"],
        nsga2=None,
        lookahead=["persistence"],
        oracle=True,
    )
    assert main(["benchmark", "--config", str(config), "--workers", "1", "--no-progress"]) == 0
    days = pd.read_parquet(only_run(tmp_path) / "days.parquet").set_index("controller")
    gap = days["optimality_gap"]
    assert gap["oracle"] == 0.0 and gap["no_control"] == 1.0
    # Every controller serves every EV, so none may beat the day's optimum.
    assert (days["ev_unserved_kwh"] < 1e-6).all()
    assert (gap > -0.05).all(), gap
    (status,) = (only_run(tmp_path) / "units").glob("*__oracle.json")
    meta = json.loads(status.read_text())["meta"]
    assert meta["oracle_gap"] >= 0.0 and meta["plan_s"] > 0.0


# --------------------------------------------------------------------------- the run
def test_results_are_tidy_with_every_metric(run: Path) -> None:
    results = pd.read_parquet(run / "results.parquet")
    assert set(results["controller"]) == {"no_control", "nsga2", "ppo"}
    assert len(results) == 2 * 2 * 3 * STEPS
    keys = ["day", "seed", "controller", "step"]
    assert not results.duplicated(keys).any()
    per_day_metrics = {"f1", "f2", "f1_norm", "f2_norm", "decision_s", "converged", "hour"}
    design_metrics = {
        "pui_cp1",
        "vuf_cp1",
        "power_unbalance_cp1",
        "v_min_pu",
        "v_max_pu",
        "voltage_drop_pu",
        "n_outside_uk_statutory",
        "n_outside_en50160",
        "pv_available_kw",
        "pv_kw",
        "pv_curtailed_kw",
        "cp_kw",
        "cp_request_kw",
        "transformer_loading_pct",
        "losses_kw",
    }
    assert per_day_metrics | design_metrics <= set(results.columns)
    assert results["converged"].all() and (results["decision_s"] > 0).all()


def test_nsga2_applies_the_chosen_point_of_its_front(run: Path) -> None:
    fronts = pd.read_parquet(run / "fronts.parquet")
    results = pd.read_parquet(run / "results.parquet")
    chosen = fronts[fronts["chosen"]].set_index(["day", "seed", "step"]).sort_index()
    assert len(chosen) == 2 * 2 * STEPS  # one chosen point per step of every NSGA-II day
    nsga = results[results["controller"] == "nsga2"].set_index(["day", "seed", "step"])
    nsga = nsga.sort_index()
    pd.testing.assert_series_equal(
        chosen["f1_norm"], nsga["f1_norm"], check_names=False, rtol=1e-6, atol=1e-9
    )
    assert (fronts.groupby(["day", "seed", "step"]).size() > 1).any()  # a real trade-off


def test_a_failing_unit_is_recorded_and_the_rest_go_on(run: Path) -> None:
    units = pd.read_parquet(run / "units.parquet")
    failed = units[units["status"] == "failed"]
    assert set(failed["controller"]) == {"ghost"} and len(failed) == 4
    assert failed["error"].str.contains("no-such-run").all()
    record = json.loads((run / "units" / f"{failed['unit'].iloc[0]}.json").read_text())
    assert record["status"] == "failed" and "Traceback" in record["meta"]["traceback"]
    assert (units[units["status"] == "ok"]["controller"] != "ghost").all()
    assert "ghost" in (run / "report.md").read_text()


def test_indicators_and_day_tables(run: Path) -> None:
    points = pd.read_parquet(run / "indicators.parquet")
    results = pd.read_parquet(run / "results.parquet")
    assert len(points) == len(results)  # every step of every controller has a front
    nsga = points[points["controller"] == "nsga2"]
    assert not nsga["front_dominates"].any() and nsga["comparable"].all()
    assert (points["igd_plus"] >= 0).all()
    hv = pd.read_parquet(run / "hypervolume.parquet")
    assert len(hv) == 2 * 2 * STEPS
    assert hv["hv_front"].between(0, 1.1**2).all() and hv["hv_agents"].notna().all()
    days = pd.read_parquet(run / "days.parquet")
    assert len(days) == 2 * 2 * 3
    for column in (
        "f1_total",
        "f2_total",
        "pv_usage_efficiency",
        "ev_unserved_kwh",
        "losses_kwh",
        "weighted_cost",
        "decision_ms_per_step",
        "igd_plus_mean",
        "epsilon_additive_mean",
        "front_dominates_share",
    ):
        assert days[column].notna().all(), column
    mean_ms = days.groupby("controller")["decision_ms_per_step"].mean()
    assert mean_ms["nsga2"] > mean_ms["no_control"]


def test_cli_names_the_failed_units(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = write_config(
        tmp_path,
        seeds=[0],
        steps=4,
        nsga2=None,
        agents=[{"name": "ghost", "run_dir": str(tmp_path / "nowhere")}],
    )
    assert main(["benchmark", "--config", str(config), "--workers", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "ghost" in err and "--resume" in err


# ---------------------------------------------------------------------------- resume
def test_an_interrupted_benchmark_resumes_without_redoing_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = write_config(tmp_path)
    config = load_benchmark_config(config_path)
    reference = bench.run_benchmark(
        config, run_dir=tmp_path / "reference", workers=1, progress=False
    )
    expected = pd.read_parquet(reference.run_dir / "results.parquet")

    calls = []
    real = bench.run_unit

    def interrupted(*args: Any) -> bench.UnitOutput:
        calls.append(args[-1].id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(bench, "run_unit", interrupted)
    run_dir = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        bench.run_benchmark(config, run_dir=run_dir, workers=1, progress=False)
    units = run_dir / "units"
    done = sorted(p.name for p in units.glob("*.json"))
    assert len(done) == 2 and not list(units.glob("*.tmp"))
    stamps = {p: p.stat().st_mtime_ns for p in units.iterdir()}

    monkeypatch.setattr(bench, "run_unit", real)
    assert main(["benchmark", "--resume", str(run_dir), "--workers", "1", "--no-progress"]) == 0
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # not redone
    assert len(list(units.glob("*.json"))) == 4
    pd.testing.assert_frame_equal(
        without_timings(pd.read_parquet(run_dir / "results.parquet")),
        without_timings(expected),
        check_exact=True,
    )


def test_a_run_folder_takes_no_units_of_another_benchmark(tmp_path: Path) -> None:
    config = load_benchmark_config(write_config(tmp_path))
    other = replace(config, seeds=(7,))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"benchmark": other.to_dict()}))
    with pytest.raises(ConfigError, match="another benchmark"):
        bench.run_benchmark(config, run_dir=tmp_path / "run", workers=1, progress=False)


def test_resume_of_a_folder_without_a_benchmark_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["benchmark", "--resume", str(tmp_path), "--no-progress"]) == 2
    assert "config.json" in capsys.readouterr().err


def test_bad_backend_is_a_clean_error(capsys: pytest.CaptureFixture) -> None:
    assert main(["benchmark", "--backend", "dask", "--no-progress"]) == 2
    assert "backend" in capsys.readouterr().err


# ------------------------------------------------------------------------------- Ray
@pytest.mark.slow
def test_ray_and_the_process_pool_give_identical_results(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'powertrip[scale]')")
    config = replace(load_benchmark_config(write_config(tmp_path)), seeds=(0,))
    assert isinstance(config, BenchmarkConfig)
    pool = bench.run_benchmark(config, run_dir=tmp_path / "pool", workers=2, progress=False)
    ray = bench.run_benchmark(
        config, run_dir=tmp_path / "ray", backend="ray", workers=2, progress=False
    )
    assert not pool.failed and not ray.failed
    for table in ("results", "fronts", "indicators", "hypervolume", "days"):
        pd.testing.assert_frame_equal(
            without_timings(pd.read_parquet(ray.run_dir / f"{table}.parquet")),
            without_timings(pd.read_parquet(pool.run_dir / f"{table}.parquet")),
            check_exact=True,
            obj=table,
        )


# ------------------------------------------------------------------------- reproduce
@pytest.mark.slow
def test_reproduce_quick_regenerates_the_readme_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    assert main(["reproduce", "--quick", "--out", str(out), "--workers", "1"]) == 0
    (folder,) = out.iterdir()
    text = (folder / "REPRODUCE.md").read_text()
    # No control is study 1's day exactly (NSGA-II ran on a toy budget).
    (simulate_dir,) = folder.glob("simulate__*")
    day = json.loads((simulate_dir / "summary.json").read_text())["no_control"]
    assert f"| f1 total (sum over steps of sum PUI², %²) | {day['f1_total']:.4g} |" in text
    pv = f"{day['pv_used_kwh']:.1f} / {day['pv_available_kwh']:.1f}"
    assert f"| PV used / available (kWh) | {pv} |" in text
    assert (folder / "feeder.png").is_file()
    names = {p.name.split("__")[0] for p in folder.iterdir() if p.is_dir()}
    assert names == {"simulate", "optimize", "benchmark", "figures"}
    assert (folder / "figures" / "pui_over_day.png").is_file()  # study 2's day, per controller
    (bench_dir,) = folder.glob("benchmark__*")
    assert (bench_dir / "report.html").is_file()
    assert "reproduction finished in" in capsys.readouterr().out


def test_reproduce_refuses_to_put_toy_figures_in_the_docs(capsys: pytest.CaptureFixture) -> None:
    assert main(["reproduce", "--quick", "--update-docs"]) == 2
    assert "--update-docs" in capsys.readouterr().err
