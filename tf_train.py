"""
Train PicoGPT on a character-level dataset.

    python tf_train.py --config tf_config/train_pico_shakespeare_char.py
    python tf_train.py --config tf_config/train_pico_quick.py --max_iters=200 --out_dir=out-quick
    python tf_train.py --config tf_config/train_pico_shakespeare_char.py --init_from=resume

Writes out_dir/model.keras + out_dir/model_config.pkl (the best model so far), out_dir/ckpt.pkl
(everything needed to resume), out_dir/metrics.csv and TensorBoard events under out_dir/tb.
"""

import csv
import math
import os
import pickle
import signal
import sys
import time
from dataclasses import replace

from tf_data import CharDataset
from tf_model.checkpoint import CONFIG_FILE, DEFAULT_OUT_DIR, MODEL_FILE, DataError, load_meta
from tf_model.config import PicoGPTConfig

# -----------------------------------------------------------------------------
# default config values: a training run of the default PicoGPT on Tiny Shakespeare
# I/O
out_dir = DEFAULT_OUT_DIR  # model.keras, model_config.pkl, ckpt.pkl, metrics.csv and tb/ go here
eval_interval = 500  # evaluate train/val loss every this many iterations
log_interval = 10  # refresh the progress bar's loss every this many iterations
eval_iters = 200  # batches per split in one evaluation
eval_only = False  # evaluate once and exit
always_save_checkpoint = False  # save model.keras at every eval, not only when val improves
init_from = "scratch"  # 'scratch' or 'resume' (from out_dir/ckpt.pkl)
tensorboard = True  # write TensorBoard event files under out_dir/tb
# data
dataset = "shakespeare_char"  # directory under data/ holding train.bin, val.bin, meta.pkl
data_dir = ""  # explicit dataset directory; overrides dataset when set
batch_size = 32
# model: every field of tf_model.config.PicoGPTConfig, with its defaults (added below), except
# vocab_size, which comes from the dataset's meta.pkl
# AdamW optimizer
learning_rate = 3e-3  # peak learning rate
max_iters = 8000  # total training iterations
weight_decay = 0.1  # applied to 2-D weights only
beta1 = 0.9
beta2 = 0.99
grad_clip = 1.0  # clip gradients at this global norm; 0 disables
# learning rate schedule
decay_lr = True  # cosine decay after warmup; False keeps learning_rate constant
warmup_iters = 100
lr_decay_iters = 8000  # usually equal to max_iters
min_lr = 3e-4  # usually learning_rate / 10
# system
seed = 1337
xla = "auto"  # XLA-compile the train step: "on", "off", or "auto" (on for GPU; plain tf.function measured faster on CPU)
mixed_precision = "auto"  # 'auto' (float16 on GPU, float32 on CPU), 'float16' or 'float32'
# -----------------------------------------------------------------------------
MODEL_DEFAULTS = {k: v for k, v in PicoGPTConfig().to_dict().items() if k != "vocab_size"}
DEFAULTS = {
    **{
        k: v
        for k, v in dict(globals()).items()
        if not k.startswith("_") and isinstance(v, (int, float, bool, str))
    },
    **MODEL_DEFAULTS,
}
HERE = os.path.dirname(os.path.abspath(__file__))


class TrainError(Exception):
    pass


def resolve_data_dir(cfg):
    return cfg["data_dir"] or os.path.join(HERE, "data", cfg["dataset"])


def build_optimizer(cfg, keras):
    optimizer = keras.optimizers.AdamW(
        learning_rate=cfg["learning_rate"],
        weight_decay=cfg["weight_decay"],
        beta_1=cfg["beta1"],
        beta_2=cfg["beta2"],
        epsilon=1e-8,  # PyTorch's default, which the reference run used
        global_clipnorm=cfg["grad_clip"] or None,
    )
    optimizer.exclude_from_weight_decay(var_names=["gamma"])  # decay 2-D weights only, like nanoGPT
    return optimizer


