"""
nanoGPT-style configuration without exec: a config file is plain `name = value` assignments,
then `--name=value` command-line overrides. Every key and type is checked against the defaults.

    uv run python tf_train.py --config tf_config/train_pico_shakespeare_char.py --batch_size=16
"""

import ast
import io
import tokenize


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
    except IsADirectoryError:
        raise ValueError(f"config file {path} is a directory; give a .py file") from None
    except OSError as e:
        raise ValueError(f"cannot read config file {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"config file {path} is not UTF-8 text ({e.reason})") from None
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
    return read_config(defaults, argv)[0]


def read_config(defaults: dict, argv):
    """(config, sources): apply_config's result, and for every key a config file or override
    set, where the final value came from (the file's path or "--key")."""
    config, sources = dict(defaults), {}
    valid = ", ".join(sorted(defaults))

    def update(key, value, source):
        if key not in config:
            raise ValueError(f"{source}: unknown config key {key!r}; valid keys are: {valid}")
        config[key] = _check_type(key, value, defaults[key], source)
        sources[key] = source

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
    return config, sources


# ---- usage text -------------------------------------------------------------------------------


def default_comments(path):
    """{name: comment} for every `name = value  # comment` (or dataclass field
    `name: type = value  # comment`) line of a Python source file: the documentation of a
    default lives beside it, and usage text reads it from there."""
    with open(path, "r", encoding="utf-8") as f:
        tokens = list(tokenize.generate_tokens(io.StringIO(f.read()).readline))
    comments, line = {}, []
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.NL):
            line = []
            continue
        if tok.type == tokenize.COMMENT and line:
            first = line[0]
            assigns = any(t.type == tokenize.OP and t.string in ("=", ":") for t in line[1:2])
            if first.type == tokenize.NAME and first.start[1] in (0, 4) and assigns:
                comments[first.string] = tok.string.lstrip("#").strip()
            continue
        if tok.type not in (tokenize.INDENT, tokenize.DEDENT):
            line.append(tok)
    return comments


def format_usage(sections, comments):
    """`--key=default  comment` lines; sections is [(title, {key: default})]."""

    def option(key, value):
        return f"--{key}={value if value != '' else repr(value)}"  # bare words are strings

    width = max(len(option(k, v)) for _, keys in sections for k, v in keys.items())
    lines = []
    for title, keys in sections:
        lines.append(f"{title}:")
        for key, value in keys.items():
            lines.append(f"  {option(key, value).ljust(width)}  {comments.get(key, '')}".rstrip())
    return "\n".join(lines)
