"""Settings and sides: defaults, per-side reach, validation."""

from __future__ import annotations

import pytest

from gapmap import InputError, Settings, Side, parse_side


def test_defaults_follow_the_metric_definitions():
    s = Settings()
    assert (s.reach_km, s.max_width_km, s.min_length_km, s.spacing_m) == (2.0, 150.0, 1.0, 250.0)
    assert (s.post_range_km, s.post_height_m, s.target_height_m) == (5.0, 10.0, 2.0)
    assert s.reach_a == s.reach_b == 2.0 and s.crs is None


def test_per_side_reach_overrides_only_its_side():
    s = Settings(reach_km=3, reach_a_km=0.5)
    assert (s.reach_a, s.reach_b) == (0.5, 3)
    s = Settings(reach_km=3, reach_b_km=0)
    assert (s.reach_a, s.reach_b) == (3, 0)  # 0 is a reach, not "unset"
    assert Settings(reach_a_km=1).as_dict()["reach_a_km"] == 1


@pytest.mark.parametrize("field, value", [("reach_km", -1), ("max_width_km", 0),
                                          ("min_length_km", -0.1), ("post_range_km", None),
                                          ("spacing_m", 0), ("target_height_m", float("nan"))])
def test_bad_values_are_input_errors_naming_the_field(field, value):
    with pytest.raises(InputError, match=field):
        Settings(**{field: value})


def test_sides_parse_and_normalise():
    side = parse_side(" federal = ISF , pmf ,")
    assert side == Side("federal", ("isf", "pmf"))
    for bad in ("federal", "=isf", "federal=", "federal=,"):
        with pytest.raises(InputError, match="NAME=force1,force2"):
            parse_side(bad)
    with pytest.raises(InputError):
        Side("", ("isf",))
