import pytest

from tf_model.configurator import apply_config, read_config_file

DEFAULTS = {
    "batch_size": 32,
    "learning_rate": 3e-3,
    "out_dir": "out",
    "decay_lr": True,
    "xla": "auto",
}


def test_file_then_overrides(tmp_path):
    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text('"""doc"""\nbatch_size = 16\nout_dir = "out-a"\n')
    cfg = apply_config(
        DEFAULTS,
        ["--config", str(cfg_file), "--batch_size=8", "--learning_rate=1e-3", "--decay_lr=False"],
    )
    assert cfg == {
        **DEFAULTS,
        "batch_size": 8,
        "out_dir": "out-a",
        "learning_rate": 1e-3,
        "decay_lr": False,
    }


def test_bare_words_are_strings_and_ints_promote_to_float():
    cfg = apply_config(DEFAULTS, ["--out_dir=out-run", "--learning_rate=1"])
    assert (
        cfg["out_dir"] == "out-run"
        and cfg["learning_rate"] == 1.0
        and isinstance(cfg["learning_rate"], float)
    )


def test_nanogpt_positional_config_file(tmp_path):
    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text("batch_size = 4\n")
    assert apply_config(DEFAULTS, [str(cfg_file)])["batch_size"] == 4


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError) as e:
        apply_config(DEFAULTS, ["--batchsize=4"])
    assert "unknown config key 'batchsize'" in str(e.value) and "batch_size" in str(e.value)


@pytest.mark.parametrize(
    "arg",
    [
        "--batch_size=4.5",
        "--batch_size=True",
        "--decay_lr=1",
        "--learning_rate=fast",
        "--out_dir=3",
    ],
)
def test_wrong_type_is_an_error(arg):
    with pytest.raises(ValueError, match="must be of type"):
        apply_config(DEFAULTS, [arg])


def test_unknown_key_in_config_file_names_the_file(tmp_path):
    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text("n_embed = 128\n")
    with pytest.raises(ValueError, match="cfg.py: unknown config key 'n_embed'"):
        apply_config(DEFAULTS, ["--config", str(cfg_file)])


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("import os\n", "only `name = value` assignments"),
        ("batch_size = 2 * 8\n", "must be a literal"),
        ("batch_size = \n", "not valid Python"),
    ],
)
def test_config_files_are_parsed_not_executed(tmp_path, source, fragment):
    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text(source)
    with pytest.raises(ValueError, match=fragment):
        read_config_file(str(cfg_file))


def test_missing_config_file():
    with pytest.raises(ValueError, match="config file not found"):
        apply_config(DEFAULTS, ["--config", "nope/cfg.py"])


def test_unparseable_argument():
    with pytest.raises(ValueError, match="cannot parse argument"):
        apply_config(DEFAULTS, ["--batch_size"])


def test_shipped_config_files_only_use_known_keys():
    import tf_train

    for path in ("tf_config/train_pico_shakespeare_char.py", "tf_config/train_pico_quick.py"):
        apply_config(tf_train.DEFAULTS, ["--config", path])
