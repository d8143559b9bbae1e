"""The compiled train step of tf_train.py: model, AdamW, loss (and QAT's agreement terms).

    trainer = Trainer(cfg, PicoGPTConfig(...), precision="float32", use_xla=False)
    loss = trainer.train_step(x, y)          # (B, T) int32 inputs and targets
    losses = estimate_loss(trainer, data, eval_iters=200, rng=rng)

`cfg` is tf_train.py's settings dict (learning rate, betas, clipping, qat_* weights). The
Trainer knows nothing about files or progress bars; tf_train.py drives it and saves its state.

`precision` is the compute dtype of the layers: "float32"; "float16" (Keras' mixed_float16 with
dynamic loss scaling, for GPUs); or "bfloat16" (mixed_bfloat16: float32's 8-bit exponent, so no
loss scaling, for CPUs with AVX-512 BF16 or AMX, where oneDNN runs bfloat16 matmuls at twice the
float32 rate). Either mixed policy keeps the variables, LayerNorm statistics, the attention
softmax and the loss in float32.
"""

PRECISIONS = ("float32", "float16", "bfloat16")
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo's names for native bf16 math


def cpu_has_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX), from Linux's
    cpuinfo flags; True where there is no such file to read, so nothing is guessed there."""
    try:
        with open(cpuinfo) as f:
            flags = next(
                (line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []
            )
    except OSError:
        return True
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


class TrainError(Exception):
    """A training run cannot start or go on; the message says why and what to do."""


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

    def __init__(self, cfg, model_config, precision, use_xla, quant_ranges=None):
        import keras
        import tensorflow as tf

        from tf_model import PicoGPT

        self.tf = tf
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        keras.mixed_precision.set_global_policy(
            "float32" if precision == "float32" else f"mixed_{precision}"
        )
        self.model = PicoGPT(model_config)
        self.fake_quant = None  # QAT: the int8 step model's rounding around self.model's weights
        self.consistency = self.margin = 0.0
        if quant_ranges is not None:
            from tf_model.qat import FakeQuantPicoGPT

            self.fake_quant = FakeQuantPicoGPT(self.model, quant_ranges)
            self.consistency, self.margin = cfg["qat_consistency"], cfg["qat_margin"]
        optimizer = build_optimizer(cfg, keras)
        if precision == "float16":  # float16's small exponent range needs the loss scaled
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        self.optimizer = optimizer
        self.optimizer.build(self.model.trainable_variables)
        self.train_step = tf.function(self._train_step, jit_compile=use_xla, reduce_retracing=True)
        self.eval_step = tf.function(self._eval_step, jit_compile=use_xla, reduce_retracing=True)
        self.float_eval_step = tf.function(
            lambda x, y: self._loss(x, y, training=False, quantize=False), reduce_retracing=True
        )

    def _loss(self, x, y, training, quantize=True):
        tf = self.tf
        if self.fake_quant is not None and quantize:
            logits = self.fake_quant(x, training=training)  # (B, T, V), int8 rounding simulated
        else:
            logits = tf.cast(self.model(x, training=training), tf.float32)  # (B, T, V)
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )

    def _train_step(self, x, y):
        tf = self.tf
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss = self._loss(x, y, training=True)
            total = loss + self._agreement_terms(x) if self.consistency or self.margin else loss
            scaled = self.optimizer.scale_loss(total)
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return loss

    def _agreement_terms(self, x):
        """QAT terms that make the int8 model say what the float model says (eval mode, no
        dropout): qat_consistency * KL(float || int8) of the next-character distributions,
        plus the mean shortfall of the float model's top-1 over top-2 logit gap below
        qat_margin (near-ties that int8 logits, steps of ~0.1 nats, cannot order)."""
        tf = self.tf
        float_logits = self.model(x, training=False)  # (B, T, V)
        total = 0.0
        if self.consistency:
            float_logp = tf.nn.log_softmax(float_logits)
            int8_logp = tf.nn.log_softmax(self.fake_quant(x, training=False))
            kl = tf.reduce_sum(tf.exp(float_logp) * (float_logp - int8_logp), axis=-1)  # (B, T)
            total += self.consistency * tf.reduce_mean(kl)
        if self.margin:
            top2 = tf.math.top_k(float_logits, k=2).values  # (B, T, 2)
            total += tf.reduce_mean(tf.nn.relu(self.margin - (top2[..., 0] - top2[..., 1])))
        return total

    def _eval_step(self, x, y):
        return self._loss(x, y, training=False)

    def set_lr(self, lr):
        self.optimizer.learning_rate = lr

    def state(self):
        return {
            "model_weights": [v.numpy() for v in self.model.weights],
            "optimizer_variables": [v.numpy() for v in self.optimizer.variables],
        }

    def quant_ranges(self):
        """{point: (min, max)} of a QAT run (what the exporter uses), else None."""
        return None if self.fake_quant is None else self.fake_quant.get_ranges()

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


def estimate_loss(trainer, data, eval_iters, rng, progress=None, should_stop=None):
    """Mean loss over eval_iters batches of each split, from an RNG separate from training's.

    A QAT run's losses are the int8 (fake-quantized) model's; "val_float" adds the float
    model's val loss. `progress()` is called after every batch; None is returned as soon as `should_stop()` is
    true (Ctrl-C during a long evaluation)."""
    out = {}
    for split in ("train", "val"):
        total = float_total = 0.0
        for _ in range(eval_iters):
            if should_stop is not None and should_stop():
                return None
            x, y = data.get_batch(split, rng)
            total += float(trainer.eval_step(x, y))
            if trainer.fake_quant is not None and split == "val":  # QAT: the float model too
                float_total += float(trainer.float_eval_step(x, y))
            if progress is not None:
                progress()
        out[split] = total / eval_iters
        if trainer.fake_quant is not None and split == "val":
            out["val_float"] = float_total / eval_iters
    return out
