#!/usr/bin/env bash
# Runs a PicoGPT firmware ELF on QEMU's virt board with semihosting (docs/firmware.md).
#
#   scripts/run_qemu.sh build/riscv-release/cim_runtime/firmware/picogpt_firmware.elf
#   scripts/run_qemu.sh FIRMWARE.elf --prompt "O God, O God!" --tokens 64 --temperature 0 --seed 7
#
# Arguments after the ELF become the firmware's semihosting command line (QEMU -append), which
# the firmware splits at spaces. So that an argument arrives exactly as given, each one is
# written as one word: a backslash as \\, a space as \s, a newline as \n (the firmware undoes
# this; cim_runtime/firmware/picogpt_firmware.c). An empty argument cannot be carried and is an
# error (exit 2). PICOGPT_QEMU_APPEND=LINE instead passes LINE unchanged (already in that form).
# The firmware's output (its stdout and stderr) comes out on this
# script's stdout, QEMU's own messages on stderr; the exit status is the firmware's (semihosting
# exit), 124 if it did not finish within PICOGPT_QEMU_TIMEOUT seconds (default 600).
# qemu-system-riscv32 or -riscv64 is picked from the ELF class; QEMU=... overrides it.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 FIRMWARE.elf [--prompt TEXT] [--tokens N] [--seed S] [--temperature T] [--top_k K]" >&2
  exit 2
fi
elf=$1
shift
if [ ! -f "$elf" ]; then
  echo "run_qemu.sh: no such firmware: $elf (build it: cmake --build --preset riscv-release-build)" >&2
  exit 2
fi
case "$(od -An -tu1 -j4 -N1 "$elf" | tr -d ' ')" in # ELF header byte 4: 1 = 32-bit, 2 = 64-bit
  1) qemu=${QEMU:-qemu-system-riscv32} ;;
  2) qemu=${QEMU:-qemu-system-riscv64} ;;
  *) echo "run_qemu.sh: $elf is not an ELF file" >&2; exit 2 ;;
esac
if ! command -v "$qemu" >/dev/null; then
  echo "run_qemu.sh: $qemu not found (apt-get install qemu-system-misc)" >&2
  exit 127
fi
timeout_s=${PICOGPT_QEMU_TIMEOUT:-600}

# -bios none: no firmware before ours, execution starts at the ELF entry in M-mode.
# -icount shift=0,sleep=off: one virtual nanosecond per instruction and no wall-clock warping,
#   so rdinstret/rdcycle count retired instructions exactly and runs are deterministic.
# Semihosting console on a stdio chardev: guest output on stdout; no serial port, monitor or
#   display. stdin is /dev/null so QEMU leaves the terminal's settings alone.
args=(-M virt -bios none -display none -serial none -monitor none
      -chardev stdio,id=semihost -semihosting-config enable=on,target=native,chardev=semihost
      -icount shift=0,sleep=off -kernel "$elf")
if [ -n "${PICOGPT_QEMU_APPEND:-}" ]; then
  # A command line already in the firmware's form (escapes included), passed as it is.
  if [ $# -gt 0 ]; then
    echo "run_qemu.sh: give the firmware's options either as arguments or in PICOGPT_QEMU_APPEND, not both" >&2
    exit 2
  fi
  args+=(-append "$PICOGPT_QEMU_APPEND")
elif [ $# -gt 0 ]; then
  bs='\' space=' ' newline=$'\n'
  words=()
  n=0
  for arg in "$@"; do
    n=$((n + 1))
    if [ -z "$arg" ]; then
      echo "run_qemu.sh: argument $n after the ELF is empty; the firmware's command line cannot carry an empty word" >&2
      exit 2
    fi
    word=${arg//"$bs"/"$bs$bs"}
    word=${word//"$space"/"${bs}s"}
    word=${word//"$newline"/"${bs}n"}
    words+=("$word")
  done
  args+=(-append "${words[*]}")
fi

status=0
timeout --foreground -k 5 "$timeout_s" "$qemu" "${args[@]}" </dev/null || status=$?
if [ "$status" -eq 124 ]; then
  echo "run_qemu.sh: $elf did not finish within ${timeout_s} s (PICOGPT_QEMU_TIMEOUT)" >&2
fi
exit "$status"
