"""Quantization-aware fine-tuning of the default PicoGPT: int8 fake quantization, 1,000 iterations
from the trained float model (~35 min on 2 busy CPU cores; docs/export.md "Quantization-aware
fine-tuning"). The committed reference model was made with it:

uv run python tf_train.py --config tf_config/qat_pico_shakespeare_char.py
uv run python tf_train.py --config tf_config/qat_pico_shakespeare_char.py \
    --init_from=models/shakespeare_char/pretrain --out_dir=models/shakespeare_char --overwrite=True
"""

out_dir = "out-tf-pico-shakespeare-char-qat"
init_from = "out-tf-pico-shakespeare-char"  # the float run to start from (model.keras)
qat = True
qat_ranges = "percentile"
qat_consistency = 1.0
qat_margin = 0.3
eval_interval = 250
eval_iters = 100
always_save_checkpoint = False  # keep the iteration with the best simulated-int8 val loss
tensorboard = False

dataset = "shakespeare_char"
batch_size = 32

learning_rate = 3e-4  # a tenth of the float run's peak: fine-tuning, not retraining
max_iters = 1000
lr_decay_iters = 1000
min_lr = 3e-5
warmup_iters = 50
