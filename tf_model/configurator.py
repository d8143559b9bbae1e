"""
nanoGPT-style configuration without exec: a config file is plain `name = value` assignments,
then `--name=value` command-line overrides. Every key and type is checked against the defaults.

    python tf_train.py --config tf_config/train_pico_shakespeare_char.py --batch_size=16
"""

import ast


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word such as --out_dir=out-run is a string


def read_config_file(path):
    """Parse `name = literal` lines with ast; anything else is an error, nothing is executed."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            source = f.read()
    except FileNotFoundError:
        raise ValueError(f"config file not found: {path}") from None
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid Python: {e.msg}") from None
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            raise ValueError(
                f"{path}:{node.lineno}: only `name = value` assignments are allowed in a config file"
            )
        try:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise ValueError(
                f"{path}:{node.lineno}: the value of {node.targets[0].id} must be a literal "
                "(number, string, bool, None, list, tuple or dict)"
            ) from None
    return values


def _check_type(key, value, default, source):
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(value, type(default)):
        return value
    raise ValueError(
        f"{source}: {key} must be of type {type(default).__name__} (default {default!r}), "
        f"got {value!r} of type {type(value).__name__}"
    )


def apply_config(defaults: dict, argv):
    """Return a copy of `defaults` updated by --config FILE (first) and --key=value overrides (in order)."""
    config = dict(defaults)
    valid = ", ".join(sorted(defaults))

    def update(key, value, source):
        if key not in config:
            raise ValueError(f"{source}: unknown config key {key!r}; valid keys are: {valid}")
        config[key] = _check_type(key, value, defaults[key], source)

    args = list(argv)
    files, overrides = [], []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--config" and i + 1 < len(args):
            files.append(args[i + 1])
            i += 2
            continue
        if arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
        elif arg.startswith("--") and "=" in arg:
            overrides.append(arg[2:].split("=", 1))
        elif not arg.startswith("--") and arg.endswith(".py"):
            files.append(arg)  # nanoGPT's positional form: train.py config/file.py
        else:
            raise ValueError(
                f"cannot parse argument {arg!r}; expected --config FILE or --key=value"
            )
        i += 1
    for path in files:
        for key, value in read_config_file(path).items():
            update(key, value, path)
    for key, text in overrides:
        update(key, _literal(text), f"--{key}")
    return config
