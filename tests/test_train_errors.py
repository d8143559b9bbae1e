"""tf_train.py's guards, in-process (main(argv), no subprocess): usage, settings, out_dir,
resume, and the saved set (model.keras + model_config.pkl + ckpt.pkl) that must always be one
complete save. The subprocess side (exit status, no traceback, a real full disk, Ctrl-C) is in
test_train_e2e.py."""

import os
import pickle
import shutil

import pytest
from conftest import TINY_MODEL_ARGS, run_script

import tf_train
from tf_model.checkpoint import DataError, load_checkpoint, load_resume_state

SAVED_SET = ("model.keras", "model_config.pkl", "ckpt.pkl")


@pytest.fixture(scope="module")
def run_dir(corpus_dir, tmp_path_factory):
    """A complete saved set from a real run: max_iters=0 evaluates and saves the initial model."""
    out = tmp_path_factory.mktemp("run0")
    argv = [f"--data_dir={corpus_dir}", f"--out_dir={out}", *TINY_MODEL_ARGS]
    assert tf_train.main([*argv, "--max_iters=0", "--eval_iters=1", "--tensorboard=False"]) == 0
    return out


@pytest.fixture
def used_dir(run_dir, tmp_path):
    """A copy of run_dir to spoil, and the bytes of its saved set."""
    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    return d, saved_bytes(d)


def saved_bytes(d):
    return {name: (d / name).read_bytes() for name in SAVED_SET}


def train_args(corpus_dir, out_dir, *extra):
    return [f"--data_dir={corpus_dir}", f"--out_dir={out_dir}", *TINY_MODEL_ARGS, *extra]


# ---- usage -----------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["-h"], ["--help"], ["--max_iters=5", "--help"]])
def test_usage_lists_every_setting_with_its_default_and_comment(argv, capsys):
    assert tf_train.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: uv run python tf_train.py")
    for key in tf_train.DEFAULTS:
        assert f"  --{key}=" in out, key
    assert "--batch_size=32  " in out and "windows of block_size characters per training" in out
    assert "--n_layer=3  " in out and "transformer blocks" in out  # from tf_model/config.py
    assert "--overwrite=False" in out and "--init_from=scratch" in out


def test_no_arguments_prints_usage_instead_of_training():
    r = run_script("tf_train.py")
    assert r.returncode == 0 and r.stdout.startswith("usage:") and r.stderr == ""


# ---- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arg, fragment",
    [
        ("--batch_size=0", "--batch_size must be >= 1, got 0"),
        ("--block_size=0", "block_size must be a positive integer, got 0"),
        ("--block_size=-4", "block_size must be a positive integer, got -4"),
        ("--eval_interval=0", "--eval_interval must be >= 1, got 0"),
        ("--eval_iters=0", "--eval_iters must be >= 1, got 0"),
        ("--log_interval=-1", "--log_interval must be >= 1, got -1"),
        ("--max_iters=-1", "--max_iters must be >= 0, got -1"),
        ("--dropout=1.0", "dropout must be a number in [0, 1), got 1.0"),
        ("--dropout=-0.1", "dropout must be a number in [0, 1), got -0.1"),
        ("--learning_rate=1e999", "--learning_rate must be a finite number > 0, got inf"),
        ("--learning_rate=0", "--learning_rate must be a finite number > 0, got 0.0"),
        ("--grad_clip=-1", "--grad_clip must be a finite number >= 0, got -1.0"),
        ("--beta2=1", "--beta2 must be in [0, 1), got 1.0"),
        (
            "--init_from=continue",
            "--init_from must be 'scratch', 'resume' or a tf_train.py out_dir",
        ),
        ("--qat=True", "--qat=True fine-tunes a trained model: pass --init_from=DIR"),
        ("--qat_ranges=x", "--qat_ranges must be one of ('minmax', 'percentile', 'mse')"),
        (
            "--mixed_precision=bf16",
            (
                "--mixed_precision must be one of ('auto', 'float16', 'bfloat16', 'float32'), "
                "got 'bf16'"
            ),
        ),
        ("--qat_margin=-1", "--qat_margin must be a finite number >= 0, got -1.0"),
        ("--qat_consistency=1e999", "--qat_consistency must be a finite number >= 0, got inf"),
        ("--qat_calibration_windows=0", "--qat_calibration_windows must be >= 1, got 0"),
    ],
)
def test_bad_settings_are_errors_before_anything_is_written(corpus_dir, tmp_path, arg, fragment):
    out = tmp_path / "out"
    with pytest.raises((tf_train.TrainError, ValueError)) as info:
        tf_train.main(train_args(corpus_dir, out, arg))
    assert fragment in str(info.value)
    assert not out.exists()


def never_reached(*args, **kwargs):
    raise AssertionError("the model was built although out_dir is unusable")


