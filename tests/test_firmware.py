"""The bare-metal RISC-V firmware: riscv presets, QEMU runs, text equality with the host CLI.

    uv run pytest tests/test_firmware.py
    PICOGPT_MODEL_TFLITE=out-tf-pico-shakespeare-char/model_data_int8.tflite uv run pytest tests/test_firmware.py

Builds the riscv-release and riscv-debug presets (the cross compiler, picolibc and QEMU are the
Debian packages .ci/run installs) and a host picogpt_generate, then runs the firmware under
qemu-system-riscv32 with a timeout and checks: exit status, text identical to the host CLI for
the same model bytes, prompt, seed, temperature and top-k (sampled and greedy, a prompt with
spaces), a sane stats line (with the CIM mapping, the instructions the core executes outside
the accelerator and the cost model's figures), the speed target, the memory budgets, bad
options, prompts and command lines, a trap ending the run with its cause, the build's refusal of an arena or RAM that is too small
and of a CIM device too small for the model (or its CPU fallback, same text), and the model kind:
a full-window model_data builds and runs, a kind that PICOGPT_USE_KV_CACHE contradicts stops
the configure. The firmware embeds the repository's model_data (the reference model) unless
PICOGPT_MODEL_TFLITE names an exported .tflite; the host CLI always gets the very model bytes
found in the firmware ELF.
"""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_QEMU = os.path.join(ROOT, "scripts", "run_qemu.sh")
FW_REL = os.path.join("cim_runtime", "firmware", "picogpt_firmware.elf")
FLASH_BUDGET = 512 * 1024  # issue #5, default model
RAM_BUDGET = 160 * 1024
# Flash left for application code with the default model: issue 12 asks for 32 KiB. What the
# runtime leaves today is in docs/firmware.md ("Size report and budget check").
FLASH_HEADROOM_MIN = 32 * 1024
MAX_INSTRUCTIONS_PER_TOKEN = 2_200_000  # rv32imac, scalar, KV cache, in-window (issue 12)
QEMU_TIMEOUT = 120
# Cache entries a developer may have set by hand in a preset's build directory; cleared so the
# tests see the defaults of cim_runtime/firmware/CMakeLists.txt.
RESET_CACHE = ["-U", "PICOGPT_FW_*", "-U", "PICOGPT_USE_KV_CACHE", "-U", "PICOGPT_MODEL_DATA"]
MODEL_TFLITE = os.environ.get("PICOGPT_MODEL_TFLITE", "")


def run(cmd, timeout, cwd=ROOT):
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


def model_args():
    return [f"-DPICOGPT_MODEL_TFLITE={MODEL_TFLITE}"]


def build_preset(preset, extra=()):
    """Configure + build a riscv preset; returns (ok, log)."""
    code, log = run(["cmake", "--preset", preset, *RESET_CACHE, *model_args(), *extra], 300)
    if code != 0:
        return False, log
    elf = os.path.join(ROOT, "build", preset, FW_REL)
    if os.path.exists(elf):
        os.unlink(elf)  # the link step prints the size report: relink even when up to date
    code, out = run(["cmake", "--build", "--preset", f"{preset}-build"], 900)
    return code == 0, log + out


