"""The envs as Gymnasium, MO-Gymnasium and SB3 users meet them: misuse after close, keywords."""

from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import mo_gymnasium as mo
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import RecordVideo, TimeAwareObservation
from matplotlib import colormaps
from mo_gymnasium.wrappers.vector import MOSyncVectorEnv

import powertrip_env  # noqa: F401 - registers the ids
from powertrip_env.env import PowerTripEnv
from powertrip_env.errors import ConfigError, EnvClosedError, PowerFlowError, VectorRewardError
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.geometry import feeder_geometry
from powertrip_env.mo_async import MOAsyncVectorEnv, mo_async_worker
from powertrip_env.render import FeederRenderer, RenderSnapshot
from powertrip_env.vector_env import BatchedPowerTripEnv


def test_engine_refuses_every_call_after_close(feeder, small_placement) -> None:
    """The batch setters hold raw pointers into the freed context: never used after close."""
    engine = OpenDSSEngine(feeder, small_placement)
    engine.close()
    zeros = np.zeros
    with pytest.raises(PowerFlowError, match="closed"):
        engine.set_powers(zeros(engine.n_loads), zeros(engine.n_loads), zeros(2), zeros(2))
    with pytest.raises(PowerFlowError, match="closed"):
        engine.node_voltages()
    with pytest.raises(PowerFlowError, match="closed"):
        engine.run_pf()


def test_engine_keeps_the_working_folder(feeder, tmp_path: Path, monkeypatch) -> None:
    """OpenDSS's NewContext moves the process to its data path; relative paths (a video
    folder, a run folder) must not move with it."""
    monkeypatch.chdir(tmp_path)
    with OpenDSSEngine(feeder):
        assert Path.cwd() == tmp_path


def test_single_env_step_and_reset_after_close_raise() -> None:
    env = PowerTripEnv(day_seed=1)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()
    env.close()  # idempotent
    with pytest.raises(EnvClosedError, match=r"step\(\) after close"):
        env.step(env.action_space.sample())
    with pytest.raises(gym.error.ClosedEnvironmentError):  # Gymnasium's own type too
        env.reset(seed=0)


def test_made_env_step_after_close_raises() -> None:
    env = gym.make("powertrip/PowerTrip-v0", day_seed=1)
    env.reset(seed=0)
    env.close()
    with pytest.raises(EnvClosedError):
        env.step(env.action_space.sample())


def test_batched_env_step_and_reset_after_close_raise() -> None:
    venv = BatchedPowerTripEnv(2, day_seed=1)
    venv.reset(seed=0)
    venv.close()
    with pytest.raises(EnvClosedError, match=r"step\(\) after close"):
        venv.step(venv.action_space.sample())
    with pytest.raises(EnvClosedError):
        venv.reset(seed=0)