def test_out_dir_that_is_a_file_is_refused_before_the_model_is_built(
    corpus_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(tf_train, "Trainer", never_reached)
    monkeypatch.setattr(tf_train, "CharDataset", never_reached)
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    with pytest.raises(tf_train.TrainError, match="--out_dir .*notes.txt is a file"):
        tf_train.main(train_args(corpus_dir, path))
    assert path.read_text() == "mine"


# ---- no run is lost ------------------------------------------------------------------------


def test_scratch_run_refuses_to_replace_another_run(corpus_dir, used_dir, monkeypatch):
    monkeypatch.setattr(tf_train, "Trainer", never_reached)
    d, before = used_dir
    with pytest.raises(tf_train.TrainError) as info:
        tf_train.main(train_args(corpus_dir, d))
    msg = str(info.value)
    assert "already holds a training run (model.keras, model_config.pkl, ckpt.pkl)" in msg
    assert "--init_from=resume" in msg and "--overwrite=True" in msg
    assert saved_bytes(d) == before


def test_scratch_run_with_overwrite_replaces_the_old_run(corpus_dir, used_dir, capsys):
    d, _ = used_dir
    (d / "metrics.csv").write_text("iter,train_loss,val_loss,lr,elapsed_s\n500,1,1,1,1\n")
    argv = train_args(corpus_dir, d, "--overwrite=True", "--max_iters=0", "--seed=7")
    assert tf_train.main([*argv, "--eval_iters=1", "--tensorboard=False"]) == 0
    assert "done: 0 iterations this run" in capsys.readouterr().out
    assert load_resume_state(str(d))["train_config"]["seed"] == 7
    assert (d / "metrics.csv").read_text().splitlines()[1].startswith("0,")
    assert len((d / "metrics.csv").read_text().splitlines()) == 2


def test_resume_refuses_model_settings_that_differ_from_the_checkpoint(
    corpus_dir, used_dir, tmp_path
):
    d, before = used_dir
    config = tmp_path / "cfg.py"
    config.write_text('activation = "gelu"\n')
    argv = train_args(corpus_dir, d, "--init_from=resume", "--n_layer=3", "--config", str(config))
    with pytest.raises(tf_train.TrainError) as info:
        tf_train.main(argv)
    msg = str(info.value)
    assert "n_layer=3 (from --n_layer; the checkpoint has n_layer=2)" in msg
    assert f"activation='gelu' (from {config}; the checkpoint has activation='relu')" in msg
    assert "n_head" not in msg  # given, but equal to the saved value
    assert saved_bytes(d) == before


def test_resume_when_the_checkpoint_is_already_at_max_iters(corpus_dir, used_dir):
    d, _ = used_dir
    with pytest.raises(tf_train.TrainError, match="at iteration 0, and max_iters is 0"):
        tf_train.main(train_args(corpus_dir, d, "--init_from=resume", "--max_iters=0"))


def flip_a_bit(data: bytes, at):
    damaged = bytearray(data)
    damaged[at] ^= 0x04
    return bytes(damaged)


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: flip_a_bit(b, len(b) // 2), "checksum does not match"),
        (lambda b: b"", "EOFError"),
        (lambda b: pickle.dumps({"something": "else"}), "not in the format tf_train.py writes"),
    ],
)
def test_resume_detects_a_damaged_checkpoint(corpus_dir, used_dir, damage, fragment):
    d, before = used_dir
    (d / "ckpt.pkl").write_bytes(damage(before["ckpt.pkl"]))
    with pytest.raises(DataError) as info:
        tf_train.main(train_args(corpus_dir, d, "--init_from=resume", "--max_iters=10"))
    msg = str(info.value)
    assert f"{d}/ckpt.pkl is damaged" in msg and "--overwrite=True" in msg
    assert fragment in msg


def test_a_checkpoint_without_checksum_still_resumes(used_dir):
    """ckpt.pkl files written before the checksum existed are the bare state dict."""
    d, _ = used_dir
    state = load_resume_state(str(d))
    (d / "ckpt.pkl").write_bytes(pickle.dumps(state))
    assert load_resume_state(str(d))["iter_num"] == state["iter_num"]


@pytest.mark.parametrize("failing", ["model.keras", "ckpt.pkl"])
def test_a_failed_save_keeps_the_previous_set(used_dir, monkeypatch, failing):
    """Disk full or permission lost mid-save: a clear error, the previous set unchanged, no
    temp file (the e2e test does the same with a real file-size limit)."""
    from tf_model import PicoGPTConfig
    from tf_model.fileio import StagedFiles

    d, before = used_dir
    names = sorted(os.listdir(d))
    info = pickle.loads(before["model_config.pkl"])
    cfg = {**tf_train.DEFAULTS, **info["train_config"], "out_dir": str(d)}
    trainer = tf_train.Trainer(cfg, PicoGPTConfig(**info["model_args"]), "float32", False)
    stage_path = StagedFiles.path

    def path(self, final_path):
        if os.path.basename(final_path) == failing:
            raise PermissionError(13, "Permission denied", final_path)
        return stage_path(self, final_path)

    monkeypatch.setattr(StagedFiles, "path", path)
    with pytest.raises(tf_train.CheckpointSaveError) as error:
        tf_train.save_checkpoint(cfg, trainer, info["data_dir"], 10, 1.0, {}, save_model=True)
    msg = str(error.value)
    assert f"iteration 10 in {d}: Permission denied ({d}/{failing})" in msg
    assert "previous save are unchanged" in msg
    assert saved_bytes(d) == before
    assert sorted(os.listdir(d)) == names  # no temp file left


def test_files_from_two_saves_are_not_loaded_as_one_model(used_dir, tmp_path):
    """model_config.pkl records the digest of the model.keras saved with it."""
    from tf_model import PicoGPT, PicoGPTConfig

    d, before = used_dir
    info = pickle.loads(before["model_config.pkl"])
    PicoGPT(PicoGPTConfig(**info["model_args"])).save(str(tmp_path / "other.keras"))
    shutil.copy(tmp_path / "other.keras", d / "model.keras")
    with pytest.raises(DataError, match="is not the model saved with .*model_config.pkl"):
        load_checkpoint(str(d))


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_a_truncated_model_file_is_named_invalid(used_dir, cut):
    d, before = used_dir
    (d / "model.keras").write_bytes(before["model.keras"][: int(len(before["model.keras"]) * cut)])
    with pytest.raises(DataError) as info:
        load_checkpoint(str(d))
    msg = str(info.value)
    assert f"{d}/model.keras is not a valid model file" in msg and "truncated or damaged" in msg
    assert "not found" not in msg