def qemu(elf, *args, timeout=QEMU_TIMEOUT, raw_command_line=None):
    """Runs the firmware; raw_command_line is passed to it unescaped (PICOGPT_QEMU_APPEND)."""
    env = {**os.environ, "PICOGPT_QEMU_TIMEOUT": str(timeout)}
    env.pop("PICOGPT_QEMU_APPEND", None)
    if raw_command_line is not None:
        env["PICOGPT_QEMU_APPEND"] = raw_command_line
    proc = subprocess.run(
        [RUN_QEMU, elf, *args],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        env=env,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def split_output(stdout):
    """Firmware stdout -> (text, stats dict)."""
    text, sep, stats_line = stdout.partition("picogpt-stats:")
    assert sep, f"no stats line in the firmware output:\n{stdout[-3000:]}"
    stats = {}
    for field in stats_line.split():
        key, _, value = field.partition("=")
        stats[key] = value
    return text, stats


SIZE_REPORT = re.compile(
    r"flash (?P<flash>\d+) / (?P<flash_size>\d+) bytes \([\d.]+%, (?P<flash_free>\d+) free\): "
    r"code (?P<code>\d+), read-only data (?P<rodata>\d+) \(model (?P<model>\d+)\), "
    r"\.data image (?P<data>\d+)\s+"
    r"RAM +(?P<ram>\d+) / (?P<ram_size>\d+) bytes \([\d.]+%, (?P<ram_free>\d+) free\): "
    r"tensor arena (?P<arena>\d+) \+ runtime state (?P<state>\d+) \+ other \.bss "
    r"(?P<bss>\d+) \+ \.data (?P<ram_data>\d+) \+ stack (?P<stack>\d+) \+ alignment "
    r"(?P<align>\d+)"
)


def size_report_fields(log):
    """The size report's numbers (cmake/picogpt_size_report.cmake) as a dict of ints."""
    m = SIZE_REPORT.search(log)
    assert m, f"no complete size report in the build output:\n{log[-4000:]}"
    return {key: int(value) for key, value in m.groupdict().items()}


@pytest.fixture(scope="module")
def tools():
    missing = [
        t
        for t in ("cmake", "riscv64-unknown-elf-gcc", "qemu-system-riscv32", "timeout")
        if shutil.which(t) is None
    ]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: apt-get install cmake gcc-riscv64-unknown-elf "
            "picolibc-riscv64-unknown-elf qemu-system-misc (.ci/run does this)"
        )


@pytest.fixture(scope="module")
def release(tools):
    """The riscv-release preset's build: (ok, log)."""
    return build_preset("riscv-release")


def configure(name, *extra):
    """Configure build/<name> from the riscv-release preset with extra cache entries (later
    ones win); returns (exit status, log)."""
    build = os.path.join(ROOT, "build", name)
    return run(
        ["cmake", "--preset", "riscv-release", "-B", build, *RESET_CACHE, *model_args(), *extra],
        300,
    )


def configure_scratch(name, *extra):
    """Configure + build build/<name> from the riscv-release preset with extra cache entries."""
    code, log = configure(name, *extra)
    assert code == 0, f"configure failed:\n{log[-4000:]}"
    code, out = run(["cmake", "--build", os.path.join(ROOT, "build", name), "-j2"], 900)
    return code, log + out


@pytest.fixture(scope="module")
def firmware(release):
    """Path of a firmware ELF to run: the preset's. If the preset's build failed only because
    the firmware is over its memory budget (test_release_preset_fits_memory_budgets fails and
    says so), the same firmware linked into enlarged memory regions, so that what it computes
    is still checked."""
    ok, log = release
    if ok:
        return os.path.join(ROOT, "build", "riscv-release", FW_REL)
    assert "does not fit its memory" in log, f"riscv-release build failed:\n{log[-6000:]}"
    code, out = configure_scratch(
        "riscv-release-enlarged", "-DPICOGPT_FW_FLASH_SIZE=4194304", "-DPICOGPT_FW_RAM_SIZE=4194304"
    )
    assert code == 0, f"build in enlarged memory failed:\n{out[-6000:]}"
    return os.path.join(ROOT, "build", "riscv-release-enlarged", FW_REL)


@pytest.fixture(scope="module")
def host_cli(tools):
    build = os.path.join(ROOT, "build", "firmware-test-host")
    code, log = run(
        [
            "cmake",
            "-S",
            ROOT,
            "-B",
            build,
            "-DCMAKE_BUILD_TYPE=Release",
            "-DPICOGPT_BUILD_HOST_APPS=ON",
            "-DPICOGPT_MODEL_TFLITE=",
        ],
        300,
    )
    assert code == 0, f"host configure failed:\n{log[-4000:]}"
    code, log = run(["cmake", "--build", build, "-j2", "--target", "picogpt_generate"], 900)
    assert code == 0, f"host build failed:\n{log[-6000:]}"
    return os.path.join(build, "cim_runtime", "apps", "picogpt_generate")


def elf_file_offset(elf, addr, size):
    """Where the size bytes at address addr of the ELF's image lie in the file."""
    code, secs = run(["riscv64-unknown-elf-readelf", "-SW", elf], 60)
    assert code == 0, secs
    for line in secs.splitlines():
        f = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if f:
            sec_addr, sec_off, sec_size = (int(f.group(i), 16) for i in (2, 3, 4))
            if sec_addr <= addr and addr + size <= sec_addr + sec_size:
                return sec_off + addr - sec_addr
    raise AssertionError(f"no section of {elf} holds 0x{addr:x}..+{size}")


