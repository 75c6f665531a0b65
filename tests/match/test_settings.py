"""MatchSettings: JSON round trip, validation."""

from __future__ import annotations

import json

import pytest

from recon.errors import MatchError
from recon.match import Level, MatchSettings, default_settings


@pytest.mark.parametrize("entity", ["companies", "contacts"])
def test_round_trip(entity: str) -> None:
    s = default_settings(entity)  # type: ignore[arg-type]
    again = MatchSettings.from_json(s.to_json())
    assert again == s
    assert json.loads(again.to_json()) == json.loads(s.to_json())


def test_edited_json_applies() -> None:
    data = default_settings("companies").to_dict()
    data["thresholds"]["auto"] = 0.999
    assert MatchSettings.from_dict(data).thresholds.auto == 0.999


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        json.dumps({"entity": "companies"}),
    ],
)
def test_invalid_settings(bad: str) -> None:
    with pytest.raises(MatchError):
        MatchSettings.from_json(bad)


def test_unknown_level_op() -> None:
    with pytest.raises(MatchError, match="unknown op"):
        Level("x", "soundex")
