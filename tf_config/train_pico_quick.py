"""A first run on a laptop CPU: the same CIMv3-shaped model, a shorter context, a few minutes of training.

Lists only what differs from tf_train.py's defaults (the default run, train_pico_shakespeare_char.py).
"""

out_dir = "out-tf-pico-quick"
eval_interval = 100
eval_iters = 20

batch_size = 16
block_size = 64
dropout = 0.0

max_iters = 500
lr_decay_iters = 500
warmup_iters = 20
