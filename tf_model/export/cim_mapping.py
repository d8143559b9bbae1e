"""The CIM mapping of an export, for its deployment report: how the C runtime's mapper tiles the
FULLY_CONNECTED weights onto the default device's macros.

The numbers come from the mapper itself (cim_runtime/src/cim_map.c) through the Python binding
(tf_model.chip, Chip.cim_mapping): the tiling rule lives in C only. Python adds names for the
layers and the report's text.
"""

BLOCK_ROLES = ("attn.q", "attn.k", "attn.v", "attn.proj", "mlp.fc", "mlp.proj")


def layer_roles(shapes):
    """Names of the FULLY_CONNECTED layers in execution order, from their (N, K) weight shapes:
    h{i}.attn.q/k/v/proj, h{i}.mlp.fc/proj per block and lm_head, when the shapes follow the
    exporter's graph (tf_model/export/graph.py); None for a graph of another shape."""
    if not shapes or (len(shapes) - 1) % len(BLOCK_ROLES):
        return None
    C = shapes[0][1]
    block = [[C, C], [C, C], [C, C], [C, C], [2 * C, C], [C, 2 * C]]
    n_layer = (len(shapes) - 1) // len(BLOCK_ROLES)
    if shapes[:-1] != block * n_layer or shapes[-1][1] != C:
        return None
    return [f"h{i}.{role}" for i in range(n_layer) for role in BLOCK_ROLES] + ["lm_head"]


def cim_mapping_report(data, quantization):
    """The mapping dict of Chip.cim_mapping() with a "name" per layer, for an int8 export; else
    {"unavailable": why} (the chip runs int8 models only; the binding needs a C compiler)."""
    if quantization != "int8":
        return {"unavailable": f"the CIM runtime runs int8 models only, this is {quantization}"}
    from ..chip import Chip, ChipBuildError

    try:
        with Chip(data) as chip:
            mapping = chip.cim_mapping()
    except ChipBuildError as e:
        return {"unavailable": f"the C runtime's Python binding could not be built: {e}"}
    roles = layer_roles([layer["weight_shape"] for layer in mapping["layers"]])
    for i, layer in enumerate(mapping["layers"]):
        layer["name"] = roles[i] if roles else f"op {layer['op_index']}"
    return mapping


def format_cim_mapping(mapping):
    """One line for the report's table."""
    if "unavailable" in mapping:
        return f"not computed: {mapping['unavailable']}"
    d = mapping["device"]
    fit = "fits" if mapping["fits"] else f"{mapping['layers_on_cpu']} layers on the CPU"
    return (
        f"{mapping['macros_needed']} macros of {d['rows']} x {d['cols']} needed, device has "
        f"{d['num_macros']} ({fit}); utilisation {mapping['utilisation']:.1%}; "
        f"{mapping['fully_connected_share_on_macros']:.1%} of FULLY_CONNECTED MACs on the macros "
        f"({mapping['mac_share_on_macros']:.1%} of all, attention on the CPU)"
    )
