"""A first run on a laptop CPU: the same CIMv3-shaped model, a shorter context, a few minutes of training."""

out_dir = "out-pico-quick"
eval_interval = 100
eval_iters = 20
log_interval = 10

dataset = "shakespeare_char"
batch_size = 16
block_size = 64

n_layer = 3
n_head = 2
n_embd = 128
dropout = 0.0

learning_rate = 3e-3
max_iters = 500
lr_decay_iters = 500
min_lr = 3e-4
warmup_iters = 20
