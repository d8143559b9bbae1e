"""
Train PicoGPT on a character-level dataset.

    uv run python tf_train.py --config tf_config/train_pico_shakespeare_char.py
    uv run python tf_train.py --config tf_config/train_pico_quick.py --max_iters=200 --out_dir=out-quick
    uv run python tf_train.py --config tf_config/train_pico_shakespeare_char.py --init_from=resume
    uv run python tf_train.py --config tf_config/qat_pico_shakespeare_char.py   # int8 fine-tuning

Writes out_dir/model.keras + out_dir/model_config.pkl (the best model so far), out_dir/ckpt.pkl
(everything needed to resume), out_dir/metrics.csv and TensorBoard events under out_dir/tb.
Settings come from a config file (plain `name = value` lines) and `--name=value` overrides;
every setting, its default and its meaning are listed below.
"""

import csv
import io
import math
import os
import pickle
import signal
import sys
import time
from dataclasses import replace

from tf_data import CharDataset
from tf_model.checkpoint import (
    CONFIG_FILE,
    DEFAULT_OUT_DIR,
    MODEL_FILE,
    RESUME_FILE,
    DataError,
    encode_resume_state,
    load_meta,
    load_resume_state,
)
from tf_model.config import PicoGPTConfig
from tf_model.trainer import Trainer, TrainError, cpu_has_bfloat16, estimate_loss

_NOT_CONFIG = set(globals())
# -----------------------------------------------------------------------------
# default config values: a training run of the default PicoGPT on Tiny Shakespeare
# I/O
out_dir = DEFAULT_OUT_DIR  # model.keras, model_config.pkl, ckpt.pkl, metrics.csv and tb/ go here
eval_interval = 500  # evaluate train/val loss every this many iterations
log_interval = 10  # measure loss and ms/iter every this many iterations
eval_iters = 200  # batches per split in one evaluation
eval_only = False  # evaluate once, print the losses and exit without writing anything
always_save_checkpoint = False  # save model.keras at every eval, not only when val improves
init_from = "scratch"  # 'scratch', 'resume' (out_dir/ckpt.pkl) or a trained out_dir to start from
overwrite = False  # let init_from='scratch' replace another run's checkpoint in out_dir
tensorboard = True  # write TensorBoard event files under out_dir/tb
progress_interval = 60.0  # seconds between progress lines when stdout is not a terminal
verbose = False  # show TensorFlow's C++ start-up log (oneDNN notice, CUDA probing)
# data
dataset = "shakespeare_char"  # directory under data/ holding train.bin, val.bin, meta.pkl
data_dir = ""  # explicit dataset directory; overrides dataset when set
batch_size = 32  # windows of block_size characters per training step
# model: every field of tf_model.config.PicoGPTConfig, with its defaults (added below), except
# vocab_size, which comes from the dataset's meta.pkl
# AdamW optimizer
learning_rate = 3e-3  # peak learning rate
max_iters = 8000  # total training iterations
weight_decay = 0.1  # applied to 2-D weights only
beta1 = 0.9  # AdamW's first-moment decay
beta2 = 0.99  # AdamW's second-moment decay (0.99: a small model sees few tokens per step)
grad_clip = 1.0  # clip gradients at this global norm; 0 disables
# learning rate schedule
decay_lr = True  # cosine decay after warmup; False keeps learning_rate constant
warmup_iters = 100  # linear warmup from 0 to learning_rate over this many iterations
lr_decay_iters = 8000  # usually equal to max_iters
min_lr = 3e-4  # usually learning_rate / 10
# system
seed = 1337  # model initialisation and batch sampling; the same seed gives the same run
xla = "auto"  # XLA-compile the train step: "on", "off", or "auto" (on for GPU; plain tf.function measured faster on CPU)
mixed_precision = "auto"  # 'auto' (float16 on GPU, float32 on CPU), 'float16', 'bfloat16' (fast on CPUs with AVX-512 BF16 or AMX) or 'float32'
# quantization-aware fine-tuning (docs/export.md): init_from=DIR of a trained model, or resume
qat = False  # train through the int8 step model's rounding (fake quantization, tf_model/qat.py)
qat_ranges = "percentile"  # how the int8 activation ranges are chosen (tf_model/quant_ranges.py)
qat_calibration_windows = 8  # training windows the starting ranges are observed on
qat_consistency = 1.0  # weight of KL(float || int8) in the QAT loss (0: int8 cross-entropy only)
qat_margin = 0.3  # nats: penalize float top-1/top-2 logit gaps below this (0: off)
# -----------------------------------------------------------------------------
TRAIN_DEFAULTS = {k: v for k, v in globals().items() if k not in _NOT_CONFIG and k[0] != "_"}
MODEL_DEFAULTS = {k: v for k, v in PicoGPTConfig().to_dict().items() if k != "vocab_size"}
DEFAULTS = {**TRAIN_DEFAULTS, **MODEL_DEFAULTS}
HERE = os.path.dirname(os.path.abspath(__file__))
SAVED_SET = (MODEL_FILE, CONFIG_FILE, RESUME_FILE)  # what tf_train.py saves in out_dir
TRAIN_SCRIPT = "uv run python tf_train.py"


