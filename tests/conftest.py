"""Shared fixtures."""

from __future__ import annotations

import os

# Batched numpy on 2-core machines is steadier single-threaded (architecture.md §8).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest

from powertrip_env.grid.devices import DevicePlacement, DeviceSpec
from powertrip_env.grid.feeder import Feeder, embedded_feeder


@pytest.fixture(scope="session")
def feeder() -> Feeder:
    return embedded_feeder()


@pytest.fixture(scope="session")
def small_placement() -> DevicePlacement:
    """Two CPs and two PV systems at remote buses of the embedded feeder."""
    return DevicePlacement(
        cps=(DeviceSpec("cp1", "900", 1, 7.0), DeviceSpec("cp2", "898", 2, 7.0)),
        pvs=(DeviceSpec("pv1", "800", 2, 4.0), DeviceSpec("pv2", "610", 3, 3.0)),
    )
