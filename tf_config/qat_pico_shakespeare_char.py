"""Quantization-aware fine-tuning of the default PicoGPT: int8 fake quantization, 1000 iterations
(~10 min alone on 2 CPU cores; docs/export.md "Quantization-aware fine-tuning").

python tf_train.py --config tf_config/qat_pico_shakespeare_char.py --init_from=out-shakespeare-char
"""

out_dir = "out-shakespeare-char-qat"
init_from = "out-shakespeare-char"
qat = True
qat_ranges = "percentile"
qat_consistency = 1.0
qat_margin = 0.3
eval_interval = 250
eval_iters = 100
always_save_checkpoint = False

dataset = "shakespeare_char"
batch_size = 32

learning_rate = 3e-4
max_iters = 1000
lr_decay_iters = 1000
min_lr = 3e-5
warmup_iters = 50