def usage():
    from tf_model.configurator import default_comments, format_usage

    comments = {
        **default_comments(os.path.join(HERE, "tf_model", "config.py")),
        **default_comments(os.path.abspath(__file__)),
    }
    sections = [
        ("training settings (defaults from tf_train.py)", TRAIN_DEFAULTS),
        ("model settings (defaults from tf_model/config.py, PicoGPTConfig)", MODEL_DEFAULTS),
    ]
    return f"usage: {TRAIN_SCRIPT} [--config FILE] [--name=value ...]\n{__doc__}\n" + format_usage(
        sections, comments
    )


def check_settings(cfg):
    """Ranges the config types cannot express; the model's own fields are PicoGPTConfig's job."""
    from tf_model.quant_ranges import POLICIES

    if cfg["init_from"] not in ("scratch", "resume") and not os.path.isdir(cfg["init_from"]):
        raise TrainError(
            f"--init_from must be 'scratch', 'resume' or a tf_train.py out_dir to start from; "
            f"{cfg['init_from']!r} is not a directory"
        )
    if cfg["qat"] and cfg["init_from"] == "scratch":
        raise TrainError(
            "--qat=True fine-tunes a trained model: pass --init_from=DIR with the out_dir of a "
            "finished float run (model.keras + model_config.pkl), or --init_from=resume to "
            "continue an interrupted QAT run"
        )
    if cfg["qat"] and cfg["mixed_precision"] in ("float16", "bfloat16"):
        raise TrainError(
            f"--qat=True needs float32: int8 steps of small ranges are below "
            f"{cfg['mixed_precision']}'s resolution. Use --mixed_precision=auto or float32."
        )
    choices = {
        "xla": ("auto", "on", "off"),
        "mixed_precision": ("auto", "float16", "bfloat16", "float32"),
        "qat_ranges": POLICIES,
    }
    for key, allowed in choices.items():
        if cfg[key] not in allowed:
            raise TrainError(f"--{key} must be one of {allowed}, got {cfg[key]!r}")
    at_least = {
        "batch_size": 1,
        "eval_interval": 1,
        "eval_iters": 1,
        "log_interval": 1,
        "max_iters": 0,
        "warmup_iters": 0,
        "lr_decay_iters": 0,
        "qat_calibration_windows": 1,
    }
    for key, low in at_least.items():
        if cfg[key] < low:
            raise TrainError(f"--{key} must be >= {low}, got {cfg[key]}")
    for key in (
        "learning_rate",
        "min_lr",
        "weight_decay",
        "grad_clip",
        "progress_interval",
        "qat_consistency",
        "qat_margin",
    ):
        value = cfg[key]
        if not math.isfinite(value) or value < 0 or (key == "learning_rate" and value == 0):
            bound = "> 0" if key == "learning_rate" else ">= 0"
            raise TrainError(f"--{key} must be a finite number {bound}, got {value}")
    for key in ("beta1", "beta2"):
        if not 0 <= cfg[key] < 1:
            raise TrainError(f"--{key} must be in [0, 1), got {cfg[key]}")


