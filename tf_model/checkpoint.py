"""Read what data preparation and training wrote: meta.pkl, the token splits, and a model directory.

    from tf_model.checkpoint import load_checkpoint, load_split
    ckpt = load_checkpoint("out-tf-pico-shakespeare-char")  # model, config, meta (vocabulary), data_dir
    val = load_split(ckpt.data_dir, "val", ckpt.config.block_size, "the evaluation")

The one loader for tf_data.py, tf_sample.py, tf_eval.py, the exporter and tf_train.py's resume
(plus the encoder of the resume file, so its checksum is written and checked in one place). Every
problem is a `DataError` whose message names the file, what is wrong with it and how to fix it.
"""

import hashlib
import os
import pickle
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .config import PicoGPTConfig

# A model directory (tf_train.py's out_dir) holds these files; tf_sample.py and tf_eval.py
# look in DEFAULT_OUT_DIR unless told otherwise (the name the original PicoGPT README uses).
DEFAULT_OUT_DIR = "out-tf-pico-shakespeare-char"
MODEL_FILE = "model.keras"  # the Keras model (architecture + weights)
CONFIG_FILE = "model_config.pkl"  # model_args, data_dir, iter_num, best_val_loss, train_config,
# and model_sha256: the digest of the MODEL_FILE saved with it (the two are one set)
RESUME_FILE = "ckpt.pkl"  # training state for --init_from=resume, with its own checksum
RESUME_FORMAT = 2  # 1 (no version key): the bare state dict without a checksum

TRAIN_COMMAND = "uv run python tf_train.py --config tf_config/train_pico_shakespeare_char.py"
MODEL_DIR_HINT = (
    f"A model directory is a tf_train.py out_dir ({MODEL_FILE} + {CONFIG_FILE}); "
    f"train one first: {TRAIN_COMMAND}"
)
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.join(_REPO, "data", "shakespeare_char")
PREPARE_COMMAND = "uv run python data/shakespeare_char/prepare.py --input PATH/TO/input.txt"


class DataError(Exception):
    """A dataset or model file is missing, unreadable or does not fit; the message says the fix."""


def prepare_hint(data_dir):
    """The README's prepare command, writing to `data_dir`."""
    if os.path.abspath(data_dir) == DEFAULT_DATA_DIR:
        return PREPARE_COMMAND
    return f"{PREPARE_COMMAND} --out_dir {data_dir}"


def load_pickle(path, what, fix):
    """Unpickle `path`; a missing, truncated or foreign file is a DataError naming `what`."""
    if not os.path.isfile(path):
        raise DataError(f"{path} not found; {fix}")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except OSError as e:
        raise DataError(f"cannot read {what} {path}: {e.strerror}\n{fix}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        ImportError,
        IndexError,
        TypeError,
        ValueError,
        KeyError,
        MemoryError,
    ) as e:  # truncated, foreign or incompatible pickle
        raise DataError(f"cannot read {what} {path}: {type(e).__name__}: {e}\n{fix}") from None


def load_meta(data_dir):
    """The dataset's meta.pkl (nanoGPT format): vocab_size, itos, stoi."""
    path = os.path.join(data_dir, "meta.pkl")
    fix = f"prepare the dataset first:\n    {prepare_hint(data_dir)}"
    meta = load_pickle(path, "vocabulary file", fix)
    missing = {"vocab_size", "itos", "stoi"} - set(meta if isinstance(meta, dict) else ())
    if missing:
        raise DataError(f"{path} lacks keys {sorted(missing)}; re-run {prepare_hint(data_dir)}")
    return meta


def load_split(data_dir, split, block_size, purpose):
    """The split's uint16 tokens, memory-mapped; `purpose` (e.g. "training") is for messages.

    The one length rule: a split must hold at least one (x, y) window, block_size + 1 tokens.
    """
    path = os.path.join(data_dir, f"{split}.bin")
    if not os.path.isfile(path):
        raise DataError(
            f"{path} not found ({purpose} reads it); prepare the dataset first:\n"
            f"    {prepare_hint(data_dir)}"
        )
    tokens = np.memmap(path, dtype=np.uint16, mode="r")
    if len(tokens) < block_size + 1:
        raise DataError(
            f"{path} has {len(tokens)} tokens, fewer than block_size+1 = {block_size + 1} "
            f"({purpose} needs one window); use more text or a smaller block_size"
        )
    return tokens


