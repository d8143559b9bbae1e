import os
import pickle

import numpy as np
import pytest
from conftest import make_corpus

from tf_data import CharDataset, DataError


def write_nanogpt_dataset(d, tokens, vocab_size=65):
    """Exactly what nanoGPT's PyTorch prepare.py writes: raw uint16 arrays and a meta dict."""
    np.array(tokens[: len(tokens) * 9 // 10], dtype=np.uint16).tofile(d / "train.bin")
    np.array(tokens[len(tokens) * 9 // 10 :], dtype=np.uint16).tofile(d / "val.bin")
    chars = [chr(32 + i) for i in range(vocab_size)]
    meta = {
        "vocab_size": vocab_size,
        "itos": dict(enumerate(chars)),
        "stoi": {c: i for i, c in enumerate(chars)},
    }
    with open(d / "meta.pkl", "wb") as f:
        pickle.dump(meta, f)


def test_batches_are_shifted_windows_of_the_token_file(tmp_path):
    tokens = list(range(60)) * 20
    write_nanogpt_dataset(tmp_path, tokens)
    data = CharDataset(str(tmp_path), block_size=8, batch_size=4, seed=0)
    x, y = data.get_batch("train")
    assert x.shape == y.shape == (4, 8) and x.dtype == np.int32
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    np.testing.assert_array_equal((x + 1) % 60, y)  # the file counts 0..59 repeatedly


def test_same_seed_same_batches_and_rng_state_round_trip(corpus_dir):
    a = CharDataset(str(corpus_dir), 16, 4, seed=7)
    b = CharDataset(str(corpus_dir), 16, 4, seed=7)
    np.testing.assert_array_equal(a.get_batch("train")[0], b.get_batch("train")[0])
    state = a.get_rng_state()
    first = a.get_batch("val")[0]
    a.set_rng_state(state)
    np.testing.assert_array_equal(a.get_batch("val")[0], first)
    c = CharDataset(str(corpus_dir), 16, 4, seed=8)
    assert not np.array_equal(
        c.get_batch("train")[0], CharDataset(str(corpus_dir), 16, 4, seed=7).get_batch("train")[0]
    )


def test_tf_dataset_yields_the_same_stream(corpus_dir):
    data = CharDataset(str(corpus_dir), 16, 4, seed=3)
    ds = data.as_tf_dataset("train", seed=11)
    x_tf, y_tf = next(iter(ds))
    x_np, y_np = data.get_batch("train", np.random.default_rng(11))
    np.testing.assert_array_equal(x_tf.numpy(), x_np)
    np.testing.assert_array_equal(y_tf.numpy(), y_np)


def test_vocab_mismatch_is_reported(corpus_dir):
    with pytest.raises(DataError, match="vocab size mismatch.*set vocab_size="):
        CharDataset(str(corpus_dir), 16, 4, vocab_size=65)


def test_missing_dataset_names_the_prepare_command(tmp_path):
    with pytest.raises(DataError) as e:
        CharDataset(str(tmp_path), 16, 4)
    assert "meta.pkl not found" in str(e.value) and "prepare.py" in str(e.value)


def test_corrupt_meta_is_named(tmp_path):
    write_nanogpt_dataset(tmp_path, list(range(60)) * 20)
    (tmp_path / "meta.pkl").write_bytes(b"truncated")
    with pytest.raises(DataError, match="cannot read vocabulary file .*meta.pkl"):
        CharDataset(str(tmp_path), 16, 4)


def test_dataset_shorter_than_a_block_is_rejected(tmp_path):
    write_nanogpt_dataset(tmp_path, list(range(40)))
    with pytest.raises(DataError, match="fewer than block_size\\+1"):
        CharDataset(str(tmp_path), 16, 4)


def test_unknown_split(corpus_dir):
    with pytest.raises(ValueError, match="split must be one of"):
        CharDataset(str(corpus_dir), 16, 4).get_batch("test")


def test_prepare_matches_nanogpt_format(corpus_dir):
    text = (corpus_dir / "input.txt").read_text(encoding="utf-8")
    with open(corpus_dir / "meta.pkl", "rb") as f:
        meta = pickle.load(f)
    chars = sorted(set(text))
    assert meta["vocab_size"] == len(chars) and meta["itos"] == dict(enumerate(chars))
    train = np.fromfile(corpus_dir / "train.bin", dtype=np.uint16)
    val = np.fromfile(corpus_dir / "val.bin", dtype=np.uint16)
    n = len(text)
    assert len(train) == int(n * 0.9) and len(val) == n - int(n * 0.9)
    assert "".join(meta["itos"][int(i)] for i in train[:50]) == text[:50]


def test_prepare_offline_error_says_how_to_use_a_local_file(tmp_path):
    from data.shakespeare_char.prepare import PrepareError, prepare

    with pytest.raises(PrepareError) as e:
        prepare(
            None, str(tmp_path), url="http://127.0.0.1:9/input.txt"
        )  # nothing listens on port 9
    assert "could not download" in str(e.value) and "--input" in str(e.value)
    assert not any(p.name.endswith(".bin") for p in tmp_path.iterdir())


def test_prepare_missing_input_file(tmp_path):
    from data.shakespeare_char.prepare import main

    assert main(["--input", str(tmp_path / "nope.txt"), "--out_dir", str(tmp_path)]) == 1
    assert os.listdir(tmp_path) == []


def test_atomic_writes_leave_ordinary_files_and_no_temp_files(tmp_path):
    from tf_model.fileio import write_files_atomic

    umask = os.umask(0o022)
    try:
        write_files_atomic({str(tmp_path / "a.bin"): b"a", str(tmp_path / "b.bin"): b"bb"})
    finally:
        os.umask(umask)
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.bin"]
    assert (tmp_path / "b.bin").read_bytes() == b"bb"
    assert os.stat(tmp_path / "a.bin").st_mode & 0o777 == 0o644
    with pytest.raises(FileNotFoundError):
        write_files_atomic({str(tmp_path / "c.bin"): b"c", str(tmp_path / "no" / "d.bin"): b"d"})
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.bin"]  # nothing half-written


def test_windows_cover_the_split_once_in_order(tmp_path):
    tokens = list(range(60)) * 20  # val split: the last 120 tokens
    write_nanogpt_dataset(tmp_path, tokens)
    data = CharDataset(str(tmp_path), block_size=8, batch_size=4)
    batches = list(data.windows("val", batch_size=4))
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    val = np.array(tokens[len(tokens) * 9 // 10 :])
    assert x.shape == ((len(val) - 1) // 8, 8) and [len(b[0]) for b in batches][:-1] == [4] * (
        len(batches) - 1
    )
    np.testing.assert_array_equal(x.reshape(-1), val[: x.size])
    np.testing.assert_array_equal(y.reshape(-1), val[1 : x.size + 1])


def test_staged_files_roll_back_when_a_rename_fails(tmp_path, monkeypatch):
    """commit() renames file by file; if one rename fails, the files already replaced get
    their previous contents back and no temp file or backup link is left."""
    from tf_model import fileio

    for name in ("a", "b"):
        (tmp_path / name).write_bytes(b"old " + name.encode())
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # a and b are in place, c fails
            raise OSError(28, "No space left on device", dst)
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", replace)
    with pytest.raises(OSError, match="No space left"), fileio.staged_files() as stage:
        for name in ("a", "b", "c"):
            stage.write(str(tmp_path / name), b"new " + name.encode())
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]
    assert (tmp_path / "a").read_bytes() == b"old a" and (tmp_path / "b").read_bytes() == b"old b"


def test_staged_files_are_discarded_on_an_exception(tmp_path):
    from tf_model.fileio import staged_files

    (tmp_path / "a").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), staged_files() as stage:
        stage.write(str(tmp_path / "a"), b"new")
        raise KeyboardInterrupt  # Ctrl-C between staging and commit
    assert os.listdir(tmp_path) == ["a"] and (tmp_path / "a").read_bytes() == b"old"


def prepare_main(capsys, *argv):
    from data.shakespeare_char.prepare import main

    status = main(list(argv))
    return status, capsys.readouterr().err


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("input_is_a_directory", "--input {tmp} is a directory; give the text file itself"),
        ("input_unreadable", "cannot read --input {tmp}/input.txt: Permission denied"),
        ("out_dir_is_a_file", "--out_dir {tmp}/input.txt is a file, not a directory"),
        ("out_dir_unwritable", "cannot write to --out_dir {tmp}/new: Permission denied"),
        ("corpus_too_small", "validation split (the last 10%) would hold 100 tokens"),
        ("block_size_zero", "--block_size must be >= 1, got 0"),
    ],
)
def test_prepare_bad_input_is_one_message_and_leaves_nothing(
    tmp_path, capsys, monkeypatch, case, fragment
):
    from data.shakespeare_char import prepare
    from tf_model import fileio

    text = tmp_path / "input.txt"
    text.write_text(make_corpus(1000 if case == "corpus_too_small" else 5000), encoding="utf-8")
    out_dir = tmp_path / "new"
    args = ["--input", str(text), "--out_dir", str(out_dir)]
    if case == "input_is_a_directory":
        args[1] = str(tmp_path)
    elif case == "input_unreadable":  # (tests may run as root, which chmod does not stop)
        monkeypatch.setattr(prepare, "open", denied, raising=False)
    elif case == "out_dir_is_a_file":
        args[3] = str(text)
    elif case == "out_dir_unwritable":
        monkeypatch.setattr(fileio, "atomic_path", denied)
    elif case == "block_size_zero":
        args += ["--block_size", "0"]
    before = sorted(os.listdir(tmp_path))
    status, err = prepare_main(capsys, *args)
    assert status == 1
    assert err.startswith("error: ") and fragment.format(tmp=tmp_path) in err, err
    assert sorted(os.listdir(tmp_path)) == before  # no empty --out_dir left behind


def denied(path, *args, **kwargs):
    raise PermissionError(13, "Permission denied", str(path))


def test_prepare_small_corpus_with_a_smaller_block_size(tmp_path, capsys):
    text = tmp_path / "input.txt"
    text.write_text(make_corpus(1000), encoding="utf-8")
    status, err = prepare_main(
        capsys, "--input", str(text), "--out_dir", str(tmp_path / "d"), "--block_size", "64"
    )
    assert status == 0, err
    assert sorted(os.listdir(tmp_path / "d")) == ["meta.pkl", "train.bin", "val.bin"]
