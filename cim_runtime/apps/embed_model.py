"""Build-directory model_data.h/.cc from an exported .tflite, for builds that embed another model.

    uv run python cim_runtime/apps/embed_model.py MODEL.tflite BUILD_DIR/generated

Writes BUILD_DIR/generated/include/pico_gpt/model_data.h and src/pico_gpt/model_data.cc: the
very files tf_convert_to_tflite.py writes for that model (tf_model.export.carray), so a build can
embed any exported model without touching the source tree.
"""

import os
import sys

from tf_model.export.carray import main as export_carray


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    model_path, out_dir = argv
    header = os.path.join(out_dir, "include", "pico_gpt", "model_data.h")
    source = os.path.join(out_dir, "src", "pico_gpt", "model_data.cc")
    for path in (header, source):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    return export_carray([model_path, "--c_header", header, "--c_source", source])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
