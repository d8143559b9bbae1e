"""The C runtime's test suite, driven from pytest: configure + build the host-test preset, run ctest.

    uv run pytest tests/test_cim_runtime.py

ctest runs the kernel golden tests (TFLite Micro vectors), the end-to-end test (both committed
reference models, bit-exact over 128 positions), the robustness cases, the public-header and
input-parser tests and a bounded libFuzzer run on a seed corpus of real models. The build itself
generates the golden data (TensorFlow + the tflite-micro interpreter): kernel vectors from
single-op models, and for the end-to-end test the logits of the committed reference models
(models/shakespeare_char/); it trains nothing. ctest also runs the CIM accelerator model's test
(mapping, capacity, HAL protocol, cost model, live attention). The host CLI is checked end to
end: text and stats, the CIM report and device options, and a clear error (exit status, message,
no sanitizer report) for every bad option, model path and vocabulary; and the configure's choice
of the model kind.
"""

import os
import re
import shutil
import subprocess

import pytest
from conftest import ROOT, assert_no_traceback, cpu_has_avx512_vnni, run_script

BUILD = os.path.join(ROOT, "build", "host-test")


def run(cmd, timeout):
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built():
    for tool in ("cmake", "ctest", "clang"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required to build the C runtime (apt-get install cmake clang)")
    code, out = run(["cmake", "--preset", "host-test"], timeout=300)
    assert code == 0, f"cmake configure failed:\n{out[-6000:]}"
    code, out = run(["cmake", "--build", "--preset", "host-test"], timeout=1800)
    assert code == 0, f"build failed:\n{out[-8000:]}"
    return BUILD


def ctest(regex, timeout):
    code, out = run(["ctest", "--preset", "host-test", "-R", regex], timeout=timeout)
    assert code == 0, f"ctest -R {regex} failed:\n{out[-12000:]}"
    assert "tests passed" in out
    return out


def test_kernels_bit_exact_with_tflite_micro(built):
    ctest("^golden_", timeout=300)


def test_exported_models_bit_exact_over_128_steps(built):
    out = ctest("^e2e_", timeout=300)
    assert "Passed" in out


def test_robustness_cases(built):
    ctest("^robustness$", timeout=300)


def test_cim_mapping_hal_and_cost_model(built):
    ctest("^cim_mapping$", timeout=120)


def test_public_header_and_input_parsers(built):
    """runtime.h/status.h compile alone as C and C++ and show no internal name (a build
    failure otherwise); the option parser and the metadata vocabulary reader, case by case."""
    out = ctest("^(public_header|cli_parsers)$", timeout=120)
    assert "out of 2" in out


def test_firmware_compact_libgcc_equals_hardware(built):
    """The firmware's own soft-float and 64-bit division routines
    (cim_runtime/firmware/compact_libgcc.c), bit for bit against this machine's IEEE 754
    arithmetic and integer division, on edge cases and random operands."""
    ctest("^compact_libgcc_vs_hardware$", timeout=300)


def test_fuzz_model_reader_and_planner(built):
    ctest("^fuzz_", timeout=400)


def test_cli_generates_text_with_stats(built):
    cli = os.path.join(BUILD, "cim_runtime", "apps", "picogpt_generate")
    model = os.path.join(BUILD, "e2e", "model_step.tflite")
    args = [
        cli,
        model,
        "--prompt",
        "ROMEO:",
        "--length",
        "30",
        "--temperature",
        "0.8",
        "--top_k",
        "10",
        "--seed",
        "5",
    ]
    code, out = run(args, timeout=120)
    assert code == 0, out
    for stat in ("tokens/s", "bytes used", "MACs per token", "window shift, keep 32"):
        assert stat in out, out
    code2, out2 = run(args, timeout=120)
    assert code2 == 0, out2
    text = out.split("---")[0]
    assert text == out2.split("---")[0], "same seed must give the same text"
    assert text.startswith("ROMEO:") and len(text) > len("ROMEO:") + 20
    code, out = run([cli, model, "--prompt", "\u00e9\u00e9"], timeout=60)
    assert code == 2 and "outside the vocabulary" in out
    code, out = run([cli, os.path.join(BUILD, "e2e", "e2e.golden")], timeout=60)
    assert code == 1 and "error:" in out


def cli_paths(built):
    return (
        os.path.join(built, "cim_runtime", "apps", "picogpt_generate"),
        os.path.join(built, "e2e", "model_step.tflite"),
    )


def assert_clean_error(code, out, want_code, *messages):
    """A non-zero exit with the expected message and no sanitizer report or crash."""
    assert code == want_code, (code, out)
    for message in messages:
        assert message in out, (message, out)
    assert "Sanitizer" not in out and "runtime error:" not in out, out


@pytest.mark.parametrize(
    "args, messages",
    [
        (["--temperature", "abc"], ["'--temperature abc'", "a decimal number in [0, 100]"]),
        (["--temperature", "nan"], ["'--temperature nan'", "[0, 100]"]),
        (["--temperature", "inf"], ["'--temperature inf'", "[0, 100]"]),
        (["--temperature", "-0.5"], ["'--temperature -0.5'", "[0, 100]"]),
        (["--length", "abc"], ["'--length abc'", "an integer in [0, 1000000]"]),
        (["--length", "10x"], ["'--length 10x'", "an integer in [0, 1000000]"]),
        (["--top_k", "-3"], ["'--top_k -3'", "an integer in [0, 1024]"]),
        (["--top_k", "5000"], ["'--top_k 5000'", "an integer in [0, 1024]"]),
        (["--seed", "-1"], ["'--seed -1'", "[0, 18446744073709551615]"]),
        (["--seed", "18446744073709551616"], ["[0, 18446744073709551615]"]),
        (["--arena", "0"], ["'--arena 0'", "an integer in [1, 8388608]"]),
        (["--bogus"], ["bad option '--bogus': unknown; the options are --prompt TEXT"]),
        (["--prompt"], ["option --prompt needs a value"]),
        (["extra.tflite"], ["unexpected argument 'extra.tflite'"]),
        (["--prompt", ""], ["--prompt must have 1 to"]),
        (["--prompt", "\u00e9\u00e9"], ["outside the vocabulary (at byte 0)"]),
        (["--window", "slide"], ["'--window slide'", "--window needs one of shift, exact"]),
        (["--keep", "-1"], ["'--keep -1'", "an integer in [0, 511]"]),
        (["--keep", "128"], ["'--keep 128'", "keep 128 is out of range: it must be in [0, 127]"]),
        (["--window", "exact", "--keep", "200"], ["it must be in [0, 127]"]),
        (["--cim_adc_bits", "17"], ["'--cim_adc_bits 17'", "an integer in [0, 16]"]),
        (["--cim_adc_range", "17"], ["'--cim_adc_range 17'", "a decimal number in [0, 16]"]),
        (["--cim_out_noise", "101"], ["'--cim_out_noise 101'", "a decimal number in [0, 100]"]),
        (["--cim_weight_noise", "-1"], ["'--cim_weight_noise -1'", "[0, 100]"]),
        (["--cim_noise_seed", "x"], ["'--cim_noise_seed x'", "[0, 18446744073709551615]"]),
        (["--simd", "sse"], ["--simd sse: unknown SIMD path; expected auto, scalar, avx2"]),
        (["--simd_no_tables", "yes"], ["unexpected argument 'yes'"]),
    ],
)
def test_cli_rejects_bad_input_with_a_message(built, args, messages):
    cli, model = cli_paths(built)
    code, out = run([cli, model, *args], timeout=60)
    assert_clean_error(code, out, 2, "error: ", *messages)


@pytest.mark.parametrize(
    "args, want_code, message",
    [
        (["--simd_tables", "maybe"], 2, "--simd_tables maybe: expected on or off"),
        (["--tile_memory", "2"], 2, "--tile_memory 2: expected on or off"),
        (["--steps", "0"], 2, "--steps 0: expected an integer in [1, 100000000]"),
        (["--simd", "sse"], 2, "--simd sse: unknown SIMD path"),
        (["--bogus", "1"], 2, "unexpected argument --bogus"),
    ],
)
def test_bench_rejects_bad_options_with_a_message(built, args, want_code, message):
    bench = os.path.join(built, "cim_runtime", "apps", "picogpt_bench")
    code, out = run([bench, cli_paths(built)[1], *args], timeout=60)
    assert_clean_error(code, out, want_code, message)


def test_bench_rejects_bad_model_files_with_a_message(built, tmp_path):
    """picogpt_bench reads its model as the CLI does (apps/model_file.c): a directory, a missing,
    an empty or a corrupt file is one message and exit status 1, never a crash."""
    bench = os.path.join(built, "cim_runtime", "apps", "picogpt_bench")
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"TFL3" * 25)
    for path, message in (
        (str(tmp_path), "is a directory, not a file"),
        (str(tmp_path / "missing.tflite"), "cannot open model file"),
        (str(empty), "has 0 bytes; a model has 1..2147483647"),
        (str(corrupt), "error: "),
    ):
        code, out = run([bench, path, "--steps", "1"], timeout=60)
        assert_clean_error(code, out, 1, message)


