"""
Throughput of a PyTorch eager train step of the same model, the yardstick for bench_train.py.

    PYTHONPATH=. ../torchenv/bin/python bench/bench_train_torch.py
    PYTHONPATH=. ../torchenv/bin/python bench/bench_train_torch.py --iters 30 --threads 2

PyTorch is not a dependency of this project: install it into a venv of its own, outside the
repository, and run this script with that venv's python (PYTHONPATH=. lets it read the model and
optimizer settings from tf_model/config.py and tf_train.py, which import neither TensorFlow nor
PyTorch):

    python3 -m venv ../torchenv && ../torchenv/bin/pip install torch numpy

The model is PicoGPT written again in PyTorch, op for op: learned token and position embeddings,
post-norm blocks (x + attn, x + mlp, then LayerNorm without bias), one combined QKV projection, q
scaled before QK^T, a causal mask filled with -1e4 by hand, softmax, dropout on the attention
weights and every residual branch, a 2x ReLU MLP, logits tied to the token embedding. The step
is forward, cross-entropy, backward, global-norm clipping and AdamW (decay on 2-D weights only),
with the settings of tf_train.py. Prints a table and, last, `N ms/iter` (the median).
"""

import argparse
import math
import os
import platform
import sys
import time

INSTALL_HINT = (
    "bench_train_torch.py needs PyTorch, which is not a dependency of this project. Install it "
    "into a venv of its own and run the script with that venv's python:\n"
    "    python3 -m venv ../torchenv && ../torchenv/bin/pip install torch numpy\n"
    "    PYTHONPATH=. ../torchenv/bin/python bench/bench_train_torch.py"
)


def build_model(torch, config):
    nn, F = torch.nn, torch.nn.functional
    C, nh, hs = config.n_embd, config.n_head, config.n_embd // config.n_head

    class LayerNormNoBias(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(C))

        def forward(self, x):
            return F.layer_norm(x, (C,), self.weight, None, 1e-5)

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(C, 3 * C, bias=False)
            self.c_proj = nn.Linear(C, C, bias=False)
            self.attn_dropout = nn.Dropout(config.dropout)
            self.resid_dropout = nn.Dropout(config.dropout)
            T = config.block_size
            self.register_buffer("causal", torch.tril(torch.ones(T, T, dtype=torch.bool)))

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
            q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
            q = q * (1.0 / math.sqrt(hs))
            att = q @ k.transpose(-2, -1)  # (B, nh, T, T)
            att = att.masked_fill(~self.causal[:T, :T], -1e4)
            att = self.attn_dropout(F.softmax(att, dim=-1))
            y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
            return self.resid_dropout(self.c_proj(y))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(C, 2 * C, bias=False)
            self.c_proj = nn.Linear(2 * C, C, bias=False)
            self.dropout = nn.Dropout(config.dropout)

        def forward(self, x):
            return self.dropout(self.c_proj(F.relu(self.c_fc(x))))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn, self.mlp, self.ln_2 = CausalSelfAttention(), MLP(), LayerNormNoBias()

        def forward(self, x):
            x = x + self.attn(x)
            x = x + self.mlp(x)
            return self.ln_2(x)

    class PicoGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(config.vocab_size, C)
            self.wpe = nn.Embedding(config.block_size, C)
            self.drop = nn.Dropout(config.dropout)
            self.blocks = nn.ModuleList(Block() for _ in range(config.n_layer))
            resid_std = 0.02 / math.sqrt(2 * config.n_layer)
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    std = resid_std if name.endswith("c_proj.weight") else 0.02
                    nn.init.normal_(p, mean=0.0, std=std)

        def forward(self, idx, targets):
            T = idx.shape[1]
            x = self.drop(self.wte(idx) + self.wpe(torch.arange(T)))  # (B, T, C)
            for block in self.blocks:
                x = block(x)
            logits = x @ self.wte.weight.t()  # (B, T, vocab_size)
            return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))

    return PicoGPT()


def measure(torch, model, optimizer, grad_clip, x, y, iters, warmup, precision):
    def step():
        # bfloat16: autocast's matmuls in bfloat16, softmax and the loss in float32, like
        # tf_train.py's --mixed_precision=bfloat16
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return loss.item()

    first = step()
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(iters):
        c0, t0 = time.process_time(), time.perf_counter()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    wall.sort()
    cpu.sort()
    return first, wall[len(wall) // 2], wall[0], cpu[len(cpu) // 2]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iters", type=int, default=20, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations first")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--block_size", type=int, default=128)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="intra-op threads (TensorFlow uses one per core too)",
    )
    parser.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="float32 (bench_train.py's yardstick) or autocast bfloat16",
    )
    args = parser.parse_args()
    for name in ("iters", "batch_size", "block_size", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    try:
        import torch
    except ImportError:
        print(f"error: {INSTALL_HINT}", file=sys.stderr)
        return 2
    try:
        import tf_train
        from tf_model.config import PicoGPTConfig
    except ImportError:
        print(
            "error: cannot import tf_train / tf_model from the repository; run this script from "
            "the repository root with PYTHONPATH=. (see the usage at the top of the file)",
            file=sys.stderr,
        )
        return 2

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    cfg = tf_train.DEFAULTS
    config = PicoGPTConfig(block_size=args.block_size)
    model = build_model(torch, config)
    model.train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg["learning_rate"],
        betas=(cfg["beta1"], cfg["beta2"]),
        eps=1e-8,
        foreach=True,  # the multi-tensor update, PyTorch eager at its fastest (default on CUDA only)
    )
    n_params = sum(p.numel() for p in model.parameters())
    x = torch.randint(0, config.vocab_size, (args.batch_size, args.block_size))
    y = torch.randint(0, config.vocab_size, (args.batch_size, args.block_size))
    first, median_s, best_s, cpu_s = measure(
        torch, model, optimizer, cfg["grad_clip"], x, y, args.iters, args.warmup, args.precision
    )

    tokens = args.batch_size * args.block_size
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}"
    )
    print(
        f"PyTorch {torch.__version__} eager, {args.precision}, {torch.get_num_threads()} threads, {n_params:,} "
        f"parameters, first loss {first:.3f} (ln {config.vocab_size} = "
        f"{math.log(config.vocab_size):.3f})"
    )
    print(
        f"batch {args.batch_size} x block {args.block_size} = {tokens} tokens/iter, "
        f"{args.iters} timed iterations, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| train step | median ms/iter | best ms/iter | CPU ms/iter | tokens/s |")
    print("|---|---|---|---|---|")
    print(
        f"| PyTorch eager | {median_s * 1000:.1f} | {best_s * 1000:.1f} | {cpu_s * 1000:.1f} "
        f"| {tokens / median_s:,.0f} |"
    )
    print(f"\n{median_s * 1000:.0f} ms/iter")
    return 0


if __name__ == "__main__":
    sys.exit(main())
