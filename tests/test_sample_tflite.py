"""tf_sample.py --tflite: hear the exported INT8 model (the committed reference model) before flashing."""

import os

import pytest
from conftest import ROOT, run_script

REFERENCE = os.path.join(ROOT, "models", "shakespeare_char", "model_data_int8.tflite")


def sample(*extra):
    return run_script(
        "tf_sample.py", f"--tflite={REFERENCE}", "--num_samples=1", "--max_new_tokens=30", *extra
    )


def test_int8_sampling_is_reproducible_and_in_vocabulary():
    from tf_model.export.tflite_step import load_exported

    vocab = set(load_exported(REFERENCE).itos)
    a, b = sample("--start=ROMEO:", "--seed=3"), sample("--start=ROMEO:", "--seed=3")
    assert a.returncode == 0, a.stderr[-2000:]
    assert a.stdout == b.stdout
    text = a.stdout.split("---------------")[0].rstrip("\n")
    assert text.startswith("ROMEO:") and len(text) == 36 and set(text) <= vocab
    assert sample("--start=ROMEO:", "--seed=4").stdout != a.stdout


def test_int8_greedy_and_bad_inputs(tmp_path):
    g1, g2 = sample("--temperature=0", "--seed=1"), sample("--temperature=0", "--seed=2")
    assert g1.returncode == 0 and g1.stdout == g2.stdout
    r = sample("--start=ROMEO{")
    assert r.returncode == 2 and "not in the model's vocabulary" in r.stderr
    r = run_script("tf_sample.py", f"--tflite={tmp_path}/none.tflite")
    assert r.returncode == 2 and "not found" in r.stderr


@pytest.mark.parametrize(
    "make, fragment",
    [
        (
            lambda ref: ref[: len(ref) // 4],
            "is not a valid .tflite model: it is truncated or corrupt",
        ),
        (lambda ref: b"hello, not a model\n", "is not a .tflite model (no TFL3 file identifier"),
        (lambda ref: None, "cannot read {path}: Is a directory"),
    ],
)
def test_tflite_that_is_not_a_model(tmp_path, capsys, make, fragment):
    import tf_sample

    with open(REFERENCE, "rb") as f:
        data = make(f.read())
    path = tmp_path / "model.tflite"
    if data is None:
        path.mkdir()
    else:
        path.write_bytes(data)
    assert tf_sample.main([f"--tflite={path}", "--num_samples=1", "--max_new_tokens=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment.format(path=path) in err, err
    assert str(path) in err