# ------------------------------------------------------------------------------- rendering
ENV_IDS = ("powertrip/PowerTrip-v0", "powertrip/PowerTripSeed-v0")
MAP = (slice(0, 480), slice(0, 480))  # the frame's map, left of the panel


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_record_video_of_a_whole_day(env_id: str, tmp_path: Path) -> None:
    """RecordVideo records a day of rgb_array frames; the map's colours follow the voltages."""
    pytest.importorskip("moviepy")  # RecordVideo's encoder
    env = gym.make(env_id, render_mode="rgb_array", day_seed=5, info_metrics=False)
    folder = str(tmp_path / "video")
    env = RecordVideo(env, folder, episode_trigger=lambda _: True, disable_logger=True)
    env.reset(seed=0)
    frames = {}
    truncated = False
    steps = 0
    while not truncated:
        _, _, terminated, truncated, _ = env.step(np.full(15, 0.5, dtype=np.float32))
        steps += 1
        assert not terminated
        if steps in (48, 150):  # 04:00 (light load) and 12:30 (PV peak)
            frames[steps] = _frame(env.render())
    env.close()
    assert steps == 288
    videos = list((tmp_path / "video").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 10_000
    for frame in frames.values():
        assert frame.shape == (480, 720, 3) and frame.dtype == np.uint8
    changed = np.any(frames[48][MAP] != frames[150][MAP], axis=-1)
    assert changed.sum() > 1000  # the lines' colours, not just the setpoint bars


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("mode", ["rgb_array", "human"])
def test_every_id_renders_in_every_mode(env_id: str, mode: str, monkeypatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    env = gym.make(env_id, render_mode=mode, day_seed=5, info_metrics=False)
    assert env.render_mode == mode and mode in env.metadata["render_modes"]
    env.reset(seed=0)
    first = env.render()
    env.step(env.action_space.sample())
    after = env.render()
    env.close()
    if mode == "human":
        assert first is None and after is None
    else:
        first, after = _frame(first), _frame(after)
        assert first.shape == after.shape == (480, 720, 3)
        assert np.any(first[MAP] != after[MAP])  # grey before the first solve, coloured after


def test_passive_checker_passes_render() -> None:
    from gymnasium.utils.env_checker import check_env

    env = gym.make("powertrip/PowerTrip-v0", render_mode="rgb_array", day_seed=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)  # the render check included
    others = [w for w in caught if "must be a float" not in str(w.message)]
    assert not others, [str(w.message) for w in others]
    env.close()


def test_colour_follows_the_voltage(feeder, small_placement) -> None:
    """A line's pixels take the colour table's entry of its buses' voltage."""
    with OpenDSSEngine(feeder, small_placement) as engine:
        geometry = feeder_geometry(engine)
        names = engine.node_names
    renderer = FeederRenderer(geometry, names, small_placement)
    n = small_placement.n_cp + small_placement.n_pv
    frames = {}
    for v in (0.95, 1.05):
        snap = RenderSnapshot(
            np.full(len(names), v), np.ones(n), np.full(n, 2.0), 1, 288, 1 / 12, None, 0
        )
        frames[v] = renderer.frame(snap)
    lo, hi = 0.94, 1.10
    for v, frame in frames.items():
        expected = colormaps["turbo"](np.floor((v - lo) / (hi - lo) * 255) / 255)[:3]
        colours, counts = np.unique(frame[MAP].reshape(-1, 3), axis=0, return_counts=True)
        common = colours[np.argsort(counts)[-2]]  # after the white background
        np.testing.assert_allclose(common / 255.0, expected, atol=0.003)
    unbalanced = np.full(len(names), 1.0)
    unbalanced[1::3] = 0.97  # phase b low everywhere: PUI about 2 %
    u = FeederRenderer(geometry, names, small_placement, colour="unbalance")
    values = u.bus_values(unbalanced)
    np.testing.assert_allclose(values[np.isfinite(values)], 100 * 0.02 / 0.99, rtol=1e-9)


def test_render_modes_are_checked() -> None:
    with pytest.raises(ConfigError, match="render_mode='rgb'"):
        PowerTripEnv(render_mode="rgb")
    with pytest.raises(ConfigError, match="render_colour"):
        BatchedPowerTripEnv(2, render_mode="rgb_array", render_colour="pui")  # type: ignore[arg-type]


def test_batched_env_renders_the_chosen_copy() -> None:
    venv = gym.make_vec("powertrip/PowerTrip-v0", num_envs=3, render_mode="rgb_array")
    assert isinstance(venv, BatchedPowerTripEnv)  # the vector entry point
    venv.reset(seed=[1, 2, 3])
    for _ in range(140):
        venv.step(venv.action_space.sample())
    frames = []
    for copy in (0, 2):
        venv.render_copy = copy
        frames.append(_frame(venv.render()))
    venv.close()
    assert frames[0].shape == (480, 720, 3)
    assert np.any(frames[0][MAP] != frames[1][MAP])  # two days, two voltage pictures
    with pytest.raises(ConfigError, match="render_copy"):
        BatchedPowerTripEnv(2, render_copy=2)


def _frame(rendered: object) -> np.ndarray:
    """``rendered`` as the (H, W, 3) array that an rgb_array render returns."""
    assert isinstance(rendered, np.ndarray)
    return rendered


# ------------------------------------------------------------------------- keyword parity
def test_batched_env_takes_every_keyword_of_the_single_env() -> None:
    single = set(inspect.signature(PowerTripEnv).parameters)
    batched = set(inspect.signature(BatchedPowerTripEnv).parameters)
    assert single <= batched, single - batched


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_registered_ids_last_one_day_and_accept_time_aware_observation(env_id: str) -> None:
    assert gym.spec(env_id).max_episode_steps == 288
    env = TimeAwareObservation(gym.make(env_id, day_seed=2, info_metrics=False))
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(env.action_space.sample())
    assert obs.shape == (45,) and obs[-1] == 1  # the time step, appended
    env.close()
    venv = gym.make_vec(env_id, num_envs=2)  # the spec's 288 reaches the batched env too
    assert isinstance(venv, BatchedPowerTripEnv) and venv.max_episode_steps == 288
    venv.close()


def test_max_episode_steps_truncates_both_envs() -> None:
    env = PowerTripEnv(day_seed=2, max_episode_steps=3, info_metrics=False)
    venv = BatchedPowerTripEnv(2, day_seed=2, max_episode_steps=3, info_metrics=False)
    env.reset(seed=0)
    venv.reset(seed=0)
    action = np.full(15, 0.5, dtype=np.float32)
    for k in range(3):
        *_, truncated, _ = env.step(action)
        *_, v_truncated, v_info = venv.step(np.stack([action, action]))
        assert truncated == (k == 2) and list(v_truncated) == [k == 2] * 2
    assert set(v_info) == {"f1", "f2", "f_norm", "setpoints_kw"} | {
        f"_{key}" for key in ("f1", "f2", "f_norm", "setpoints_kw")
    }
    with pytest.raises(gym.error.ResetNeeded):
        env.step(action)
    env.close()
    venv.close()
    with pytest.raises(ConfigError, match="max_episode_steps"):
        PowerTripEnv(max_episode_steps=0)


def test_seeds_as_any_integer_sequence() -> None:
    venv = BatchedPowerTripEnv(3)
    first, _ = venv.reset(seed=np.array([4, 5, 6]))
    for seed in ([4, 5, 6], (4, 5, 6), np.arange(4, 7, dtype=np.int32), 4):
        again, _ = venv.reset(seed=seed)
        np.testing.assert_array_equal(again, first)
    with pytest.raises(ValueError, match="one per copy"):
        venv.reset(seed=np.array([1.5, 2.0, 3.0]))
    venv.close()


def test_same_step_autoreset_returns_the_new_day_with_the_old_days_last_step() -> None:
    """SAME_STEP gives what NEXT_STEP gives one step later, and the ended step in final_*."""
    kwargs = {"day_seed": None, "max_episode_steps": 3, "info_metrics": False}
    nxt = BatchedPowerTripEnv(2, autoreset_mode="NextStep", **kwargs)  # type: ignore[arg-type]
    same = BatchedPowerTripEnv(2, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)  # type: ignore[arg-type]
    assert same.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert nxt.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    nxt.reset(seed=1)
    same.reset(seed=1)
    actions = np.full((2, 15), 0.3, dtype=np.float32)
    for _ in range(3):
        obs_n, rew_n, _, trunc_n, info_n = nxt.step(actions)
        obs_s, rew_s, _, trunc_s, info_s = same.step(actions)
        np.testing.assert_array_equal(rew_n, rew_s)
        np.testing.assert_array_equal(trunc_n, trunc_s)
    assert trunc_s.all() and info_s["_final_obs"].all()
    np.testing.assert_array_equal(np.stack(info_s["final_obs"]), obs_n)
    np.testing.assert_array_equal(info_s["final_info"]["f1"], info_n["f1"])
    reset_obs, *_, reset_info = nxt.step(actions)  # NEXT_STEP resets now
    np.testing.assert_array_equal(obs_s, reset_obs)
    np.testing.assert_array_equal(info_s["day_seed"], reset_info["day_seed"])
    with pytest.raises(ConfigError, match="autoreset_mode"):
        BatchedPowerTripEnv(2, autoreset_mode="sometimes")


# ----------------------------------------------------------------------------- vector modes
README = Path(__file__).resolve().parents[1] / "README.md"


def readme_snippets(section: str = "## Using the environment") -> list[str]:
    """The ```python blocks of one README section, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index(section + "\n")
    end = text.find("\n## ", start + len(section))
    body = text[start : end if end >= 0 else len(text)]
    return re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)


@pytest.mark.slow
def test_readme_environment_section_runs_as_written(tmp_path: Path, monkeypatch) -> None:
    """Every snippet of the README's "Using the environment" section, in one namespace."""
    pytest.importorskip("moviepy")  # the RecordVideo snippet
    snippets = readme_snippets()
    assert len(snippets) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__main__"}
    for k, code in enumerate(snippets):
        exec(compile(code, f"README.md snippet {k}", "exec"), namespace)
    assert list(tmp_path.glob("videos/*.mp4"))
    rewards = namespace["rewards"]
    assert isinstance(rewards, np.ndarray) and rewards.shape == (2,)  # the scalarised sync env


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec_without_a_vector_reward_path_says_what_to_use(mode: str) -> None:
    vec = gym.make_vec("powertrip/PowerTrip-v0", num_envs=2, vectorization_mode=mode, day_seed=1)
    with pytest.raises(VectorRewardError, match=r"MOSyncVectorEnv|mo_async_worker") as caught:
        vec.reset(seed=0)
    assert "vector of 2" in str(caught.value)
    vec.close()


def test_sb3_monitor_under_linear_reward_says_what_to_use() -> None:
    from stable_baselines3.common.env_util import make_vec_env

    vec = make_vec_env(
        "powertrip/PowerTrip-v0",
        n_envs=1,
        env_kwargs={"day_seed": 1},
        wrapper_class=mo.wrappers.LinearReward,
    )
    with pytest.raises(VectorRewardError, match=r"make_vec_env\(lambda"):
        vec.reset()
    vec.close()


@pytest.mark.slow
def test_vector_reward_in_every_supported_mode() -> None:
    """Each supported way returns (2, 2) vector rewards, through the episode boundary."""
    kwargs: dict[str, Any] = {"day_seed": 1, "info_metrics": False, "max_episode_steps": 2}
    makers = {
        "entry point": lambda: gym.make_vec("powertrip/PowerTrip-v0", num_envs=2, **kwargs),
        "MOSyncVectorEnv": lambda: MOSyncVectorEnv(
            [lambda: mo.make("powertrip/PowerTrip-v0", **kwargs)] * 2  # type: ignore[arg-type]
        ),
        "MOAsyncVectorEnv": lambda: MOAsyncVectorEnv(
            [lambda: mo.make("powertrip/PowerTrip-v0", **kwargs)] * 2
        ),
        "async worker": lambda: gym.make_vec(
            "powertrip/PowerTrip-v0",
            num_envs=2,
            vectorization_mode="async",
            vector_kwargs={"worker": mo_async_worker},
            **kwargs,
        ),
    }
    for name, make in makers.items():
        vec = make()
        vec.reset(seed=0)
        for _ in range(4):  # two episodes: the autoreset step returns zero vectors
            _, rewards, *_ = vec.step(vec.action_space.sample())
            assert np.shape(rewards) == (2, 2), name
        vec.close()


def test_an_enwl_feeder_is_drawn_at_its_xy_positions() -> None:
    """ENWL's ``XY_Position.xls`` places every drawn bus (no schematic fallback)."""
    from powertrip_env.grid.devices import DevicePlacement, DeviceSpec
    from powertrip_env.grid.enwl import load_enwl_feeder
    from powertrip_env.grid.layout import read_feeder_coords

    folder = Path(__file__).parent / "data" / "enwl_sample" / "network_5" / "Feeder_4"
    feeder = load_enwl_feeder(folder)
    coords = read_feeder_coords(feeder)
    assert coords
    house = next(iter(coords))
    placement = DevicePlacement(cps=(DeviceSpec("cp1", house, 1, 7.0),))
    with OpenDSSEngine(feeder, placement) as engine:
        geometry = feeder_geometry(engine)
    assert not geometry.schematic