class Trainer:
    """Owns the model, optimizer and compiled steps; knows nothing about files or progress bars."""

    def __init__(self, cfg, model_config, use_float16, use_xla):
        import keras
        import tensorflow as tf

        from tf_model import PicoGPT

        self.tf = tf
        if use_float16:
            keras.mixed_precision.set_global_policy("mixed_float16")
        self.model = PicoGPT(model_config)
        optimizer = build_optimizer(cfg, keras)
        if use_float16:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        self.optimizer = optimizer
        self.optimizer.build(self.model.trainable_variables)
        self.train_step = tf.function(self._train_step, jit_compile=use_xla, reduce_retracing=True)
        self.eval_step = tf.function(self._eval_step, jit_compile=use_xla, reduce_retracing=True)

    def _loss(self, x, y, training):
        tf = self.tf
        logits = tf.cast(self.model(x, training=training), tf.float32)  # (B, T, V)
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )

    def _train_step(self, x, y):
        tf = self.tf
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss = self._loss(x, y, training=True)
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return loss

    def _eval_step(self, x, y):
        return self._loss(x, y, training=False)

    def set_lr(self, lr):
        self.optimizer.learning_rate = lr

    def state(self):
        return {
            "model_weights": [v.numpy() for v in self.model.weights],
            "optimizer_variables": [v.numpy() for v in self.optimizer.variables],
        }

    def load_state(self, state):
        weights, opt_vars = state["model_weights"], state["optimizer_variables"]
        if len(weights) != len(self.model.weights) or len(opt_vars) != len(
            self.optimizer.variables
        ):
            raise TrainError(
                "the checkpoint does not match this model/optimizer; was the config changed?"
            )
        for v, value in zip(self.model.weights, weights):
            v.assign(value)
        for v, value in zip(self.optimizer.variables, opt_vars):
            v.assign(value)


def estimate_loss(trainer, data, eval_iters, rng):
    """Mean loss over eval_iters batches of each split, from an RNG separate from training's."""
    out = {}
    for split in ("train", "val"):
        total = 0.0
        for _ in range(eval_iters):
            x, y = data.get_batch(split, rng)
            total += float(trainer.eval_step(x, y))
        out[split] = total / eval_iters
    return out


