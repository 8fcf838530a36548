import signal
import subprocess
import sys
import time

import numpy as np

TINY = ["--resolution", "16", "--width", "8", "--latent-dim", "16", "--batch-size", "16", "--log-every", "2",
        "--sample-every", "4", "--checkpoint-every", "4", "--quiet"]


def ganforge(*args, env, check=True):
    result = subprocess.run([sys.executable, "-m", "ganforge", *map(str, args)], capture_output=True, text=True,
                            env=env, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_train_sample_interpolate_info_end_to_end(tmp_path, cli_env):
    ganforge("train", "--steps", "4", "--out", tmp_path, "--name", "r", *TINY, env=cli_env)
    run = tmp_path / "r"
    assert (run / "checkpoints" / "last.safetensors").exists()
    ganforge("train", "--resume", run, "--steps", "6", "--quiet", env=cli_env)
    ganforge("sample", run, "--n", "9", "--out", tmp_path / "grid.png", env=cli_env)
    ganforge("sample", run, "--n", "5", "--out", tmp_path / "s.npz", "--seed", "1", env=cli_env)
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["images"].shape == (5, 16, 16, 1) and arrays["images"].dtype == np.uint8
    ganforge("sample", run, "--n", "3", "--out", tmp_path / "pngs", env=cli_env)
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 3
    ganforge("interpolate", run, "--out", tmp_path / "walk.gif", "--n", "2", "--frames", "2", env=cli_env)
    from PIL import Image

    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 8
    info = ganforge("info", run, env=cli_env).stdout
    assert "step 6 of 6" in info and "dcgan" in info


def test_config_file_and_dry_run(tmp_path, cli_env):
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  steps: 7\n  lr_g: 0.001\nmodel:\n  width: 12\n")
    out = ganforge("train", "--config", config, "--steps", "9", "--dry-run", env=cli_env).stdout
    assert "steps: 9" in out and "width: 12" in out and "lr_g: 0.001" in out
    config.write_text("train:\n  stepz: 7\n")
    bad = ganforge("train", "--config", config, "--dry-run", env=cli_env, check=False)
    assert bad.returncode == 2 and "unknown key 'train.stepz'" in bad.stderr


def test_bad_input_is_one_line_and_nonzero(tmp_path, cli_env):
    (tmp_path / "empty").mkdir()
    cases = [
        (["train", "--data", tmp_path / "missing"], "no such file or folder"),
        (["train", "--data", tmp_path / "empty"], "no image files found"),
        (["train", "--resolution", "48"], "power of two"),
        (["train", "--limit", "8", "--batch-size", "16"], "larger than the data set"),
        (["sample", tmp_path / "empty"], "not a ganforge run folder"),
        (["sample", tmp_path / "nowhere"], "no such run folder"),
    ]
    for args, message in cases:
        result = ganforge(*args, "--out" if args[0] == "train" else "--n", tmp_path / "o" if args[0] == "train" else 4,
                          env=cli_env, check=False)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, (args, result.stderr)


def test_ctrl_c_writes_checkpoint_exits_zero_and_resumes(tmp_path, cli_env):
    process = subprocess.Popen([sys.executable, "-m", "ganforge", "train", "--steps", "100000", "--out", tmp_path,
                                "--name", "r", *TINY], env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    metrics = tmp_path / "r" / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) > 3):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "interrupted" in out and "--resume" in out
    info = ganforge("info", tmp_path / "r", env=cli_env).stdout
    step = int(info.split("step ")[1].split(" ")[0])
    assert step >= 4
    ganforge("train", "--resume", tmp_path / "r", "--steps", step + 2, "--quiet", env=cli_env)
    assert f"step {step + 2} of {step + 2}" in ganforge("info", tmp_path / "r", env=cli_env).stdout
