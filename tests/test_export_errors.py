"""Bad input to the exporter (tf_convert_to_tflite.py): one clear message, exit status 2, and
nothing written. The models come from tests/conftest.py's session fixtures; test_export.py has
the conversions themselves."""

import os
import pickle
import shutil

import pytest
from test_export import cli, save_untrained_checkpoint


def convert_in_process(*args):
    """Run the CLI's main() in this process; returns the ExportError it raised."""
    import tf_convert_to_tflite
    from tf_model.export import ExportError

    with pytest.raises(ExportError) as info:
        tf_convert_to_tflite.main(["--quiet", "--no_c_arrays", *args])
    return str(info.value)


def copy_checkpoint(src, dst):
    shutil.copytree(src, dst)
    for name in os.listdir(dst):
        if name.endswith((".tflite", ".json")):
            os.unlink(os.path.join(dst, name))
    return str(dst)


def assert_nothing_written(directory, before):
    assert sorted(os.listdir(directory)) == before


@pytest.mark.parametrize("option", ["--num_calibration_samples", "--num_eval_windows"])
def test_window_counts_must_be_positive(tmp_path, option):
    msg = convert_in_process("--model_dir", str(tmp_path), option, "0")
    assert f"{option} must be >= 1, got 0" in msg


def test_missing_model_dir(tmp_path):
    msg = convert_in_process("--model_dir", str(tmp_path / "nope"))
    assert "model directory not found" in msg and "nope" in msg


@pytest.mark.parametrize("missing", ["model.keras", "model_config.pkl"])
def test_missing_checkpoint_file(trained_dir, tmp_path, missing):
    d = copy_checkpoint(trained_dir, tmp_path / "ck")
    os.unlink(os.path.join(d, missing))
    before = sorted(os.listdir(d))
    msg = convert_in_process("--model_dir", d)
    assert missing in msg and "tf_train.py" in msg
    assert_nothing_written(d, before)


@pytest.mark.parametrize(
    "name, fragment",
    [("model_config.pkl", "cannot read model config"), ("model.keras", "not a valid model file")],
)
def test_corrupt_checkpoint_file(trained_dir, tmp_path, name, fragment):
    d = copy_checkpoint(trained_dir, tmp_path / "ck")
    with open(os.path.join(d, name), "wb") as f:
        f.write(b"garbage, not a pickle or a zip")
    msg = convert_in_process("--model_dir", d)
    assert fragment in msg and name in msg


def test_config_disagrees_with_model(trained_dir, tmp_path):
    d = copy_checkpoint(trained_dir, tmp_path / "ck")
    path = os.path.join(d, "model_config.pkl")
    with open(path, "rb") as f:
        info = pickle.load(f)
    info["model_args"]["n_layer"] = 3
    with open(path, "wb") as f:
        pickle.dump(info, f)
    msg = convert_in_process("--model_dir", d)
    assert "disagree" in msg and "n_layer" in msg


def test_vocab_mismatch(trained_dir, tmp_path, data_dir):
    other = tmp_path / "data"
    other.mkdir()
    with open(os.path.join(data_dir, "meta.pkl"), "rb") as f:
        meta = pickle.load(f)
    meta = {**meta, "vocab_size": 10}
    (other / "meta.pkl").write_bytes(pickle.dumps(meta))
    msg = convert_in_process("--model_dir", trained_dir, "--data_dir", str(other))
    assert "vocabulary mismatch" in msg and "--data_dir" in msg


def test_missing_meta(trained_dir, tmp_path):
    msg = convert_in_process("--model_dir", trained_dir, "--data_dir", str(tmp_path))
    assert "meta.pkl" in msg and "not found" in msg


def partial_data_dir(data_dir, tmp_path, *names):
    """tmp_path/data with only `names` of the dataset, and an empty tmp_path/out."""
    other, out = tmp_path / "data", tmp_path / "out"
    other.mkdir()
    out.mkdir()
    for name in names:
        shutil.copy(os.path.join(data_dir, name), other / name)
    return other, out


def test_no_calibration_data(trained_dir, tmp_path, data_dir):
    other, out = partial_data_dir(data_dir, tmp_path, "meta.pkl", "val.bin")
    msg = convert_in_process("--model_dir", trained_dir, "--data_dir", str(other),
                             "--output", str(out / "m.tflite"))  # fmt: skip
    assert "calibration" in msg and "train.bin" in msg
    assert os.listdir(out) == []


def test_no_held_out_text_for_the_report(trained_dir, tmp_path, data_dir):
    other, out = partial_data_dir(data_dir, tmp_path, "meta.pkl", "train.bin")
    msg = convert_in_process("--model_dir", trained_dir, "--data_dir", str(other),
                             "--output", str(out / "m.tflite"), "--num_calibration_samples", "1")  # fmt: skip
    assert "report" in msg and "val.bin" in msg
    assert os.listdir(out) == []


@pytest.mark.parametrize("target", ["missing_dir", "is_a_directory"])
def test_unwritable_output(trained_dir, tmp_path, target):
    path = tmp_path / "no" / "such" / "m.tflite" if target == "missing_dir" else tmp_path
    msg = convert_in_process("--model_dir", trained_dir, "--output", str(path))
    assert "cannot write" in msg and str(path) in msg


def test_op_tflm_lacks_fails_and_names_it(tmp_path, data_dir):
    d = save_untrained_checkpoint(
        str(tmp_path / "gelu"), data_dir, n_layer=1, n_head=2, n_embd=32, block_size=16,
        activation="gelu", enforce_cim_limits=False,
    )  # fmt: skip
    before = sorted(os.listdir(d))
    msg = convert_in_process("--model_dir", d, "--num_calibration_samples", "1")
    assert "GELU" in msg and "TFLite Micro" in msg
    assert_nothing_written(d, before)


def test_cli_error_is_a_message_not_a_traceback(tmp_path):
    result = cli("--model_dir", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "error: model directory not found" in result.stderr
    assert "Traceback" not in result.stderr
