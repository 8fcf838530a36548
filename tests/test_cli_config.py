"""The CLI generated from the config dataclasses: a flag per field with its real default, --set, family options in
`info --model` / `train --model NAME --help` / --dry-run, a torch-free --help, --version, Ctrl-C at start-up."""

import dataclasses
import subprocess
import sys

import pytest
import yaml

import ganforge
from ganforge import families
from ganforge.cli import CONFIG_FLAGS, main
from ganforge.config import field_docs, settings


@pytest.fixture
def ganforge_cli(monkeypatch, capsys):
    """Run `ganforge ARGS...` in this process through the real entry point: (exit code, stdout, stderr)."""
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping in rich's help

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["ganforge", *map(str, args)])
        with pytest.raises(SystemExit) as exit:
            main()
        captured = capsys.readouterr()
        return exit.value.code, captured.out, captured.err

    return run


def test_every_config_field_has_a_flag_whose_help_shows_its_default(ganforge_cli):
    code, out, _ = ganforge_cli("train", "--help")
    assert code == 0
    flags = {key: (flag, doc) for key, flag, doc in CONFIG_FLAGS.values()}
    for key, doc in settings():
        if isinstance(doc.default, dict):  # model.options: --opt / --set
            continue
        flag, _ = flags[key]
        line = next(line for line in out.splitlines() if line.strip("│ ").startswith(f"--{flag} "))
        shown = (f"--{flag}" if doc.default else f"--no-{flag}") if isinstance(doc.default, bool) else str(doc.default)
        assert f"[default: ({shown})]" in line, (key, line)
        assert doc.help[:30] in line, (key, line)
    assert "flags win" in out  # presets override the shown defaults: said once


def _dry_run(ganforge_cli, *args):
    code, out, err = ganforge_cli("train", "--dry-run", *args)
    assert code == 0, err
    return yaml.safe_load(out)


def test_set_and_flag_resolve_to_the_same_config(ganforge_cli):
    assert _dry_run(ganforge_cli, "--set", "train.steps=7") == _dry_run(ganforge_cli, "--steps", "7")
    assert (_dry_run(ganforge_cli, "--set", "model.name=stylegan", "--set", "model.options.truncation=0.5")
            == _dry_run(ganforge_cli, "--model", "stylegan", "--opt", "truncation=0.5"))


@pytest.mark.parametrize("assignment, message", [("train.stepz=7", "unknown key 'train.stepz'"),
                                                 ("steps=7", "unknown key 'steps'"),
                                                 ("train.steps=many", "expected an integer"),
                                                 ("train.steps", "expects key=value")])
def test_a_bad_set_is_one_line(ganforge_cli, assignment, message):
    code, _, err = ganforge_cli("train", "--dry-run", "--set", assignment)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_info_model_lists_the_family_options_with_defaults(ganforge_cli):
    code, out, _ = ganforge_cli("info", "--model", "stylegan")
    assert code == 0
    options = {doc.name: doc for doc in field_docs(families.get("stylegan").Options)}
    assert f"truncation: float = {options['truncation'].default!r}" in out
    assert "truncation psi" in out and "preset: " in out
    code, _, err = ganforge_cli("info")
    assert code == 2 and "--model NAME" in err


def test_train_model_help_shows_the_family_options_and_preset_defaults(ganforge_cli):
    code, out, _ = ganforge_cli("train", "--model", "stylegan", "--help")
    assert code == 0
    assert "truncation: float = 1.0" in out
    preset = families.get("stylegan").preset["train"]["lr_g"]
    assert f"[default: ({preset}, stylegan preset)]" in out


def test_dry_run_fills_every_family_option_with_its_default(ganforge_cli):
    for name in families.available():
        family = families.get(name)
        options = _dry_run(ganforge_cli, "--model", name)["model"]["options"]
        expected = {doc.name: doc.default for doc in field_docs(family.Options)} if family.Options else {}
        expected |= family.preset.get("model", {}).get("options", {})
        assert options == yaml.safe_load(yaml.safe_dump(expected)), name


def test_help_does_not_import_torch():
    code = ("import sys\nfrom ganforge.cli import main\nfor args in (['--help'], ['train', '--help']):\n"
            "    sys.argv = ['ganforge', *args]\n    try:\n        main()\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "False", result.stderr


def test_version(ganforge_cli):
    assert ganforge_cli("--version")[:2] == (0, f"ganforge {ganforge.__version__}\n")


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(ganforge_cli, monkeypatch, tmp_path):
    from ganforge import api

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "resolve_config", interrupt)
    assert ganforge_cli("train", "--dry-run") == (130, "", "interrupted\n")
    (tmp_path / "typer.py").write_text("raise KeyboardInterrupt\n")  # Ctrl-C while the CLI is still importing
    result = subprocess.run([sys.executable, "-m", "ganforge", "--help"], capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": f"{tmp_path}:{ganforge.__path__[0]}/.."})
    assert (result.returncode, result.stderr) == (130, "interrupted\n")


def test_public_names_are_lazy_and_still_work():
    assert {"GAN", "GanforgeError", "RunConfig", "load", "train"} <= set(dir(ganforge))
    assert dataclasses.is_dataclass(ganforge.RunConfig) and callable(ganforge.train) and callable(ganforge.load)
    with pytest.raises(AttributeError):
        ganforge.not_a_name


def test_named_presets_choose_the_recipe_and_an_unknown_one_is_refused(ganforge_cli, monkeypatch):
    family = families.get("dcgan")
    monkeypatch.setattr(family, "presets", {"paper": {"train": {"steps": 123, "lr_g": 1e-3}}})
    assert _dry_run(ganforge_cli, "--model", "dcgan", "--preset", "paper")["train"]["steps"] == 123
    default = _dry_run(ganforge_cli, "--model", "dcgan")
    assert default["train"]["steps"] == family.preset["train"]["steps"] and default["model"]["preset"] == "default"
    # a flag still wins over the named preset
    assert _dry_run(ganforge_cli, "--model", "dcgan", "--preset", "paper", "--steps", "7")["train"]["steps"] == 7
    code, _, err = ganforge_cli("train", "--model", "dcgan", "--preset", "fast", "--dry-run")
    assert code != 0 and "model.preset" in err and "paper" in err