def check_out_dir(cfg):
    """Before anything slow: out_dir must be a directory (or creatable), and training from
    scratch must not silently replace another run's checkpoint."""
    out = cfg["out_dir"]
    if os.path.exists(out) and not os.path.isdir(out):
        raise TrainError(
            f"--out_dir {out} is a file, not a directory; choose another --out_dir "
            "(training writes several files into it)"
        )
    if cfg["init_from"] == "resume" or cfg["eval_only"] or cfg["overwrite"]:
        return
    if cfg["init_from"] != "scratch" and os.path.abspath(cfg["init_from"]) == os.path.abspath(out):
        raise TrainError(
            f"--init_from and --out_dir are both {out}: the fine-tuned model would overwrite the "
            "one it starts from. Pass a new --out_dir."
        )
    existing = [name for name in SAVED_SET if os.path.exists(os.path.join(out, name))]
    if existing:
        how = "from scratch" if cfg["init_from"] == "scratch" else f"from {cfg['init_from']}"
        raise TrainError(
            f"{out} already holds a training run ({', '.join(existing)}); training {how} "
            f"would replace it. Continue that run with --init_from=resume, train into another "
            f"--out_dir, or pass --overwrite=True to replace it."
        )


def resolve_data_dir(cfg):
    return cfg["data_dir"] or os.path.join(HERE, "data", cfg["dataset"])


def settings_that_differ(cfg, sources, saved):
    """Model settings given on the command line or in a config file that differ from a saved
    model's config (the saved weights have the saved shape), each as 'key=value (from ...)'."""
    return [
        f"{key}={cfg[key]!r} (from {sources[key]}; the checkpoint has {key}={getattr(saved, key)!r})"
        for key in MODEL_DEFAULTS
        if key in sources and cfg[key] != getattr(saved, key)
    ]


def resumed_model_config(cfg, sources, resume):
    """The model saved in ckpt.pkl; settings given for it must agree (settings_that_differ)."""
    saved = PicoGPTConfig.from_dict(resume["model_args"])
    differ = settings_that_differ(cfg, sources, saved)
    if differ:
        raise TrainError(
            f"--init_from=resume continues the model in {os.path.join(cfg['out_dir'], RESUME_FILE)}"
            f", but these model settings differ from it: {'; '.join(differ)}. Drop them to resume "
            "(the model settings come from the checkpoint), or train the new shape from scratch "
            "into another --out_dir."
        )
    if resume["iter_num"] >= cfg["max_iters"] and not cfg["eval_only"]:
        raise TrainError(
            f"{os.path.join(cfg['out_dir'], RESUME_FILE)} is at iteration {resume['iter_num']}, "
            f"and max_iters is {cfg['max_iters']}: nothing left to train. Raise --max_iters "
            "(and --lr_decay_iters) to continue."
        )
    return saved


def init_checkpoint(cfg, sources, data_dir):
    """The trained model --init_from=DIR names, checked against this run's dataset; model
    settings given on the command line or in a config file must agree with it."""
    from tf_model.checkpoint import load_checkpoint

    init_dir = cfg["init_from"]
    try:
        checkpoint = load_checkpoint(init_dir, data_dir)
    except DataError as e:
        raise TrainError(f"--init_from={init_dir}: {e}") from None
    differ = settings_that_differ(cfg, sources, checkpoint.config)
    if differ:
        raise TrainError(
            f"--init_from={init_dir} holds a model of another config: {'; '.join(differ)}. "
            "Drop these settings (the model settings come from the checkpoint), or start from "
            "a checkpoint trained with them."
        )
    return checkpoint


def initial_quant_ranges(cfg, model, data):
    """The int8 ranges a QAT run starts from: observed by the float model on training windows."""
    from tf_model.export.calibration import sample_windows
    from tf_model.qat import point_names
    from tf_model.quant_ranges import choose_ranges, observe

    windows = sample_windows(
        data.tokens["train"], cfg["qat_calibration_windows"], model.config.block_size, cfg["seed"]
    )
    return choose_ranges(observe(model, windows), cfg["qat_ranges"], point_names(model.config))


class CheckpointSaveError(TrainError):
    pass


