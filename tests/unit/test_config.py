from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from photoguard.config import ConfigError, Settings, load_settings, parse_settings
from photoguard.service.setup import example_toml, init_root
from tests.support.shared import REPO


def test_defaults_are_fail_closed() -> None:
    s = Settings()
    assert s.identify.match_distance <= 0.5
    assert s.identify.near_match.value == "hold"
    assert {c.name for c in s.channels} == {"newsletter", "parro", "guide", "website", "social"}
    assert s.channel("website").public and s.channel("social").public
    assert not s.channel("parro").public


def test_unknown_key_is_reported_with_its_path() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_settings({"identify": {"match_distanse": 0.4}})
    assert any(e.startswith("identify.match_distanse") for e in exc.value.errors)


def test_out_of_bounds_value_names_the_list_index() -> None:
    data = {"channels": [{"name": "website", "consent": "website", "public": True, "max_side": 10}]}
    with pytest.raises(ConfigError) as exc:
        parse_settings(data)
    assert any(e.startswith("channels[0].max_side") for e in exc.value.errors), exc.value.errors


def test_unknown_consent_key_and_detector_type_rejected() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_settings({"channels": [{"name": "x", "consent": "tiktok", "public": True}]})
    assert "channels[0].consent" in exc.value.errors[0]
    with pytest.raises(ConfigError):
        parse_settings({"detect": {"type": "haar"}})


def test_review_distance_below_match_distance_rejected() -> None:
    with pytest.raises(ConfigError):
        parse_settings({"identify": {"match_distance": 0.5, "review_distance": 0.4}})


def test_example_config_round_trips_to_defaults() -> None:
    data = tomllib.loads(example_toml())
    assert parse_settings(data) == Settings()


def test_committed_example_config_is_up_to_date() -> None:
    committed = (REPO / "config" / "photoguard.example.toml").read_text(encoding="utf-8")
    hint = "regenerate: python -m photoguard.service.setup > config/photoguard.example.toml"
    assert committed == example_toml(), hint


def test_every_field_is_documented() -> None:
    from pydantic import BaseModel

    missing: list[str] = []

    def walk(model: type[BaseModel], path: str) -> None:
        for name, f in model.model_fields.items():
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{path}{name}.")
            elif not f.description and name != "type":
                missing.append(path + name)

    walk(Settings, "")
    assert not missing, f"fields without a description: {missing}"


def test_init_creates_layout_and_loadable_config(tmp_path: Path) -> None:
    created = init_root(tmp_path / "school")
    root = tmp_path / "school"
    for d in ("inbox", "outbox", "quarantine", "state"):
        assert (root / d).is_dir()
    assert (root / "state" / "photoguard.key").stat().st_mode & 0o777 == 0o600
    assert load_settings(root) == Settings()
    assert init_root(root) == []  # idempotent
    assert created


def test_broken_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "photoguard.toml").write_text("[paths\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path)
    assert "cannot read" in exc.value.errors[0]
