"""Draw the CIM macro map of a model: which layer's tiles occupy which macros, and how full they are.

    uv sync --group docs                      # matplotlib
    uv run python scripts/plot_cim_map.py     # reference model -> docs/cim/macro_map.png
    uv run python scripts/plot_cim_map.py --tflite M.tflite --out /tmp/map.png
    uv run python scripts/plot_cim_map.py --report M_report.json   # an export's report

The mapping comes from the C runtime's mapper through the Python binding (the tiling rule lives
in cim_runtime/src/cim_map.c only), on the default device (CIM_HAL_DEVICE_DEFAULT), or from the
"cim_mapping" section of a deployment report (tf_convert_to_tflite.py). One square per macro, in
tile order; a layer's tiles share its colour, the filled height is the layer's utilisation (the
share of the macro's cells holding weights), free macros stay white.
"""

import argparse
import io
import json
import os
import sys

from tf_model.chip import ChipError
from tf_model.export.cim_mapping import cim_mapping_report, format_cim_mapping
from tf_model.fileio import write_files_atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "shakespeare_char", "model_data_int8.tflite")
OUT = os.path.join(ROOT, "docs", "cim", "macro_map.png")
PER_ROW = 8  # macros per row of the picture


def draw(mapping, title):
    """The PNG bytes of the macro map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = mapping["device"]["num_macros"]
    rows = (n + PER_ROW - 1) // PER_ROW
    fig, ax = plt.subplots(figsize=(1.3 * PER_ROW + 0.4, 1.25 * rows + 1.0))
    colours = plt.get_cmap("tab20").colors
    owner = {}
    for k, layer in enumerate(mapping["layers"]):
        for j, macro in enumerate(layer["macros"]):
            owner[macro] = (k, j, layer)
    for m in range(n):
        x, y = m % PER_ROW, rows - 1 - m // PER_ROW
        ax.add_patch(Rectangle((x + 0.05, y + 0.05), 0.9, 0.9, fill=False, linewidth=1))
        if m not in owner:
            ax.text(x + 0.5, y + 0.5, f"{m}\nfree", ha="center", va="center", fontsize=7,
                    color="grey")  # fmt: skip
            continue
        k, j, layer = owner[m]
        ax.add_patch(
            Rectangle((x + 0.05, y + 0.05), 0.9, 0.9 * layer["utilisation"],
                      color=colours[k % len(colours)], alpha=0.85)
        )  # fmt: skip
        part = f" {j + 1}/{layer['tiles']}" if layer["tiles"] > 1 else ""
        n_out, n_in = layer["weight_shape"]
        ax.text(
            x + 0.5, y + 0.5,
            f"{m}\n{layer['name']}{part}\n{n_out}x{n_in}\n{layer['utilisation']:.0%}",
            ha="center", va="center", fontsize=6.5,
        )  # fmt: skip
    ax.set_xlim(0, PER_ROW)
    ax.set_ylim(0, rows)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return png.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--tflite", default=MODEL, help="exported int8 model (default: reference)")
    source.add_argument("--report", help="a deployment report (.json) with a cim_mapping section")
    parser.add_argument("--out", default=OUT, help="the PNG to write")
    args = parser.parse_args()
    if args.report:
        try:
            with open(args.report) as f:
                mapping = json.load(f).get("cim_mapping")
        except (OSError, ValueError) as e:
            sys.exit(f"error: cannot read the report {args.report}: {e}")
        if mapping is None:
            sys.exit(
                f"error: {args.report} has no cim_mapping section; export the model again with "
                "tf_convert_to_tflite.py, or pass --tflite"
            )
        name = os.path.basename(args.report)
    else:
        try:
            with open(args.tflite, "rb") as f:
                data = f.read()
            mapping = cim_mapping_report(data, "int8")
        except (OSError, ChipError, ValueError) as e:
            sys.exit(f"error: cannot map {args.tflite}: {e}")
        name = os.path.basename(args.tflite)
    if "unavailable" in mapping:
        sys.exit(f"error: no mapping: {mapping['unavailable']}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        sys.exit(
            "error: the macro map needs matplotlib, which is in the optional `docs` group: run "
            "`uv sync --group docs`"
        )
    summary = format_cim_mapping(mapping)
    png = draw(mapping, f"{name}: {summary}".replace("; ", "\n", 1))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_files_atomic({args.out: png})
    print(f"{name}: {summary}\nwrote {args.out}")


if __name__ == "__main__":
    main()
