"""Presets and command-line overrides."""

import pytest

from worldjepa.config import apply_overrides, build, load_preset, preset_names
from worldjepa.errors import UserError
from worldjepa.methods.ac_posttrain import ACPostTrainConfig
from worldjepa.methods.regularizers import RegularizerConfig
from worldjepa.train.trainer import TrainConfig


def test_every_preset_loads_and_builds_its_sections():
    assert {"ijepa_tiny", "vjepa_tiny", "vjepa2_tiny"} <= set(preset_names())
    for name in preset_names():
        cfg = load_preset(name)
        if "world_model" in cfg:  # a world-model preset: its stage 1 is an encoder preset
            build(TrainConfig, cfg["world_model"]["train"], "world_model.train")
            build(ACPostTrainConfig, cfg["world_model"]["posttrain"], "world_model.posttrain")
            cfg = apply_overrides(load_preset(cfg["encoder"]["preset"]), cfg["encoder"]["overrides"])
        build(TrainConfig, cfg["train"], "train")
        build(RegularizerConfig, cfg["regularizer"], "regularizer")


def test_override_parses_yaml_values_and_leaves_the_preset_untouched():
    cfg = load_preset("ijepa_tiny")
    new = apply_overrides(
        cfg, ["train.lr=0.5", "model.depth=2", "masks.target_scale=[0.1, 0.2]", "data.root=/x"]
    )
    assert new["train"]["lr"] == 0.5 and new["model"]["depth"] == 2
    assert new["masks"]["target_scale"] == [0.1, 0.2] and new["data"]["root"] == "/x"
    assert cfg["model"]["depth"] == 6


def test_unknown_key_names_the_key_and_the_closest_valid_one():
    with pytest.raises(UserError, match=r"unknown config key 'train\.lrr'.*did you mean lr"):
        apply_overrides(load_preset("ijepa_tiny"), ["train.lrr=1"])
    with pytest.raises(UserError, match="must look like key.sub=value"):
        apply_overrides(load_preset("ijepa_tiny"), ["train.lr"])


def test_unknown_preset_and_unknown_section_key():
    with pytest.raises(UserError, match="ijepa_tiny"):
        load_preset("no_such_preset")
    with pytest.raises(UserError, match="unknown key.*bogus.*section 'train'"):
        build(TrainConfig, {"bogus": 1, "total_steps": 1}, "train")


def test_numbers_in_exponent_form_and_wrong_types():
    cfg = apply_overrides(load_preset("ijepa_tiny"), ["train.lr=2e-4", "train.total_steps=5"])
    assert cfg["train"]["lr"] == 2e-4 and isinstance(cfg["train"]["lr"], float)
    with pytest.raises(UserError, match="'train.lr' takes a number, got 'fast'"):
        apply_overrides(load_preset("ijepa_tiny"), ["train.lr=fast"])
    with pytest.raises(UserError, match="is a section"):
        apply_overrides(load_preset("ijepa_tiny"), ["train=1"])