@dataclass
class Checkpoint:
    model_dir: str
    model: object  # the Keras PicoGPT
    config: PicoGPTConfig
    meta: dict  # meta.pkl: vocab_size, itos, stoi
    data_dir: str
    info: dict = field(default_factory=dict)  # model_config.pkl contents


def load_checkpoint(model_dir, data_dir=None) -> Checkpoint:
    """tf_train.py's out_dir (MODEL_FILE + CONFIG_FILE) and its dataset's meta.pkl.

    data_dir defaults to the dataset recorded at training time (recorded_data_dir). Every file is checked before
    TensorFlow is imported, so a wrong path fails in a second, not after the import.
    """
    keras_path = os.path.join(model_dir, MODEL_FILE)
    config_path = os.path.join(model_dir, CONFIG_FILE)
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise DataError(f"{model_dir} is a file, not a model directory. {MODEL_DIR_HINT}")
    if not os.path.isdir(model_dir):
        raise DataError(
            f"model directory not found: {model_dir} ({keras_path} not found). {MODEL_DIR_HINT}"
        )
    if not os.path.isfile(keras_path):
        raise DataError(f"{keras_path} not found; {MODEL_DIR_HINT}")
    check_model_archive(keras_path)
    info = load_pickle(config_path, "model config", MODEL_DIR_HINT)
    if not isinstance(info, dict) or "model_args" not in info:
        raise DataError(
            f"{config_path} has no 'model_args' entry (keys: "
            f"{sorted(info) if isinstance(info, dict) else type(info).__name__}); "
            f"expected the dict tf_train.py writes.\n{MODEL_DIR_HINT}"
        )
    try:
        config = PicoGPTConfig.from_dict(info["model_args"])
    except (TypeError, ValueError) as e:
        raise DataError(f"{config_path}: invalid model_args: {e}") from None
    check_model_set(keras_path, config_path, info)

    data_dir = data_dir or recorded_data_dir(info, config_path)
    meta = load_meta(data_dir)
    if meta["vocab_size"] != config.vocab_size:
        raise DataError(
            f"vocabulary mismatch: {os.path.join(data_dir, 'meta.pkl')} has vocab_size "
            f"{meta['vocab_size']} but the model was built with vocab_size {config.vocab_size} "
            f"({config_path}). Use the dataset the model was trained on (--data_dir)."
        )

    from .quiet import import_keras

    keras = import_keras()
    try:
        model = keras.models.load_model(keras_path, compile=False)
    except (
        OSError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        ImportError,
        zipfile.BadZipFile,
    ) as e:  # an archive whose config does not deserialize
        raise DataError(
            f"{keras_path} is not a valid model file: Keras cannot load it "
            f"({type(e).__name__}: {e}).\n{MODEL_DIR_HINT}"
        ) from None
    model_config = getattr(model, "config", None)
    if not isinstance(model_config, PicoGPTConfig):
        raise DataError(f"{keras_path} is not a PicoGPT model (got {type(model).__name__})")
    if model_config != config:
        diff = {
            k: (v, config.to_dict()[k])
            for k, v in model_config.to_dict().items()
            if config.to_dict()[k] != v
        }
        raise DataError(
            f"{keras_path} and {config_path} disagree (model.keras value, model_config.pkl value): "
            f"{diff}. Both files must come from the same tf_train.py run."
        )
    from .model import float32_twin

    # float32 even if the file kept a mixed policy (saved by a mixed-precision run before
    # tf_train.py stored float32 twins): sampling and evaluation must not round the weights
    return Checkpoint(model_dir, float32_twin(model), config, meta, data_dir, info)


