"""The command line turns bad input into one clear line, not a traceback."""

import subprocess
import sys

from worldjepa.cli import main


def test_unknown_config_key_is_one_line_on_stderr(capsys):
    assert main(["pretrain", "model.dept=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown config key 'model.dept'") and "depth" in err
    assert len(err.splitlines()) == 1


def test_empty_dataset_folder_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "train").mkdir()
    code = main(
        ["pretrain", "data.dataset=folder", f"data.root={tmp_path}", "--run-dir", str(tmp_path / "run")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no images found" in err


def test_patch_size_that_does_not_divide_the_image(tmp_path, capsys):
    code = main(["pretrain", "data.image_size=60", "train.total_steps=1", "--run-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "not divisible by patch size 8" in err and len(err.splitlines()) == 1


def test_probe_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["probe", "--run", str(tmp_path)]) == 2
    assert "not a pretraining run" in capsys.readouterr().err


def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "worldjepa.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "pretrain" in out.stdout and "collect" in out.stdout


def test_collect_takes_the_share_of_expert_episodes(tmp_path):
    """`--expert-fraction` sets the policy mix, as a world-model preset's `collect.expert_fraction` does."""
    from worldjepa.data.trajectories import TrajectoryDataset

    out = tmp_path / "data"
    args = [
        "collect",
        "--env",
        "worldjepa/ArmReach-v0",
        "--episodes",
        "3",
        "--workers",
        "0",
        "--out",
        str(out),
    ]
    assert main([*args, "--expert-fraction", "1.0"]) == 0
    assert main([*args, "--expert-fraction", "0.0"]) == 0  # appended
    data = TrajectoryDataset(out, clip_length=1)
    assert [data.episode(i)["policy"] for i in range(6)] == ["expert"] * 3 + ["random"] * 3