def save_checkpoint(cfg, trainer, data_dir, iter_num, best_val_loss, data_rng_state, save_model):
    """Resume state always; model.keras + model_config.pkl too when save_model.

    The files are staged beside their targets and renamed in together (tf_model.fileio), so
    out_dir always holds one complete set: a full disk or a permission error mid-save leaves the
    previous set as it was and no temp file behind. model_config.pkl records the digest of the
    model.keras saved with it, and the loader checks it."""
    from tf_model.fileio import sha256_file, staged_files
    from tf_model.model import float32_twin

    out = cfg["out_dir"]
    paths = {name: os.path.join(out, name) for name in SAVED_SET}
    model_config = {
        "model_args": trainer.model.config.to_dict(),
        "data_dir": os.path.abspath(data_dir),
        "iter_num": iter_num,
        "best_val_loss": best_val_loss,
        "train_config": cfg,
    }
    if trainer.quant_ranges() is not None:  # the int8 ranges the exporter uses (--ranges auto)
        model_config["quant_ranges"] = trainer.quant_ranges()
    try:
        with staged_files() as stage:
            if save_model:
                model_tmp = stage.path(paths[MODEL_FILE])
                float32_twin(trainer.model).save(model_tmp)  # loads as a float32 model
                manifest = {**model_config, "model_sha256": sha256_file(model_tmp)}
                stage.write(paths[CONFIG_FILE], pickle.dumps(manifest))
            state = {**model_config, **trainer.state(), "data_rng_state": data_rng_state}
            stage.write(paths[RESUME_FILE], encode_resume_state(state))
    except OSError as e:
        reason = e.strerror or str(e)
        raise CheckpointSaveError(
            f"could not save the checkpoint of iteration {iter_num} in {out}: {reason}"
            f"{f' ({e.filename})' if e.filename else ''}. The files of the previous save are "
            "unchanged and no temp file is left. Free some disk space or fix the directory's "
            "permissions, then continue with --init_from=resume."
        ) from None
    return [paths[MODEL_FILE], paths[CONFIG_FILE]] * save_model + [paths[RESUME_FILE]]


METRICS_HEADER = ["iter", "train_loss", "val_loss", "lr", "elapsed_s"]


def open_metrics(path, resume_iter):
    """metrics.csv for appending. From scratch it starts empty; on resume, rows after the
    checkpoint's iteration (from a run that stopped before it saved again) are dropped, so
    the log has each iteration once."""
    from tf_model.fileio import write_atomic

    if resume_iter is None or not os.path.isfile(path):
        write_atomic(path, (",".join(METRICS_HEADER) + "\r\n").encode())
    else:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        kept = [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) <= resume_iter]
        text = io.StringIO()
        csv.writer(text).writerows([METRICS_HEADER, *kept])
        write_atomic(path, text.getvalue().encode())
    return open(path, "a", newline="")  # closed by main


def format_minutes(seconds):
    return f"{seconds / 60:.1f} min"