def embedded_model(elf, out_path):
    """Writes the .tflite bytes the firmware embeds (g_pico_gpt_model_data) to out_path."""
    code, syms = run(["riscv64-unknown-elf-nm", "-S", elf], 60)
    assert code == 0, syms
    m = re.search(r"^([0-9a-f]+) ([0-9a-f]+) \w g_pico_gpt_model_data$", syms, re.MULTILINE)
    assert m, "g_pico_gpt_model_data not in the firmware's symbol table"
    addr, size = int(m.group(1), 16), int(m.group(2), 16)
    with open(elf, "rb") as src:
        src.seek(elf_file_offset(elf, addr, size))
        data = src.read(size)
    assert data[4:8] == b"TFL3", "embedded bytes are not a .tflite"
    with open(out_path, "wb") as dst:
        dst.write(data)
    return out_path


@pytest.fixture(scope="module")
def model_file(firmware, tmp_path_factory):
    return embedded_model(firmware, str(tmp_path_factory.mktemp("fw") / "embedded.tflite"))


def host_text(cli, model, prompt, tokens, temperature, top_k, seed, *window):
    """picogpt_generate's stdout; window: extra options, e.g. "--window", "exact"."""
    proc = subprocess.run(
        [
            cli,
            model,
            "--prompt",
            prompt,
            "--length",
            str(tokens),
            "--temperature",
            str(temperature),
            "--top_k",
            str(top_k),
            "--seed",
            str(seed),
            *window,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def cache_value(build_dir, name):
    with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
        m = re.search(rf"^{name}:\w+=(.*)$", f.read(), re.MULTILINE)
    assert m, f"{name} not in {build_dir}/CMakeCache.txt"
    return m.group(1)


# ---- the deployment path ---------------------------------------------------------------------


def test_release_preset_fits_memory_budgets(release):
    """The size report adds up, the default model is what is embedded, and flash and RAM fit
    their budgets with FLASH_HEADROOM_MIN free for application code."""
    ok, log = release
    assert ok, f"cmake --build --preset riscv-release-build failed:\n{log[-5000:]}"
    r = size_report_fields(log)
    assert (r["flash_size"], r["ram_size"]) == (FLASH_BUDGET, RAM_BUDGET), r
    assert r["flash"] + r["flash_free"] == FLASH_BUDGET, r
    assert r["ram"] + r["ram_free"] == RAM_BUDGET, r
    # flash is measured to the end of the last section: alignment padding is at most 16 bytes
    assert 0 <= r["flash"] - (r["code"] + r["rodata"] + r["data"]) < 16, r
    parts = ("arena", "state", "bss", "ram_data", "stack", "align")
    assert r["ram"] == sum(r[k] for k in parts), r
    if not MODEL_TFLITE:  # the committed C arrays (the .tflite in TFLite Micro's encoding)
        with open(os.path.join(ROOT, "cim_runtime", "src", "pico_gpt", "model_data.cc")) as f:
            embedded = re.search(r"g_pico_gpt_model_data_len = (\d+);", f.read())
        assert embedded and r["model"] == int(embedded.group(1)), r
    assert r["flash"] <= FLASH_BUDGET and r["ram"] <= RAM_BUDGET, r
    assert r["flash_free"] >= FLASH_HEADROOM_MIN, (
        f"only {r['flash_free']} bytes of flash free, {FLASH_HEADROOM_MIN} wanted: {r}"
    )


def test_debug_preset_builds_runs_and_matches_host(tools, host_cli, model_file):
    ok, log = build_preset("riscv-debug")
    assert ok, f"cmake --build --preset riscv-debug-build failed:\n{log[-5000:]}"
    size_report_fields(log)
    code, out, err = qemu(
        os.path.join(ROOT, "build", "riscv-debug", FW_REL), "--tokens", "8", "--seed", "11"
    )
    assert code == 0, err + out
    text, _ = split_output(out)
    assert text == host_text(host_cli, model_file, "ROMEO:", 8, 0.8, 0, 11)


# ---- what the firmware computes ------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt, tokens, temperature, top_k, seed",
    [
        ("ROMEO:", 48, 0.8, 20, 7),  # sampled with a top-k cut
        ("O God, O God!", 32, 0, 0, 1),  # greedy; spaces and punctuation arrive intact
        ("\n", 32, 1.0, 0, 0),  # full distribution, seed 0 (replaced by the PRNG)
    ],
)
def test_text_equals_host_cli(
    firmware, host_cli, model_file, prompt, tokens, temperature, top_k, seed
):
    code, out, err = qemu(
        firmware,
        "--prompt",
        prompt,
        "--tokens",
        str(tokens),
        "--temperature",
        str(temperature),
        "--top_k",
        str(top_k),
        "--seed",
        str(seed),
    )
    assert code == 0, err + out
    text, stats = split_output(out)
    assert int(stats["tokens"]) == tokens
    assert text == host_text(host_cli, model_file, prompt, tokens, temperature, top_k, seed)


# ---- past the window: the firmware, the host CLI and the Python binding say the same ------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained tiny step model (block_size 16), exported int8: the exact policy re-runs the
    whole window for every token past it, ~16 steps per token here instead of the reference
    model's 128, so a long exact run takes seconds in QEMU."""
    from test_export import shakespeare_data_dir

    from tf_model.checkpoint import Checkpoint, load_meta
    from tf_model.config import PicoGPTConfig
    from tf_model.export import build_tflite
    from tf_model.model import PicoGPT

    data_dir = shakespeare_data_dir(tmp_path_factory)
    config = PicoGPTConfig(
        n_layer=2, n_head=2, n_embd=32, block_size=16, dropout=0.0, enforce_cim_limits=False
    )
    checkpoint = Checkpoint("tiny", PicoGPT(config), config, load_meta(data_dir), data_dir)
    data, _ = build_tflite(checkpoint, "step", "int8", num_calibration_windows=2)
    path = tmp_path_factory.mktemp("tiny") / "tiny.tflite"
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def tiny_firmware(tools, tiny_model):
    code, log = configure_scratch("riscv-release-tiny", f"-DPICOGPT_MODEL_TFLITE={tiny_model}")
    assert code == 0, f"tiny-model firmware build failed:\n{log[-6000:]}"
    return os.path.join(ROOT, "build", "riscv-release-tiny", FW_REL)


@pytest.mark.parametrize(
    "model, window, prompt, tokens, temperature, top_k, seed",
    [
        ("reference", ["--window", "shift"], "ROMEO:", 300, 0.8, 20, 7),  # the default, sampled
        ("reference", ["--keep", "100"], "O God, O God!", 300, 0, 0, 1),  # greedy, another keep
        ("tiny", ["--window", "exact"], "ROMEO:", 300, 0.8, 0, 3),  # crop per token, sampled
        ("tiny", ["--window", "exact"], "KING:", 300, 0, 0, 1),  # crop per token, greedy
    ],
)
def test_past_the_window_firmware_host_and_binding_agree(
    request, host_cli, model, window, prompt, tokens, temperature, top_k, seed
):
    """Runs longer than the context window under both policies give one text everywhere: the
    firmware in QEMU, picogpt_generate and tf_model.chip (the same C generate and sampler)."""
    from tf_model.chip import Chip

    if model == "reference":
        elf, model_path = request.getfixturevalue("firmware"), request.getfixturevalue("model_file")
    else:
        elf, model_path = (
            request.getfixturevalue("tiny_firmware"),
            request.getfixturevalue("tiny_model"),
        )
    options = dict(zip(window[::2], window[1::2]))
    chip = Chip(model_path)
    stoi = {ch: i for i, ch in enumerate(chip.itos)}
    ids = chip.generate(
        [stoi[ch] for ch in prompt], tokens, temperature, top_k, seed,
        options.get("--window", "shift"), int(options["--keep"]) if "--keep" in options else None,
    )  # fmt: skip
    binding = prompt + "".join(chip.itos[i] for i in ids) + "\n"
    code, out, err = qemu(
        elf, "--prompt", prompt, "--tokens", str(tokens), "--temperature", str(temperature),
        "--top_k", str(top_k), "--seed", str(seed), *window,
    )  # fmt: skip
    assert code == 0, err + out
    text, stats = split_output(out)
    assert int(stats["tokens"]) == tokens and stats["window"] == options.get("--window", "shift")
    assert text == host_text(
        host_cli, model_path, prompt, tokens, temperature, top_k, seed, *window
    )
    assert text == binding


def test_default_run_stats_and_speed(firmware, host_cli, model_file):
    build_dir = os.path.dirname(os.path.dirname(os.path.dirname(firmware)))
    code, out, err = qemu(firmware)
    assert code == 0, err + out
    text, stats = split_output(out)
    tokens = int(cache_value(build_dir, "PICOGPT_FW_TOKENS"))
    prompt = cache_value(build_dir, "PICOGPT_FW_PROMPT")
    expected = host_text(
        host_cli,
        model_file,
        prompt,
        tokens,
        cache_value(build_dir, "PICOGPT_FW_TEMPERATURE"),
        cache_value(build_dir, "PICOGPT_FW_TOP_K"),
        cache_value(build_dir, "PICOGPT_FW_SEED"),
    )
    assert text == expected
    assert len(text) > len(prompt) + tokens // 2  # it printed the generated text

    assert stats["model"] == "kv-cache" and stats["window"] == "shift"
    assert int(stats["keep"]) == 128 // 4  # picogpt_default_window of the reference model
    assert int(stats["tokens"]) == tokens and int(stats["prompt_tokens"]) >= 1
    ipt = int(stats["instructions_per_token"])
    # -icount: QEMU's cycle counter is its instruction counter.
    assert int(stats["cycles_per_token"]) == ipt
    assert 0 < ipt <= MAX_INSTRUCTIONS_PER_TOKEN, f"{ipt} instructions per token"
    assert int(stats["total_instructions"]) > ipt * (tokens - 1)
    with open(os.path.join(build_dir, "cim_runtime", "firmware", "generated", "fw_arena.h")) as f:
        arena = int(re.search(r"PICOGPT_FW_ARENA_BYTES (\d+)u", f.read()).group(1))
    assert int(stats["arena_bytes"]) == arena  # auto-sized: exactly the need
    kv = int(stats["kv_cache_bytes"])
    assert 0 < kv < arena
    check_cim_stats(stats, ipt)
    stack = int(stats["stack_bytes"])
    assert 0 < stack < int(cache_value(build_dir, "PICOGPT_FW_STACK_SIZE"))

    # Deterministic: same instruction counts on a second run.
    code, out2, err = qemu(firmware)
    assert code == 0 and out2 == out


def check_cim_stats(stats, instructions_per_token):
    """The CIM fields of a stats line: the mapping, the work per token, the instructions left
    to the core and the cost model's figures, consistent with each other."""
    macros, products = int(stats["cim_macros"]), int(stats["cim_products_per_token"])
    assert 1 <= macros <= products, stats  # every used macro runs once per token at least
    assert int(stats["cim_macs_per_token"]) >= products * 128, stats  # tiles of >= 128 x 1
    assert int(stats["cpu_macs_per_token"]) > 0, stats  # attention stays on the CPU
    cpu = int(stats["cpu_instructions_per_token"])
    assert 0 < cpu < instructions_per_token, stats  # the rest emulated the macros
    cycles, mhz = int(stats["cim_cycles_per_token"]), int(stats["clock_mhz"])
    assert cycles >= products * 8 and mhz == 50, stats  # >= one cycle per input bit
    # tokens/s = clock / (core instructions + accelerator cycles), three decimals
    tokens_per_s = float(stats["tokens_per_s"])
    assert abs(tokens_per_s - mhz * 1e6 / (cpu + cycles)) < 1e-3, stats
    # uJ/token >= the core's share at 33.4 pJ per instruction (cim_runtime/README.md)
    uj = float(stats["uj_per_token"])
    assert cpu * 33.4e-6 <= uj <= cpu * 33.4e-6 + int(stats["cim_nj_per_token"]) / 1e3 + 1e-3


def test_bad_options_and_prompts_exit_2(firmware):
    for args, message in [
        (["--bogus", "1"], "bad option"),
        (["--tokens", "-3"], "bad option '--tokens -3': --tokens needs an integer in [0, 1000000]"),
        (["--tokens", "10x"], "--tokens needs an integer in [0, 1000000]"),
        (["--temperature", "1e3"], "--temperature needs"),
        (["--temperature", "nan"], "--temperature needs a decimal number in [0, 100]"),
        (["--top_k", "-3"], "--top_k needs an integer in [0, 1024]"),
        (["--seed", "-1"], "--seed needs an integer in [0, 18446744073709551615]"),
        (["--prompt", "\u00e9t\u00e9"], "outside the vocabulary"),
        (["--prompt", "a\\b"], "outside the vocabulary (at byte 1)"),  # a backslash is text
        (["--prompt", "a" * 130], "longer than 128 tokens"),
        (["--prompt", "a " * 400], "command line is longer than 1023 bytes"),
        (["--seed"], "needs a value"),
        (["--window", "slide"], "bad option '--window slide': --window needs one of shift, exact"),
        (["--keep", "-1"], "--keep needs an integer in [0, 511]"),
        (["--keep", "128"], "keep 128 is out of range: it must be in [0, 127]"),
    ]:
        code, out, _ = qemu(firmware, *args)
        assert code == 2, (args, code, out)
        assert message in out, (args, out)
        assert "picogpt-stats" not in out, (args, out)  # nothing ran on a partial command line


def test_raw_command_line_is_checked_word_by_word(firmware):
    """What a user typing QEMU's -append by hand gets: escapes decoded, nothing dropped."""
    code, out, _ = qemu(firmware, raw_command_line="--prompt O\\sGod! --tokens 3 --temperature 0")
    assert code == 0 and out.startswith("O God!"), out
    for line, message in [
        ("--prompt O God", "unexpected argument 'God': every word must be an option or its value"),
        ("--prompt a\\qb", "bad escape in 'a\\qb'"),
        ("--prompt ab\\", "bad escape"),
    ]:
        code, out, _ = qemu(firmware, raw_command_line=line)
        assert code == 2 and message in out, (line, code, out)


def test_a_trap_ends_the_run_with_its_cause(firmware, tmp_path):
    """The firmware's trap handler (picolibc's hosted crt0 installs none): an illegal
    instruction where generation starts ends the run with exit status 1, the trap's cause
    (2: illegal instruction) and its address, instead of hanging until QEMU's timeout."""
    code, syms = run(["riscv64-unknown-elf-nm", firmware], 60)
    assert code == 0, syms
    # With link-time optimization GCC may rename it (picogpt_generate.constprop.0).
    m = re.search(r"^([0-9a-f]+) \w picogpt_generate(\.\S+)?$", syms, re.MULTILINE)
    assert m, "picogpt_generate not in the firmware's symbol table"
    addr = int(m.group(1), 16)
    broken = tmp_path / "trap.elf"
    shutil.copyfile(firmware, broken)
    with open(broken, "r+b") as f:
        f.seek(elf_file_offset(firmware, addr, 4))
        f.write(b"\0\0\0\0")  # an all-zero instruction is illegal in RISC-V
    code, out, err = qemu(str(broken), "--tokens", "3", timeout=30)
    assert code == 1, (code, out, err)
    # Semihosting puts the firmware's stderr on QEMU's stdout.
    expected = f"error: trap: mcause=2 mepc=0x{addr:0{len(m.group(1))}x}"
    assert expected in out + err, (expected, out, err)
    assert "picogpt-stats" not in out


def test_run_qemu_refuses_an_empty_argument(firmware):
    code, out, err = qemu(firmware, "--prompt", "")
    assert code == 2 and "argument 2 after the ELF is empty" in err, (code, out, err)


# ---- the build's memory checks ----------------------------------------------------------------


def test_build_refuses_too_small_arena_ram_and_flash(tools):
    code, log = configure_scratch("riscv-release-checks", "-DPICOGPT_FW_ARENA_SIZE=4096")
    assert code != 0
    m = re.search(r"PICOGPT_FW_ARENA_SIZE=4096 is too small: the embedded model needs (\d+)", log)
    assert m and int(m.group(1)) > 4096, log[-4000:]

    code, log = configure_scratch("riscv-release-checks", "-DPICOGPT_FW_RAM_SIZE=65536")
    assert code != 0
    assert "does not fit its memory" in log and "PICOGPT_FW_RAM_SIZE is 65536" in log, log[-4000:]
    assert "OVER BY" in log  # the size report is printed although the link failed

    code, log = configure_scratch("riscv-release-checks", "-DPICOGPT_FW_FLASH_SIZE=131072")
    assert code != 0
    assert "PICOGPT_FW_FLASH_SIZE is 131072" in log, log[-4000:]


# ---- the model's kind ---------------------------------------------------------------------


def test_full_window_model_data_builds_and_runs(tools, host_cli, tmp_path):
    """The build follows the kind the header records: the committed full-window model_data
    (PICOGPT_USE_KV_CACHE 0) builds with the release preset and runs, as the host CLI does."""
    name = "riscv-release-full-window"
    code, log = configure_scratch(
        name, "-DPICOGPT_MODEL_TFLITE=", "-DPICOGPT_MODEL_DATA=model_data_full"
    )
    assert code == 0, f"build failed:\n{log[-6000:]}"
    assert "model_data_full.cc, a full-window (--no_kv_cache) model" in log, log[-3000:]
    elf = os.path.join(ROOT, "build", name, FW_REL)
    code, out, err = qemu(elf, "--prompt", "O God", "--tokens", "3", "--temperature", "0")
    assert code == 0, err + out
    text, stats = split_output(out)
    assert stats["model"] == "full-window" and int(stats["kv_cache_bytes"]) == 0, stats
    model = embedded_model(elf, str(tmp_path / "full.tflite"))
    assert text == host_text(host_cli, model, "O God", 3, 0, 0, 1)


def test_configure_refuses_a_kind_the_model_contradicts(tools):
    code, log = configure(
        "riscv-kind-check", "-DPICOGPT_MODEL_TFLITE=", "-DPICOGPT_USE_KV_CACHE=OFF"
    )
    assert code != 0
    flat = " ".join(log.split())  # CMake wraps its messages
    assert "PICOGPT_USE_KV_CACHE=OFF builds for a full-window (--no_kv_cache) model" in flat, flat
    assert "model_data.cc is a KV-cache step model" in flat, flat
    assert "-DPICOGPT_MODEL_DATA=model_data_full" in flat and "--no_kv_cache" in flat, flat


def test_configure_refuses_settings_out_of_range(tools):
    for setting, message in [
        ("-DPICOGPT_FW_TOP_K=2000", "PICOGPT_FW_TOP_K=2000"),
        ("-DPICOGPT_FW_SEED=18446744073709551616", "PICOGPT_FW_SEED=18446744073709551616"),
        ("-DPICOGPT_FW_TEMPERATURE=nan", "a decimal number in [0, 100]"),
        ("-DPICOGPT_FW_FLASH_SIZE=big", "PICOGPT_FW_FLASH_SIZE=big: expected a number of bytes"),
        ("-DPICOGPT_FW_WINDOW=slide", "PICOGPT_FW_WINDOW=slide"),
        ("-DPICOGPT_FW_KEEP=600", "auto or an integer in [0, 511]"),
        ("-DPICOGPT_FW_CIM_ROWS=100", "PICOGPT_FW_CIM_ROWS=100"),
        ("-DPICOGPT_FW_CIM_MACROS=0", "expected 1..65535 macros of 128, 256 or 512"),
    ]:
        code, log = configure("riscv-kind-check", setting)
        assert code != 0, setting
        assert message in " ".join(log.split()), (setting, log[-3000:])


def test_cim_device_too_small_fails_the_build_or_falls_back(tools, host_cli, model_file):
    """8 macros of 128 x 128 for a model that needs 25: the build's probe stops with the
    mapper's message; with PICOGPT_FW_CIM_CPU_FALLBACK the overflow layers run on the CPU, with
    a warning and the same text."""
    code, log = configure_scratch("riscv-cim-small", "-DPICOGPT_FW_CIM_MACROS=8")
    assert code != 0
    assert "PICOGPT_ERR_CIM_CAPACITY" in log and "the device has 8" in log, log[-4000:]
    code, log = configure_scratch(
        "riscv-cim-small", "-DPICOGPT_FW_CIM_MACROS=8", "-DPICOGPT_FW_CIM_CPU_FALLBACK=ON"
    )
    assert code == 0, log[-4000:]
    elf = os.path.join(ROOT, "build", "riscv-cim-small", FW_REL)
    code, out, err = qemu(elf, "--tokens", "20", "--seed", "3")
    assert code == 0, err + out
    # Semihosting puts the firmware's stderr on QEMU's stdout, before the text.
    warning, _, out = out.partition("\n")
    assert warning.startswith("warning: 13 of 19") and "do not fit the 8 CIM macros" in warning
    text, stats = split_output(out)
    assert int(stats["cim_macros"]) == 8, stats
    check_cim_stats(stats, int(stats["instructions_per_token"]))
    assert text == host_text(host_cli, model_file, "ROMEO:", 20, "0.8", "0", "3")
