import pytest

from tf_model import PicoGPTConfig


def test_default_config_is_the_cimv3_model():
    c = PicoGPTConfig()
    assert (c.block_size, c.vocab_size, c.n_layer, c.n_head, c.n_embd) == (128, 65, 3, 2, 128)
    assert c.dropout == 0.1 and c.bias is False and c.activation == "relu" and c.head_size == 64


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"n_embd": 192, "n_head": 3}, "n_embd must be one of (128, 256, 512)"),
        ({"n_embd": 256, "n_head": 2}, "n_embd / n_head must be 64"),
        ({"block_size": 256}, "block_size must be <= 128"),
        ({"bias": True}, "bias must be False"),
        ({"activation": "gelu"}, "activation must be one of ('relu',)"),
    ],
)
def test_cim_limits_are_checked_when_built(kwargs, fragment):
    with pytest.raises(ValueError) as e:
        PicoGPTConfig(**kwargs)
    assert fragment in str(e.value)
    assert "CIMv3 limit" in str(e.value) and "enforce_cim_limits=False" in str(e.value)


def test_head_size_error_suggests_a_valid_head_count():
    with pytest.raises(ValueError, match="use n_head=4"):
        PicoGPTConfig(n_embd=256, n_head=2)


def test_opt_out_allows_off_target_configs():
    c = PicoGPTConfig(
        n_embd=96, n_head=3, block_size=256, bias=True, activation="gelu", enforce_cim_limits=False
    )
    assert c.head_size == 32


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"n_layer": 0}, "n_layer must be a positive integer"),
        ({"vocab_size": 6.5}, "vocab_size must be a positive integer"),
        ({"dropout": 1.0}, "dropout must be a number in [0, 1)"),
        ({"activation": "tanh"}, "activation must be one of"),
        ({"n_embd": 100, "n_head": 3, "enforce_cim_limits": False}, "must be divisible by n_head"),
    ],
)
def test_nonsense_values_are_rejected_even_off_target(kwargs, fragment):
    with pytest.raises(ValueError) as e:
        PicoGPTConfig(**{"enforce_cim_limits": False, **kwargs})
    assert fragment in str(e.value)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown PicoGPTConfig keys \\['n_embed'\\]"):
        PicoGPTConfig.from_dict({"n_embed": 128})
    assert PicoGPTConfig.from_dict(PicoGPTConfig().to_dict()) == PicoGPTConfig()
