"""The default PicoGPT run on Tiny Shakespeare: 418,304 parameters, 8000 iterations (~45 min on 2 CPU cores)."""

out_dir = "out-shakespeare-char"
eval_interval = 500
eval_iters = 200
log_interval = 10
always_save_checkpoint = False

dataset = "shakespeare_char"
batch_size = 32
block_size = 128

n_layer = 3
n_head = 2
n_embd = 128
dropout = 0.1

learning_rate = 3e-3
max_iters = 8000
lr_decay_iters = 8000
min_lr = 3e-4
beta2 = 0.99
warmup_iters = 100
