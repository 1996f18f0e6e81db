"""Day profiles of a scenario: household load, PV availability and EV sessions.

Everything random takes the caller's :class:`numpy.random.Generator`; nothing here touches a
global random state. Profiles are mean powers per step of a :class:`DayGrid` (kW, positive =
consumption for loads and EVs, generation for PV), from local UK midnight.

* :mod:`~powertrip_env.profiles.timegrid` -- resolutions, step times, representative dates;
* :mod:`~powertrip_env.profiles.load` -- BDEW H0 households (demandlib) or ENWL load files;
* :mod:`~powertrip_env.profiles.pv` -- pvlib clear sky x seeded clouds, or ENWL PV files;
* :mod:`~powertrip_env.profiles.ev` -- fleet and home charging sessions, or ENWL EV files;
* :mod:`~powertrip_env.profiles.enwl` -- the ENWL profile file format.
"""

from powertrip_env.profiles.enwl import (
    ENWL_N_PROFILES,
    ENWL_N_STEPS,
    ENWL_RESOLUTION_MIN,
    assign_enwl_profiles,
    cached_enwl_house_profiles,
    check_file_season,
    choose_columns,
    enwl_house_shape_files,
    read_enwl_house_profiles,
    read_enwl_profile_csv,
    season_in_name,
)
from powertrip_env.profiles.ev import (
    HORIZON_H,
    EVSession,
    EVSessionModel,
    SessionArrays,
    enwl_sessions,
    load_enwl_ev_profiles,
    sample_sessions,
    session_arrays,
)
from powertrip_env.profiles.load import (
    DEFAULT_POWER_FACTOR,
    HouseholdLoadModel,
    day_energy_bounds_kwh,
    h0_day,
    household_load_kw,
    household_loads_kw,
    load_enwl_load_profiles,
    reactive_power_kvar,
    sample_annual_kwh,
)
from powertrip_env.profiles.pv import (
    ENWL_LATITUDE_DEG,
    ENWL_LONGITUDE_DEG,
    SKY_CLASS_PARAMETERS,
    PVModel,
    SkyClass,
    clear_sky_index,
    load_enwl_pv_profiles,
    pv_available_days_kw,
    pv_available_kw,
    sample_pv_orientations,
    scale_enwl_pv,
)
from powertrip_env.profiles.timegrid import (
    DEFAULT_RESOLUTION_MIN,
    SUPPORTED_RESOLUTIONS_MIN,
    TIMEZONE,
    DayGrid,
    DayType,
    Season,
    day_type_of,
    representative_date,
    resample_mean,
    season_of,
)

__all__ = [
    "DEFAULT_POWER_FACTOR",
    "DEFAULT_RESOLUTION_MIN",
    "ENWL_LATITUDE_DEG",
    "ENWL_LONGITUDE_DEG",
    "ENWL_N_PROFILES",
    "ENWL_N_STEPS",
    "ENWL_RESOLUTION_MIN",
    "HORIZON_H",
    "SKY_CLASS_PARAMETERS",
    "SUPPORTED_RESOLUTIONS_MIN",
    "TIMEZONE",
    "DayGrid",
    "DayType",
    "EVSession",
    "EVSessionModel",
    "HouseholdLoadModel",
    "PVModel",
    "Season",
    "SessionArrays",
    "SkyClass",
    "assign_enwl_profiles",
    "cached_enwl_house_profiles",
    "check_file_season",
    "choose_columns",
    "clear_sky_index",
    "day_energy_bounds_kwh",
    "day_type_of",
    "enwl_house_shape_files",
    "enwl_sessions",
    "h0_day",
    "household_load_kw",
    "household_loads_kw",
    "load_enwl_ev_profiles",
    "load_enwl_load_profiles",
    "load_enwl_pv_profiles",
    "pv_available_days_kw",
    "pv_available_kw",
    "reactive_power_kvar",
    "read_enwl_house_profiles",
    "read_enwl_profile_csv",
    "representative_date",
    "resample_mean",
    "sample_annual_kwh",
    "sample_pv_orientations",
    "sample_sessions",
    "scale_enwl_pv",
    "season_in_name",
    "season_of",
    "session_arrays",
]
