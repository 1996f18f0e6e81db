"""PowerTrip: smart control of EV charging and rooftop PV on real LV feeders.

Layers (architecture.md §2), each importing only downward: ``grid`` (the only OpenDSS code) <
``profiles``, ``metrics`` < ``scenario``, ``simulator`` < ``env``.

Registered Gymnasium ids (vector reward; use ``mo_gymnasium.make`` or ``gymnasium.make``):

* ``powertrip/PowerTrip-v0``: the default scenario with the EV energy guarantee;
* ``powertrip/PowerTripSeed-v0``: the seed formulation (no energy guarantee).

Each id carries ``max_episode_steps=288`` (one day at 5-minute steps) and takes
``render_mode="rgb_array"`` or ``"human"``. ``gymnasium.make_vec(id, num_envs=N)`` (the
``vector_entry_point``) gives the batched vector env
(:class:`powertrip_env.vector_env.BatchedPowerTripEnv`), which steps N copies in one call
through the exact reduced network model. Gymnasium's "sync" and "async" vector envs store one
float reward per copy: use them with a scalarising wrapper, or MO-Gymnasium's
``MOSyncVectorEnv`` and :class:`powertrip_env.mo_async.MOAsyncVectorEnv` for vector rewards
(the README's "Using the environment" lists every way).
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

#: Steps in a day at the default 5-minute resolution: the registered ids' episode length.
STEPS_PER_DAY = 288

__all__ = ["PowerTripEnv", "__version__"]


def __getattr__(name: str) -> object:
    # The env pulls in OpenDSS; import it on first use so `import powertrip_env` stays light.
    if name == "PowerTripEnv":
        from powertrip_env.env import PowerTripEnv

        return PowerTripEnv
    raise AttributeError(f"module 'powertrip_env' has no attribute {name!r}")


def _register() -> None:
    # The vector reward is MO-Gymnasium's convention; Gymnasium's passive checker expects a
    # scalar and would warn on every step, so it is disabled for these ids.
    for env_id, kwargs in (
        ("powertrip/PowerTrip-v0", {}),
        ("powertrip/PowerTripSeed-v0", {"energy_guarantee": False}),
    ):
        if env_id not in registry:
            register(
                id=env_id,
                entry_point="powertrip_env.env:PowerTripEnv",
                vector_entry_point="powertrip_env.vector_env:BatchedPowerTripEnv",
                kwargs=kwargs,
                # One day at the default 5-minute resolution; TimeAwareObservation needs it.
                # For 1- or 15-minute scenarios pass max_episode_steps=1440 or 96 to make().
                max_episode_steps=STEPS_PER_DAY,
                disable_env_checker=True,
            )


_register()