def test_runtime_bench_scripts_print_their_tables(built):
    """bench/bench_simd.py and bench/bench_runtime.py drive picogpt_bench (here the test build's,
    a few steps): a row per SIMD path this CPU runs and per backend, the path named; a
    PICOGPT_SIMD the binary refuses is its one-line message and exit status 1, no traceback."""
    bench = os.path.join(built, "cim_runtime", "apps", "picogpt_bench")
    common = ["--bench", bench, "--steps", "8", "--repeats", "1"]
    proc = run_script("bench/bench_simd.py", *common, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    timed = re.findall(
        r"^\| (\w+) \| (on|off) \| [\d,]+ \| [\d.]+ \| [\d.]+ \|", proc.stdout, re.MULTILINE
    )
    want = [("scalar", "off"), ("avx2", "off"), ("avx512vnni", "off"), ("avx512vnni", "on")]
    # the paths this CPU runs, in order: scalar everywhere, all four rows with VNNI
    assert timed and timed == want[: len(timed)], proc.stdout
    assert len(timed) == 4 or not cpu_has_avx512_vnni(), proc.stdout
    assert re.search(
        r"^best path \w+ \(tile memory (on|off)\): [\d.]+ us/token", proc.stdout, re.MULTILINE
    )

    proc = run_script(
        "bench/bench_runtime.py", *common, env={"PICOGPT_SIMD": "scalar"}, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for label in (
        "cim_runtime (C, -O3, SIMD path scalar)",
        "LiteRT (XNNPACK, 1 thread)",
        "TFLite Micro interpreter",
    ):
        assert re.search(
            rf"^\| {re.escape(label)} \| [\d.]+ \| [\d.]+ \| [\d.]+x \|$", proc.stdout, re.MULTILINE
        ), (label, proc.stdout)

    proc = run_script("bench/bench_runtime.py", *common, env={"PICOGPT_SIMD": "sse"}, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "PICOGPT_SIMD=sse: unknown SIMD path" in proc.stderr
    assert_no_traceback(proc.stderr)


def test_cli_cim_report_and_device_options(built):
    """--cim_report: the mapping of the reference model (25 of 32 macros of 128 x 128), the
    share of MACs and the cost per token; a device too small fails with the mapper's message
    unless --cim_cpu_fallback runs the overflow layers on the CPU, with a warning."""
    cli, model = cli_paths(built)
    args = [cli, model, "--length", "20", "--quiet", "--cim_report"]
    code, out = run([*args, "--cim_cpu_instructions", "500000"], timeout=120)
    assert code == 0, out
    assert "CIM mapping: 25 of 32 macros of 128 x 128" in out and "utilisation 98.0 %" in out
    assert len(re.findall(r"^\s+\d+\s+\d+ x \d+\s+\d+ x \d+\s+\S+\s+\d+", out, re.MULTILINE)) == 19
    assert "401536 MACs/step on the macros (100.0 %), 0 on the CPU" in out, out
    assert "accelerator 1576 cycles, 200768 ADC conversions" in out, out
    # 50 MHz / (500,000 + 1,576 cycles)
    assert "99.7 tokens/s" in out, out
    code, out = run(args, timeout=120)
    assert code == 0 and "pass --cim_cpu_instructions N" in out, out

    code, out = run([cli, model, "--cim_macros", "8"], timeout=60)
    assert_clean_error(code, out, 1, "PICOGPT_ERR_CIM_CAPACITY", "needs 25 CIM macros", "has 8")
    code, out = run([*args, "--cim_macros", "8", "--cim_cpu_fallback"], timeout=120)
    assert code == 0, out
    assert "warning: 13 of 19 FULLY_CONNECTED layers do not fit the 8 CIM macros" in out, out
    assert "131072 MACs/step on the macros (32.6 %), 270464 on the CPU" in out, out
    code, out = run([cli, model, "--cim_rows", "200"], timeout=60)
    assert_clean_error(code, out, 1, "PICOGPT_ERR_ARGUMENT", "128, 256 or 512 rows and cols")
    code, out = run([cli, model, "--cim_macros", "0"], timeout=60)
    assert_clean_error(code, out, 2, "'--cim_macros 0'", "an integer in [1, 65535]")


def test_cli_tile_memory_changes_the_arena_not_the_text(built):
    """The CLI gives the CIM HAL its tile memory unless --cim_no_tile_memory: on a CPU with
    AVX-512 VNNI the arena grows by the emulated cells (403,456 B for the reference model) and
    the text stays the same, sampled or greedy; so it does with --simd_no_tables as well."""
    cli, model = cli_paths(built)
    args = [cli, model, "--prompt", "ROMEO:", "--length", "60", "--seed", "7"]
    outputs = []
    for extra in ([], ["--cim_no_tile_memory"]):
        code, out = run([*args, *extra], timeout=120)
        assert code == 0, out
        used = re.search(r"arena: (\d+) bytes used .* of which (\d+) tile memory", out)
        assert used, out
        outputs.append((out.split("---")[0], int(used.group(1)), int(used.group(2))))
    (text, arena, tiles), (plain_text, plain_arena, plain_tiles) = outputs
    assert text == plain_text and len(text) > 40
    assert plain_tiles == 0 and tiles == (403_456 if cpu_has_avx512_vnni() else 0)
    assert arena - plain_arena == tiles
    # Without the SIMD tables too: runtime.h's PICOGPT_TENSOR_ARENA_SIZE (140 KiB) suffices.
    code, out = run([*args, "--cim_no_tile_memory", "--simd_no_tables"], timeout=120)
    assert code == 0, out
    used = re.search(r"arena: (\d+) bytes used", out)
    assert used and int(used.group(1)) <= 140 * 1024, out
    assert out.split("---")[0] == text


def test_cli_nonideal_options(built):
    """--cim_adc_bits etc.: a seeded run repeats its text, another seed changes it; a value the
    runtime refuses is a clear error."""
    cli, model = cli_paths(built)
    args = [cli, model, "--prompt", "ROMEO:", "--length", "40", "--temperature", "0",
            "--cim_adc_bits", "6", "--cim_out_noise", "1"]  # fmt: skip
    texts = []
    for seed in ("5", "5", "6"):
        code, out = run([*args, "--cim_noise_seed", seed], timeout=60)
        assert code == 0, out
        texts.append(out.split("---")[0])
    assert texts[0] == texts[1] and texts[0] != texts[2], texts
    assert "CIM non-ideal (simulated): ADC 6 bits (0: none), range 1 x each tile's bound" in out
    # calibrated ranges alone (no ADC, no noise) change nothing: the exact text
    exact = run(args[:8], timeout=60)[1].split("---")[0]
    code, out = run([*args[:8], "--cim_adc_calibrate"], timeout=60)
    assert code == 0 and out.split("---")[0] == exact, (exact, out)
    code, out = run([*args, "--cim_adc_calibrate"], timeout=60)
    assert code == 0 and "each tile's calibrated peak" in out, out
    code, out = run([cli, model, "--cim_adc_bits", "1"], timeout=60)
    assert_clean_error(code, out, 1, "PICOGPT_ERR_ARGUMENT", "cim_nonideal.adc_bits 1: need 2..16")


def test_cli_model_path_errors(built, tmp_path):
    cli, _ = cli_paths(built)
    code, out = run([cli, str(tmp_path)], timeout=60)  # was an ASan abort on a huge size
    assert_clean_error(code, out, 1, f"model file '{tmp_path}' is a directory", ".tflite")
    code, out = run([cli, str(tmp_path / "missing.tflite")], timeout=60)
    assert_clean_error(code, out, 1, "cannot open model file", "No such file")
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    code, out = run([cli, str(empty)], timeout=60)
    assert_clean_error(code, out, 1, "has 0 bytes; a model has 1..")


def test_cli_reads_the_vocabulary_strictly(built, tmp_path):
    """A model whose metadata vocabulary is damaged is refused with what and where."""
    cli, model = cli_paths(built)
    with open(model, "rb") as f:
        good = f.read()
    assert good.count(b'"itos":[') == 1
    for old, new, message in [
        (b'"itos":[', b'"itoz":[', 'no "itos" member'),
        (b'"itos":["', b'"itos":[7', '"itos" must hold strings only'),
        (b'"itos":["\\n"', b'"itos":["\\q"', "unknown escape in a string at byte"),
    ]:
        assert len(old) == len(new) and good.count(old) == 1, old
        bad = tmp_path / "bad.tflite"
        bad.write_bytes(good.replace(old, new))
        code, out = run([cli, str(bad), "--length", "1"], timeout=60)
        assert_clean_error(code, out, 1, "the vocabulary in its metadata is unreadable", message)


def test_configure_follows_the_model_kind(built):
    """A host configure pointed at a header of the other kind follows it; an explicit
    PICOGPT_USE_KV_CACHE that contradicts the model stops the configure and says how to fix it."""
    scratch = os.path.join(ROOT, "build", "kind-check")
    base = ["cmake", "-S", ROOT, "-B", scratch, "-DPICOGPT_MODEL_TFLITE="]
    code, out = run([*base, "-DPICOGPT_MODEL_DATA=model_data_full", "-UPICOGPT_USE_KV_CACHE"], 300)
    assert code == 0, out[-4000:]
    assert "model_data_full.cc, a full-window (--no_kv_cache) model" in out, out[-3000:]
    code, out = run(
        [*base, "-DPICOGPT_MODEL_DATA=model_data_full", "-DPICOGPT_USE_KV_CACHE=ON"], 300
    )
    flat = " ".join(out.split())
    assert code != 0
    assert "PICOGPT_USE_KV_CACHE=ON builds for a KV-cache step model" in flat, flat[-3000:]
    assert "is a full-window (--no_kv_cache) model" in flat and "Fix:" in flat, flat[-3000:]
    code, out = run([*base, "-DPICOGPT_MODEL_DATA=model_data", "-DPICOGPT_USE_KV_CACHE=maybe"], 300)
    assert code != 0 and "PICOGPT_USE_KV_CACHE=maybe: expected ON, OFF or empty" in " ".join(
        out.split()
    )
    code, out = run([*base, "-DPICOGPT_MODEL_DATA=nope", "-DPICOGPT_USE_KV_CACHE="], 300)
    # CMake wraps long messages, so where the line breaks depends on the checkout's path
    assert code != 0 and re.search(r"PICOGPT_MODEL_DATA=nope:\s+\S+nope\.h", out), out[-3000:]
