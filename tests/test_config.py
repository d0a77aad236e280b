"""Typed presets: defaults in one place, presets as differences, overrides checked before any work."""

import dataclasses

import pytest

from worldjepa.config import from_dict, preset_names, read_yaml, to_dict
from worldjepa.errors import UserError
from worldjepa.presets import PretrainPreset, WorldModelPreset, load_config
from worldjepa.train.trainer import TrainConfig


def test_every_preset_loads_with_its_stage_one():
    assert {"ijepa_tiny", "vjepa_tiny", "vjepa2_tiny", "wm_arm_reach"} <= set(preset_names())
    for name in preset_names():
        cfg = load_config(name)
        if isinstance(
            cfg, WorldModelPreset
        ):  # its stage 1 is a pretraining preset, read from the data folder
            stage1 = cfg.stage1("/data")
            assert stage1.data.root == "/data" and stage1.data.image_size == cfg.env.image_size
        else:
            assert isinstance(cfg, PretrainPreset)


def test_presets_hold_only_what_differs_from_the_defaults():
    for name in preset_names():
        cfg, written = load_config(name), read_yaml(name)
        if isinstance(cfg, PretrainPreset):  # a video method's defaults need a clip length
            defaults = to_dict(from_dict(PretrainPreset, {"method": cfg.method, "data": {"num_frames": 2}}))
        else:
            defaults = to_dict(WorldModelPreset())
        for section, values in written.items():
            if isinstance(values, dict):
                same = [
                    k for k, v in values.items() if not isinstance(v, dict) and defaults[section].get(k) == v
                ]
                assert not same, f"{name}: {section}.{same} repeat the defaults"


def test_override_parses_yaml_values_and_leaves_the_preset_untouched():
    cfg = load_config(
        "ijepa_tiny", ["train.lr=0.5", "model.depth=2", "masks.target_scale=[0.1, 0.2]", "data.root=/x"]
    )
    assert cfg.train.lr == 0.5 and cfg.model.encoder_shape.depth == 2
    assert cfg.masks.target_scale == (0.1, 0.2) and cfg.data.root == "/x"
    assert load_config("ijepa_tiny").model.encoder_shape.depth == 6


def test_a_size_name_sets_the_shape_and_explicit_values_win():
    cfg = load_config("vjepa2_tiny", ["model.size=base"])
    assert (cfg.model.encoder_shape.embed_dim, cfg.model.encoder_shape.depth) == (768, 12)
    assert cfg.model.encoder_shape.heads == 12
    assert load_config("vjepa2_tiny").model.encoder_shape.heads == 4  # RoPE's tiny heads (48 = 3 x 16)
    assert load_config("ijepa_tiny").model.encoder_shape.heads == 3
    with pytest.raises(UserError, match="unknown model.size: encoder size 'enormous'; use one of tiny"):
        load_config("ijepa_tiny", ["model.size=enormous"])


def test_a_partial_section_keeps_the_rest_of_its_own_defaults():
    cfg = load_config("wm_arm_reach", ["world_model.train.lr=1e-3"])
    assert cfg.world_model.train.lr == 1e-3 and cfg.world_model.train.total_steps == 1500  # stage 2's own
    assert load_config("ijepa_tiny", ["train.batch_size=8"]).train.total_steps == 600


def test_unknown_key_names_the_key_and_the_closest_valid_one():
    with pytest.raises(UserError, match=r"unknown config key 'train\.lrr'.*did you mean lr"):
        load_config("ijepa_tiny", ["train.lrr=1"])
    with pytest.raises(UserError, match="must look like key.sub=value"):
        load_config("ijepa_tiny", ["train.lr"])
    with pytest.raises(UserError, match=r"unknown config key 'planner\.horizn'.*did you mean horizon"):
        load_config("wm_arm_reach", ["planner.horizn=2"])


def test_unknown_preset_and_unknown_section_key():
    with pytest.raises(UserError, match="ijepa_tiny"):
        load_config("no_such_preset")
    with pytest.raises(UserError, match=r"unknown config key 'train\.bogus'"):
        from_dict(TrainConfig, {"bogus": 1, "total_steps": 1}, "train")
    with pytest.raises(UserError, match="is not a world-model preset"):
        load_config("ijepa_tiny", kind=WorldModelPreset)


def test_numbers_in_exponent_form_and_wrong_types_are_refused_before_work():
    cfg = load_config("ijepa_tiny", ["train.lr=2e-4", "train.total_steps=5"])
    assert cfg.train.lr == 2e-4 and isinstance(cfg.train.lr, float)
    with pytest.raises(UserError, match="'train.lr' takes a number, got 'fast'"):
        load_config("ijepa_tiny", ["train.lr=fast"])
    with pytest.raises(UserError, match="is a section"):
        load_config("ijepa_tiny", ["train=1"])
    with pytest.raises(UserError, match="'train.batch_size' takes an integer, got 2.5"):
        load_config("ijepa_tiny", ["train.batch_size=2.5"])
    with pytest.raises(UserError, match=r"'train.total_steps' takes an integer, got \[1, 2\]"):
        load_config("ijepa_tiny", ["train.total_steps=[1,2]"])
    with pytest.raises(UserError, match="'planner.kind' takes 'cem' | 'mppi', got 'adam'"):
        load_config("wm_arm_reach", ["planner.kind=adam"])


def test_a_planner_that_could_never_run_is_refused_at_load():
    with pytest.raises(UserError, match=r"planner.top_k must be in \[1, planner.samples=8\]"):
        load_config("wm_arm_reach", ["planner.samples=8", "planner.top_k=10"])
    for row in ("simulator", "true_dynamics"):  # both step the simulator once per candidate
        with pytest.raises(UserError, match="simulator_samples .* must be at least planner.top_k"):
            load_config("wm_arm_reach", [f"evaluate.baselines=[{row}]", "evaluate.simulator_samples=4"])


def test_a_saved_config_round_trips():
    cfg = load_config("wm_two_rooms", ["planner.horizon=7"])
    assert from_dict(WorldModelPreset, to_dict(cfg)) == cfg
    assert dataclasses.replace(cfg.planner, horizon=7) == cfg.planner


def test_an_optional_section_is_null_unless_given():
    assert load_config("wm_arm_reach").world_model.object_locator is None
    push = load_config("wm_arm_push")
    assert push.world_model.object_locator.keypoints == 4
    assert load_config("wm_arm_push", ["world_model.object_locator=null"]).world_model.object_locator is None
    assert (
        load_config("wm_arm_reach", ["world_model.object_locator.width=8"]).world_model.object_locator.width
        == 8
    )
    with pytest.raises(UserError, match="did you mean width"):
        load_config("wm_arm_reach", ["world_model.object_locator.widht=8"])