def main(argv):
    if not argv or any(arg in ("-h", "--help") for arg in argv):
        print(usage())
        return 0
    from tf_model.configurator import read_config
    from tf_model.schedule import get_lr

    cfg, sources = read_config(DEFAULTS, argv)
    check_settings(cfg)
    if cfg["init_from"] == "scratch":
        # built before any file is read: a config error beats a missing dataset
        model_config = PicoGPTConfig(**{k: cfg[k] for k in MODEL_DEFAULTS})
    check_out_dir(cfg)
    data_dir = resolve_data_dir(cfg)
    resume = load_resume_state(cfg["out_dir"]) if cfg["init_from"] == "resume" else None
    init = None  # --init_from=DIR: the trained model this run starts from
    if resume is not None and ("quant_ranges" in resume) != cfg["qat"]:
        was_qat = "quant_ranges" in resume
        raise TrainError(
            f"{os.path.join(cfg['out_dir'], RESUME_FILE)} is {'a' if was_qat else 'not a'} QAT "
            f"run; resume it with --qat={was_qat}"
        )
    if resume is not None:
        model_config = resumed_model_config(cfg, sources, resume)
        cfg.update({k: getattr(model_config, k) for k in MODEL_DEFAULTS})
    elif cfg["init_from"] != "scratch":
        init = init_checkpoint(cfg, sources, data_dir)
        model_config = init.config
        cfg.update({k: getattr(model_config, k) for k in MODEL_DEFAULTS})
    else:
        model_config = replace(model_config, vocab_size=load_meta(data_dir)["vocab_size"])
    data = CharDataset(
        data_dir, model_config.block_size, cfg["batch_size"], cfg["seed"], model_config.vocab_size
    )
    if not cfg["eval_only"]:
        try:
            os.makedirs(cfg["out_dir"], exist_ok=True)
        except OSError as e:
            raise TrainError(f"cannot create --out_dir {cfg['out_dir']}: {e.strerror}") from None

    from tf_model.quiet import import_keras

    keras = import_keras(verbose=cfg["verbose"])
    import numpy as np
    import tensorflow as tf
    from tqdm import tqdm

    from tf_model import count_params

    keras.utils.set_random_seed(cfg["seed"])
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    precision = cfg["mixed_precision"]
    if precision == "auto":
        precision = "float16" if has_gpu and not cfg["qat"] else "float32"
    if precision == "bfloat16" and not has_gpu and not cpu_has_bfloat16():
        print(
            "note: --mixed_precision=bfloat16 on a CPU without AVX-512 BF16 or AMX: its bfloat16 "
            "matmuls are emulated and likely slower than float32 (--mixed_precision=auto)"
        )
    use_xla = cfg["xla"] == "on" or (cfg["xla"] == "auto" and has_gpu)
    quant_ranges = None
    if resume is not None:
        quant_ranges = resume.get("quant_ranges")
    elif cfg["qat"]:
        quant_ranges = initial_quant_ranges(cfg, init.model, data)
    trainer = Trainer(cfg, model_config, precision, use_xla, quant_ranges)
    iter_num, best_val_loss = 0, float("inf")
    if init is not None:
        for variable, value in zip(trainer.model.weights, init.model.weights):
            variable.assign(value)
        print(
            f"starting from {os.path.join(cfg['init_from'], MODEL_FILE)}"
            + (f" with int8 fake quantization ({cfg['qat_ranges']} ranges)" if cfg["qat"] else "")
        )
    if resume is not None:
        trainer.load_state(resume)
        data.set_rng_state(resume["data_rng_state"])
        iter_num, best_val_loss = resume["iter_num"], resume["best_val_loss"]
        print(
            f"resuming from {cfg['out_dir']}/{RESUME_FILE} at iteration {iter_num} (best val {best_val_loss:.4f})"
        )
    start_iter = iter_num
    print(
        f"PicoGPT {count_params(trainer.model):,} parameters | {model_config} | "
        f"{precision if precision == 'float32' else precision + ' mixed'} on {'GPU' if has_gpu else 'CPU'} | XLA {'on' if use_xla else 'off'}"
    )

    eval_rng = np.random.default_rng(cfg["seed"] + 1)
    csv_path = os.path.join(cfg["out_dir"], "metrics.csv")
    csv_file, csv_writer = None, None  # eval_only writes nothing
    if not cfg["eval_only"]:
        csv_file = open_metrics(csv_path, iter_num if resume is not None else None)
        csv_writer = csv.writer(csv_file)
    tb = (
        tf.summary.create_file_writer(os.path.join(cfg["out_dir"], "tb"))
        if cfg["tensorboard"] and not cfg["eval_only"]
        else None
    )

    def lr_at(it):
        if not cfg["decay_lr"]:
            return cfg["learning_rate"]
        return get_lr(
            it, cfg["learning_rate"], cfg["warmup_iters"], cfg["lr_decay_iters"], cfg["min_lr"]
        )

    interrupted = False

    def on_sigint(signum, frame):
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt  # a second Ctrl-C stops right away
        interrupted = True

    written = {}  # every file written in this run, in order (a dict keeps insertion order)
    # a scratch run saves its first set at iteration 0, so an interrupt always leaves a model
    model_saved = resume is not None and os.path.isfile(os.path.join(cfg["out_dir"], MODEL_FILE))

    def checkpoint(save_model):
        nonlocal model_saved
        paths = save_checkpoint(
            cfg, trainer, data_dir, iter_num, best_val_loss, data.get_rng_state(), save_model
        )
        written.update(dict.fromkeys(paths))
        model_saved = model_saved or save_model

    previous_handler = signal.signal(signal.SIGINT, on_sigint)
    status = 0
    t_start = time.time()
    tokens_per_iter = cfg["batch_size"] * model_config.block_size
    progress_lines = not sys.stdout.isatty()  # a log file or CI: lines instead of a bar
    bar = tqdm(
        total=cfg["max_iters"], initial=iter_num, unit="it", dynamic_ncols=True, disable=None
    )
    last_loss, t_iter, t_line = float("nan"), time.time(), time.time()
    try:
        while True:
            lr = lr_at(iter_num)
            trainer.set_lr(lr)
            due = (
                iter_num % cfg["eval_interval"] == 0
                or iter_num == cfg["max_iters"]
                or cfg["eval_only"]
            )
            # a resumed run evaluated its first iteration before it saved
            if due and (iter_num != start_iter or resume is None or cfg["eval_only"]):
                if progress_lines and iter_num == start_iter:
                    bar.write(
                        f"step {iter_num}: evaluating {cfg['eval_iters']} batches of train and val"
                    )
                if trainer.fake_quant is not None:
                    # the float model evaluated and saved is then exactly the int8 model's weights
                    from tf_model.qat import snap_weights

                    snap_weights(trainer.model)
                eval_bar = tqdm(
                    total=2 * cfg["eval_iters"],
                    desc=f"eval step {iter_num}",
                    leave=False,
                    dynamic_ncols=True,
                    disable=None,
                )
                losses = estimate_loss(
                    trainer,
                    data,
                    cfg["eval_iters"],
                    eval_rng,
                    progress=eval_bar.update,
                    should_stop=lambda: interrupted,
                )
                eval_bar.close()
                if losses is not None:
                    elapsed = time.time() - t_start
                    float_val = (
                        f" (float model {losses['val_float']:.4f})" if "val_float" in losses else ""
                    )
                    bar.write(
                        f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}"
                        f"{float_val}, lr {lr:.2e}"
                    )
                    if cfg["eval_only"]:
                        break
                    csv_writer.writerow(
                        [
                            iter_num,
                            f"{losses['train']:.5f}",
                            f"{losses['val']:.5f}",
                            f"{lr:.6g}",
                            f"{elapsed:.1f}",
                        ]
                    )
                    csv_file.flush()
                    if tb is not None:
                        with tb.as_default(step=iter_num):
                            tf.summary.scalar("eval/train_loss", losses["train"])
                            tf.summary.scalar("eval/val_loss", losses["val"])
                            if "val_float" in losses:
                                tf.summary.scalar("eval/val_loss_float", losses["val_float"])
                    improved = losses["val"] < best_val_loss
                    best_val_loss = min(best_val_loss, losses["val"])
                    checkpoint(save_model=improved or cfg["always_save_checkpoint"])
                    t_iter = time.time()
            if cfg["eval_only"] or iter_num >= cfg["max_iters"]:
                break
            if interrupted:
                checkpoint(save_model=not model_saved)
                bar.write(
                    f"interrupted at iteration {iter_num}: saved resume state; continue with --init_from=resume"
                )
                status = 130
                break
            x, y = data.get_batch("train")
            loss = float(trainer.train_step(x, y))
            if not math.isfinite(loss):
                bar.write(
                    f"error: loss became {loss} at iteration {iter_num}; stopping. The last good checkpoint in "
                    f"{cfg['out_dir']} is kept. Try a lower learning_rate or grad_clip, or mixed_precision='float32'."
                )
                status = 1
                break
            last_loss = loss
            iter_num += 1
            bar.update(1)
            if iter_num % cfg["log_interval"] == 0:
                now = time.time()
                dt = (now - t_iter) / cfg["log_interval"]
                t_iter = now
                bar.set_postfix_str(
                    f"loss {loss:.4f}, lr {lr:.2e}, {dt * 1000:.0f} ms/iter, {tokens_per_iter / dt:,.0f} tok/s"
                )
                if progress_lines and now - t_line >= cfg["progress_interval"]:
                    t_line = now
                    eta = format_minutes(dt * (cfg["max_iters"] - iter_num))
                    bar.write(
                        f"iter {iter_num}/{cfg['max_iters']}: loss {loss:.4f}, lr {lr:.2e}, "
                        f"{dt * 1000:.0f} ms/iter, ETA {eta} (+ evaluations)"
                    )
                if tb is not None:
                    with tb.as_default(step=iter_num):
                        tf.summary.scalar("train/loss", loss)
                        tf.summary.scalar("train/lr", lr)
    except CheckpointSaveError as e:
        bar.write(f"error: {e}", file=sys.stderr)
        status = 1
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous_handler)
        if csv_file is not None:
            csv_file.close()
        if tb is not None:
            tb.close()
    if cfg["eval_only"]:
        return status
    elapsed = time.time() - t_start
    print(
        f"{'done' if status == 0 else 'stopped'}: {iter_num - start_iter} iterations this run "
        f"(iteration {start_iter} -> {iter_num}) "
        f"in {format_minutes(elapsed)}, best val loss {best_val_loss:.4f}, "
        f"last train loss {last_loss:.4f}"
    )
    for path in [*written, csv_path]:
        print(f"wrote {path}")
    return status


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (ValueError, TrainError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(
            "interrupted: nothing more was saved; the last complete checkpoint stays as it was",
            file=sys.stderr,
        )
        sys.exit(130)