def save_checkpoint(cfg, trainer, data_dir, iter_num, best_val_loss, data_rng_state, save_model):
    """Resume state always; model.keras + model_config.pkl when save_model. Every file atomically."""
    from tf_model.fileio import atomic_path, write_atomic

    out_dir = cfg["out_dir"]
    model_config = {
        "model_args": trainer.model.config.to_dict(),
        "data_dir": os.path.abspath(data_dir),
        "iter_num": iter_num,
        "best_val_loss": best_val_loss,
        "train_config": cfg,
    }
    written = []
    if save_model:
        model_path = os.path.join(out_dir, MODEL_FILE)
        tmp = atomic_path(model_path)
        try:
            trainer.model.save(tmp)
            os.replace(tmp, model_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        config_path = os.path.join(out_dir, CONFIG_FILE)
        write_atomic(config_path, pickle.dumps(model_config))
        written += [model_path, config_path]
    state = {**model_config, **trainer.state(), "data_rng_state": data_rng_state}
    write_atomic(os.path.join(out_dir, "ckpt.pkl"), pickle.dumps(state))
    written.append(os.path.join(out_dir, "ckpt.pkl"))
    return written


def load_resume_state(out_dir):
    path = os.path.join(out_dir, "ckpt.pkl")
    if not os.path.exists(path):
        raise TrainError(
            f"init_from='resume' but {path} does not exist; train from scratch first (init_from='scratch')"
        )
    with open(path, "rb") as f:
        return pickle.load(f)


def main(argv):
    from tf_model.configurator import apply_config
    from tf_model.schedule import get_lr

    cfg = apply_config(DEFAULTS, argv)
    if cfg["init_from"] not in ("scratch", "resume"):
        raise TrainError(f"init_from must be 'scratch' or 'resume', got {cfg['init_from']!r}")
    if cfg["xla"] not in ("auto", "on", "off"):
        raise TrainError(f"xla must be 'auto', 'on' or 'off', got {cfg['xla']!r}")
    if cfg["mixed_precision"] not in ("auto", "float16", "float32"):
        raise TrainError(
            f"mixed_precision must be 'auto', 'float16' or 'float32', got {cfg['mixed_precision']!r}"
        )
    data_dir = resolve_data_dir(cfg)
    resume = load_resume_state(cfg["out_dir"]) if cfg["init_from"] == "resume" else None
    if resume is not None:
        # the model shape comes from the checkpoint; the command line may only change the schedule
        model_config = PicoGPTConfig.from_dict(resume["model_args"])
        cfg.update({k: getattr(model_config, k) for k in MODEL_DEFAULTS})
    else:
        # built before any file is read: a config error beats a missing dataset
        model_config = PicoGPTConfig(**{k: cfg[k] for k in MODEL_DEFAULTS})
        model_config = replace(model_config, vocab_size=load_meta(data_dir)["vocab_size"])
    data = CharDataset(
        data_dir, model_config.block_size, cfg["batch_size"], cfg["seed"], model_config.vocab_size
    )

    import keras
    import numpy as np
    import tensorflow as tf
    from tqdm import tqdm

    from tf_model import count_params

    keras.utils.set_random_seed(cfg["seed"])
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    use_float16 = cfg["mixed_precision"] == "float16" or (
        cfg["mixed_precision"] == "auto" and has_gpu
    )
    use_xla = cfg["xla"] == "on" or (cfg["xla"] == "auto" and has_gpu)
    trainer = Trainer(cfg, model_config, use_float16, use_xla)
    iter_num, best_val_loss = 0, float("inf")
    if resume is not None:
        trainer.load_state(resume)
        data.set_rng_state(resume["data_rng_state"])
        iter_num, best_val_loss = resume["iter_num"], resume["best_val_loss"]
        print(
            f"resuming from {cfg['out_dir']}/ckpt.pkl at iteration {iter_num} (best val {best_val_loss:.4f})"
        )
    os.makedirs(cfg["out_dir"], exist_ok=True)
    print(
        f"PicoGPT {count_params(trainer.model):,} parameters | {model_config} | "
        f"{'float16 mixed' if use_float16 else 'float32'} on {'GPU' if has_gpu else 'CPU'} | XLA {'on' if use_xla else 'off'}"
    )

    eval_rng = np.random.default_rng(cfg["seed"] + 1)
    csv_path = os.path.join(cfg["out_dir"], "metrics.csv")
    new_csv = not os.path.exists(csv_path) or cfg["init_from"] == "scratch"
    csv_file = open(csv_path, "w" if new_csv else "a", newline="")  # noqa: SIM115 (closed in the finally below)
    csv_writer = csv.writer(csv_file)
    if new_csv:
        csv_writer.writerow(["iter", "train_loss", "val_loss", "lr", "elapsed_s"])
    tb = (
        tf.summary.create_file_writer(os.path.join(cfg["out_dir"], "tb"))
        if cfg["tensorboard"]
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

    def checkpoint(save_model):
        paths = save_checkpoint(
            cfg, trainer, data_dir, iter_num, best_val_loss, data.get_rng_state(), save_model
        )
        written.update(dict.fromkeys(paths))

    previous_handler = signal.signal(signal.SIGINT, on_sigint)
    status = 0
    t_start = time.time()
    tokens_per_iter = cfg["batch_size"] * model_config.block_size
    bar = tqdm(
        total=cfg["max_iters"], initial=iter_num, unit="it", dynamic_ncols=True, disable=None
    )
    last_loss, t_iter = float("nan"), time.time()
    try:
        while True:
            lr = lr_at(iter_num)
            trainer.set_lr(lr)
            due = (
                iter_num % cfg["eval_interval"] == 0
                or iter_num == cfg["max_iters"]
                or cfg["eval_only"]
            )
            if due and not (
                resume is not None and iter_num == resume["iter_num"]
            ):  # resumed: already evaluated
                losses = estimate_loss(trainer, data, cfg["eval_iters"], eval_rng)
                elapsed = time.time() - t_start
                bar.write(
                    f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}, lr {lr:.2e}"
                )
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
                improved = losses["val"] < best_val_loss
                best_val_loss = min(best_val_loss, losses["val"])
                if iter_num > 0 and not cfg["eval_only"]:
                    checkpoint(save_model=improved or cfg["always_save_checkpoint"])
                t_iter = time.time()
            if cfg["eval_only"] or iter_num >= cfg["max_iters"]:
                break
            if interrupted:
                checkpoint(save_model=False)
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
                if tb is not None:
                    with tb.as_default(step=iter_num):
                        tf.summary.scalar("train/loss", loss)
                        tf.summary.scalar("train/lr", lr)
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous_handler)
        csv_file.close()
        if tb is not None:
            tb.close()
    elapsed = time.time() - t_start
    print(
        f"done: {iter_num} iterations in {elapsed / 60:.1f} min, best val loss {best_val_loss:.4f}, last train loss {last_loss:.4f}"
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
