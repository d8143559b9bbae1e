"""PicoGPTConfig: the model's hyperparameters, checked against the CIMv3 accelerator's limits."""

from dataclasses import asdict, dataclass

# What the CIMv3 compute-in-memory macro can execute (see README_TENSORFLOW.md, "CIMv3 limits").
CIM_EMBD_SIZES = (128, 256, 512)  # crossbar widths the macro tiles onto
CIM_HEAD_SIZE = 64  # attention head size the macro's BATCH_MATMUL path supports
CIM_MAX_BLOCK_SIZE = 128  # KV-cache rows the on-chip SRAM holds
CIM_ACTIVATIONS = ("relu",)  # the only nonlinearity with an int8 kernel on the chip
ACTIVATIONS = ("relu", "gelu")  # what the Keras model can build at all


@dataclass
class PicoGPTConfig:
    block_size: int = 128  # context length in characters
    vocab_size: int = 65  # Tiny Shakespeare's character set
    n_layer: int = 3  # transformer blocks
    n_head: int = 2  # attention heads per block
    n_embd: int = 128  # residual stream width
    dropout: float = 0.1  # on embeddings, attention weights and residual branches (training only)
    bias: bool = False  # biases in Dense/LayerNorm; CIMv3 has no bias path
    activation: str = "relu"  # MLP nonlinearity
    enforce_cim_limits: bool = True  # False lets off-target experiments skip the CIMv3 checks

    def __post_init__(self):
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}) "
                "so every head gets the same size"
            )
        if self.enforce_cim_limits:
            self.check_cim_limits()

    @property
    def head_size(self):
        return self.n_embd // self.n_head

    def check_cim_limits(self):
        hint = " (set enforce_cim_limits=False for an off-target experiment)"
        if self.n_embd not in CIM_EMBD_SIZES:
            raise ValueError(
                f"CIMv3 limit: n_embd must be one of {CIM_EMBD_SIZES}, got {self.n_embd}" + hint
            )
        if self.head_size != CIM_HEAD_SIZE:
            raise ValueError(
                f"CIMv3 limit: n_embd / n_head must be {CIM_HEAD_SIZE}, got {self.n_embd}/{self.n_head} = "
                f"{self.n_embd / self.n_head:g}; for n_embd={self.n_embd} use n_head={self.n_embd // CIM_HEAD_SIZE}"
                + hint
            )
        if self.block_size > CIM_MAX_BLOCK_SIZE:
            raise ValueError(
                f"CIMv3 limit: block_size must be <= {CIM_MAX_BLOCK_SIZE}, got {self.block_size}"
                + hint
            )
        if self.bias:
            raise ValueError("CIMv3 limit: bias must be False (the macro has no bias path)" + hint)
        if self.activation not in CIM_ACTIVATIONS:
            raise ValueError(
                f"CIMv3 limit: activation must be one of {CIM_ACTIVATIONS}, got {self.activation!r}"
                + hint
            )

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(
                f"unknown PicoGPTConfig keys {unknown}; valid keys are {sorted(known)}"
            )
        return cls(**d)
