"""Typed exceptions of PowerTrip.

Every error raised on bad input derives from :class:`PowerTripError`, and its message names
the value received and what would have been valid.
"""

from __future__ import annotations

from gymnasium.error import ClosedEnvironmentError


class PowerTripError(Exception):
    """Base class of every error PowerTrip raises on purpose."""


class ConfigError(PowerTripError, ValueError):
    """A configuration value is invalid (wrong range, unknown name, inconsistent fields)."""


class FeederError(PowerTripError):
    """A feeder could not be loaded or a device could not be placed on it."""


class PowerFlowError(PowerTripError):
    """A power flow did not converge or the engine reported an error."""


class ProfileError(PowerTripError):
    """A profile file could not be read or holds values outside what is allowed."""


class UnknownBusError(FeederError, ConfigError):
    """A device names a bus or phase the feeder does not have.

    It is both a :class:`FeederError` (the feeder cannot take the device) and a
    :class:`ConfigError` (the scenario's placement is wrong), so either can catch it.
    """


class EnvClosedError(PowerTripError, ClosedEnvironmentError):
    """An environment was used after ``close()`` freed its engine; make a new one.

    Also a :class:`gymnasium.error.ClosedEnvironmentError`, which Gymnasium's own vector
    envs raise in the same situation.
    """


class VectorRewardError(PowerTripError, TypeError):
    """A vector env or wrapper that stores one float reward per step met PowerTrip's vector
    reward; the message names the vector envs that take it, or how to scalarise."""