def recorded_data_dir(info, config_path):
    """The dataset a model was trained on. model_config.pkl records it as an absolute path; a
    model copied elsewhere (the committed reference model, another machine) finds its dataset
    by name instead: data/<name> of this repository, then data/<name> under the current
    directory."""
    recorded = info.get("data_dir")
    if not recorded:
        raise DataError(
            f"{config_path} names no data_dir; pass --data_dir with the dataset directory "
            "(the one holding meta.pkl, train.bin and val.bin)"
        )
    if os.path.isdir(recorded):
        return recorded
    name = os.path.basename(os.path.normpath(recorded))
    candidates = [os.path.join(_REPO, "data", name), os.path.join(os.getcwd(), "data", name)]
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, "meta.pkl")):
            return candidate
    raise DataError(
        f"the dataset {config_path} was trained on, {recorded}, does not exist here, and "
        f"neither does {' nor '.join(dict.fromkeys(candidates))} with a meta.pkl. Prepare it:\n"
        f"    {prepare_hint(candidates[0])}\nor pass --data_dir with the dataset directory "
        "(meta.pkl, train.bin, val.bin)"
    )


def check_model_archive(path):
    """A .keras file is a zip archive: a truncated or bit-flipped one fails here with a clear
    message (Keras itself reports a damaged archive as "File not found")."""
    damage = None
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()  # checks every member's CRC
        if bad_member is not None:
            damage = f"{bad_member} fails its checksum"
    except zipfile.BadZipFile as e:
        damage = str(e)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    if damage:
        raise DataError(
            f"{path} is not a valid model file: the .keras archive is truncated or damaged "
            f"({damage}). Restore it from a copy, or retrain ({TRAIN_COMMAND}; "
            "--init_from=resume continues a run that still has its ckpt.pkl)."
        )


def check_model_set(keras_path, config_path, info):
    """model_config.pkl records the digest of the model.keras saved with it (tf_train.py saves
    both as one set); files from two different saves are refused rather than mixed."""
    expected = info.get("model_sha256")
    if expected is None:  # written by an older tf_train.py, nothing to compare
        return
    from .fileio import sha256_file

    if sha256_file(keras_path) != expected:
        raise DataError(
            f"{keras_path} is not the model saved with {config_path} (iteration "
            f"{info.get('iter_num')}): the two files come from different saves (a copied file, "
            "or a save that was cut off). Use a matching pair; resuming training "
            "(--init_from=resume) writes a new one at the next evaluation that improves."
        )


# ---- the resume file (ckpt.pkl) -------------------------------------------------------------
# A checksum guards the state: a truncated or bit-flipped file is detected on resume instead of
# training on from damaged weights.


def encode_resume_state(state: dict) -> bytes:
    payload = pickle.dumps(state)
    return pickle.dumps(
        {
            "format": RESUME_FORMAT,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "state": payload,
        }
    )


def load_resume_state(out_dir) -> dict:
    """The state tf_train.py saved in out_dir/ckpt.pkl, checked against its checksum."""
    path = os.path.join(out_dir, RESUME_FILE)
    if not os.path.isfile(path):
        raise DataError(
            f"--init_from=resume but {path} does not exist; train from scratch first "
            "(--init_from=scratch, the default)"
        )
    damaged = (
        f"{path} is damaged (truncated or corrupted) and cannot be resumed from. Restore it from "
        f"a copy, or start again from scratch with --overwrite=True; {MODEL_FILE} (the best "
        "model so far) is separate and unaffected"
    )
    wrapper = load_pickle(path, "the resume checkpoint", damaged)
    if isinstance(wrapper, dict) and "model_weights" in wrapper:
        return wrapper  # format 1, written before the checksum: it cannot be verified
    if not (
        isinstance(wrapper, dict)
        and wrapper.get("format") == RESUME_FORMAT
        and isinstance(wrapper.get("state"), bytes)
        and isinstance(wrapper.get("sha256"), str)
    ):
        raise DataError(f"{damaged} (it is not in the format tf_train.py writes)")
    if hashlib.sha256(wrapper["state"]).hexdigest() != wrapper["sha256"]:
        raise DataError(f"{damaged} (its checksum does not match its contents)")
    try:
        return pickle.loads(wrapper["state"])
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"{damaged} ({type(e).__name__}: {e})") from None
