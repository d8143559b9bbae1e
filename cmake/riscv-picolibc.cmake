# CMake toolchain file: bare-metal RISC-V with Debian's gcc-riscv64-unknown-elf and
# picolibc-riscv64-unknown-elf (apt-get install gcc-riscv64-unknown-elf
# picolibc-riscv64-unknown-elf qemu-system-misc).
#
#   cmake --preset riscv-release                        # rv32imac / ilp32 (this file's default)
#   cmake -B build/rv64 --toolchain cmake/riscv-picolibc.cmake \
#         -DPICOGPT_RISCV_ARCH=rv64imac -DPICOGPT_RISCV_ABI=lp64
#
# The riscv64-unknown-elf compiler is multilib: -march/-mabi select the rv32 or rv64 libgcc and
# picolibc builds. Output and exit go through semihosting (picolibc's libsemihost and
# crt0-hosted), which QEMU's -semihosting implements; the memory map is set by the firmware's
# CMakeLists (cim_runtime/firmware/), not here, so this file suits any bare-metal target.
set(CMAKE_SYSTEM_NAME Generic)

set(PICOGPT_RISCV_ARCH "rv32imac" CACHE STRING "RISC-V -march (a multilib of riscv64-unknown-elf-gcc)")
set(PICOGPT_RISCV_ABI "ilp32" CACHE STRING "RISC-V -mabi matching PICOGPT_RISCV_ARCH")
if(PICOGPT_RISCV_ARCH MATCHES "^rv64")
  set(CMAKE_SYSTEM_PROCESSOR riscv64)
else()
  set(CMAKE_SYSTEM_PROCESSOR riscv32)
endif()

set(PICOGPT_RISCV_PREFIX "riscv64-unknown-elf-" CACHE STRING "Prefix of the cross tools")
find_program(PICOGPT_RISCV_GCC ${PICOGPT_RISCV_PREFIX}gcc)
if(NOT PICOGPT_RISCV_GCC)
  message(FATAL_ERROR "${PICOGPT_RISCV_PREFIX}gcc not found: apt-get install gcc-riscv64-unknown-elf "
                      "picolibc-riscv64-unknown-elf (or set PICOGPT_RISCV_PREFIX)")
endif()
set(CMAKE_C_COMPILER ${PICOGPT_RISCV_GCC})
set(CMAKE_CXX_COMPILER ${PICOGPT_RISCV_PREFIX}g++)
set(CMAKE_ASM_COMPILER ${PICOGPT_RISCV_GCC})
set(CMAKE_OBJCOPY ${PICOGPT_RISCV_PREFIX}objcopy CACHE FILEPATH "")
set(CMAKE_SIZE ${PICOGPT_RISCV_PREFIX}size CACHE FILEPATH "")
set(CMAKE_READELF ${PICOGPT_RISCV_PREFIX}readelf CACHE FILEPATH "")

# A bare-metal executable needs the firmware's memory map to link, so CMake's compiler checks
# build a static library instead.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

# medany: code and data live at 0x80000000 (QEMU virt DRAM), outside rv64's medlow range.
# picolibc.specs adds picolibc's include path when compiling and its libraries when linking.
set(_picogpt_riscv_flags "-march=${PICOGPT_RISCV_ARCH} -mabi=${PICOGPT_RISCV_ABI} -mcmodel=medany -specs=picolibc.specs -ffunction-sections -fdata-sections")
set(CMAKE_C_FLAGS_INIT "${_picogpt_riscv_flags}")
set(CMAKE_CXX_FLAGS_INIT "${_picogpt_riscv_flags} -fno-exceptions -fno-rtti")
set(CMAKE_ASM_FLAGS_INIT "${_picogpt_riscv_flags}")
# --oslib=semihost: stdio and exit() via semihosting; --crt0=hosted: the start-up code that
# passes main's return value to exit() (without it QEMU never exits). Not --crt0=semihost:
# its trap handler prints with printf (~2 KB of flash) and it keeps a copy of the command
# line (1.3 KB of RAM) that the firmware reads itself; the firmware installs its own handler.
set(CMAKE_EXE_LINKER_FLAGS_INIT "--oslib=semihost --crt0=hosted -Wl,--gc-sections")

# Libraries and headers come from the cross toolchain only (picolibc's libc.a carries libm, so
# the host's libm must not be found); programs (python, qemu) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/lib/picolibc/riscv64-unknown-elf/lib/${PICOGPT_RISCV_ARCH}/${PICOGPT_RISCV_ABI})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
