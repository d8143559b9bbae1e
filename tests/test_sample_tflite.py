"""tf_sample.py --tflite: hear the exported INT8 model (the committed reference model) before flashing.

The default backend is the chip's (the C runtime through tf_model/chip.py): its text is the
firmware's (tests/test_firmware.py checks binding = host CLI = firmware). LiteRT stays available
as --backend litert, not bit-exact with the chip.
"""

import os

import pytest
from conftest import ROOT, run_script

REFERENCE = os.path.join(ROOT, "models", "shakespeare_char", "model_data_int8.tflite")


def sample(*extra):
    return run_script(
        "tf_sample.py", f"--tflite={REFERENCE}", "--num_samples=1", "--max_new_tokens=30", *extra
    )


def texts(stdout):
    return [t.strip("\n") for t in stdout.split("---------------") if t.strip("\n")]


def test_int8_sampling_is_reproducible_and_in_vocabulary():
    from tf_model.chip import Chip

    vocab = set(Chip(REFERENCE).itos)
    a, b = sample("--start=ROMEO:", "--seed=3"), sample("--start=ROMEO:", "--seed=3")
    assert a.returncode == 0, a.stderr[-2000:]
    assert a.stdout == b.stdout
    text = texts(a.stdout)[0]
    assert text.startswith("ROMEO:") and len(text) == 36 and set(text) <= vocab
    assert sample("--start=ROMEO:", "--seed=4").stdout != a.stdout


def test_chip_backend_is_the_runtimes_generate_with_seed_plus_i():
    """What tf_sample prints is the C runtime's text (the firmware's) for the same arguments;
    sample i uses seed + i; past the window the policy options reach the runtime."""
    from tf_model.chip import Chip

    chip = Chip(REFERENCE)
    prompt = [chip.itos.index(ch) for ch in "KING:"]
    r = sample(
        "--start=KING:", "--seed=9", "--num_samples=2", "--max_new_tokens=200", "--top_k=20",
        "--window=exact", "--temperature=0.7",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    for i, text in enumerate(texts(r.stdout)):
        ids = chip.generate(prompt, 200, 0.7, 20, 9 + i, "exact")
        assert text == "KING:" + "".join(chip.itos[t] for t in ids)
    shift = sample("--start=KING:", "--seed=9", "--max_new_tokens=200", "--keep=10")
    ids = chip.generate(prompt, 200, 0.8, 200, 9, "shift", 10)
    assert texts(shift.stdout)[0] == "KING:" + "".join(chip.itos[t] for t in ids)


def test_litert_backend_is_explicit_and_still_runs():
    args = [
        "--backend=litert",
        "--start=ROMEO:",
        "--seed=3",
        "--max_new_tokens=140",
        "--window=exact",
    ]
    a = sample(*args)
    assert a.returncode == 0, a.stderr[-2000:]
    assert a.stdout == sample(*args).stdout
    assert len(texts(a.stdout)[0]) == 146


def test_int8_greedy_and_bad_inputs(tmp_path):
    g1, g2 = sample("--temperature=0", "--seed=1"), sample("--temperature=0", "--seed=2")
    assert g1.returncode == 0 and g1.stdout == g2.stdout
    r = sample("--start=ROMEO{")
    assert r.returncode == 2 and "not in the model's vocabulary" in r.stderr
    for backend in ("chip", "litert"):
        r = run_script("tf_sample.py", f"--tflite={tmp_path}/none.tflite", f"--backend={backend}")
        assert r.returncode == 2 and "none.tflite" in r.stderr, r.stderr
    for args, message in [
        (["--keep=128"], "keep 128 is out of range: it must be in [0, 127]"),
        (["--keep=-1"], "keep -1 is out of range"),
        (["--window=slide"], "argument --window: invalid choice: 'slide'"),
        (["--backend=tflm"], "argument --backend: invalid choice: 'tflm'"),
    ]:
        r = sample(*args)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr[-2000:])
    r = run_script("tf_sample.py", f"--out_dir={tmp_path}", "--backend=chip")
    assert r.returncode == 2 and "--backend chooses how --tflite runs" in r.stderr


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
@pytest.mark.parametrize("backend", ["chip", "litert"])
def test_tflite_that_is_not_a_model(tmp_path, capsys, make, fragment, backend):
    """Both backends check the file the same way (tflite_step.read_export) and say the same."""
    import tf_sample

    with open(REFERENCE, "rb") as f:
        data = make(f.read())
    path = tmp_path / "model.tflite"
    if data is None:
        path.mkdir()
    else:
        path.write_bytes(data)
    args = [f"--tflite={path}", "--num_samples=1", "--max_new_tokens=1", f"--backend={backend}"]
    assert tf_sample.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment.format(path=path) in err, err
    assert str(path) in err
