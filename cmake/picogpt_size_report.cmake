# Links the PicoGPT firmware and prints its size report; fails with the numbers when it does
# not fit. Used as the firmware's C_LINKER_LAUNCHER (cim_runtime/firmware/CMakeLists.txt):
#
#   cmake -DMAP=picogpt_firmware.elf.map -DFLASH_ORIGIN=0x80000000 -DFLASH_SIZE=524288 \
#         -DRAM_ORIGIN=0x80080000 -DRAM_SIZE=163840 -DTARGET_DESC=rv32imac/ilp32 \
#         -P cmake/picogpt_size_report.cmake \
#         -- <the link command CMake generated>
#
# Flash = .init + .text (code and read-only data, the model included) + the .data/.tdata load
# image. RAM = .data + .tdata + .tbss + .bss (runtime state, tensor arena) + the stack reserve
# (picolibc.ld's .stack section). Both are measured from the region's start to the end of its
# last section, so alignment padding counts as used.
# The numbers come from the linker map, which ld writes even when a region overflows, so a
# firmware that does not fit still gets a full report saying where its bytes went.
foreach(var MAP FLASH_ORIGIN FLASH_SIZE RAM_ORIGIN RAM_SIZE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "picogpt_size_report.cmake: -D${var}=... is required")
  endif()
endforeach()

# ---- link --------------------------------------------------------------------------------
set(link_cmd)
set(in_cmd OFF)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(in_cmd)
    list(APPEND link_cmd "${CMAKE_ARGV${i}}")
  elseif(CMAKE_ARGV${i} STREQUAL "--")
    set(in_cmd ON)
  endif()
endforeach()
if(NOT link_cmd)
  message(FATAL_ERROR "picogpt_size_report.cmake: no link command after --")
endif()
file(REMOVE ${MAP}) # a stale map must not be reported if the linker fails before writing one
execute_process(COMMAND ${link_cmd} RESULT_VARIABLE link_rc OUTPUT_VARIABLE link_out
                ERROR_VARIABLE link_out)
if(link_out)
  message(NOTICE "${link_out}")
endif()
if(NOT EXISTS ${MAP})
  message(FATAL_ERROR "link failed (exit status ${link_rc}) before writing ${MAP}")
endif()

# ---- sizes from the map --------------------------------------------------------------------
file(STRINGS ${MAP} lines)
foreach(s init text toc data tdata tbss bss preserve stack)
  set(sec_${s} 0)
endforeach()
set(code 0)
set(model 0)
set(arena 0)
set(runtime_state 0)
set(flash_end 0)
set(ram_end 0)
set(in_layout OFF)
set(pending "")
foreach(line IN LISTS lines)
  if(line MATCHES "^Linker script and memory map")
    set(in_layout ON)
  endif()
  if(NOT in_layout)
    continue()
  endif()
  # Output section: ".data  0x80080000  0x1c load address 0x80084a00"; the regions' real
  # extent (alignment padding included) is where the last section (or load image) ends.
  if(line MATCHES "^\\.([a-z_]+)[ \t]+0x([0-9a-f]+)[ \t]+0x([0-9a-f]+)( load address 0x([0-9a-f]+))?")
    set(sec ${CMAKE_MATCH_1})
    if(DEFINED sec_${sec})
      math(EXPR sec_${sec} "0x${CMAKE_MATCH_3}")
      set(start "0x${CMAKE_MATCH_2}")
      if(CMAKE_MATCH_5)
        set(start "0x${CMAKE_MATCH_5}")
      endif()
      math(EXPR end "${start} + 0x${CMAKE_MATCH_3}")
      if(sec MATCHES "^(init|text|toc|data|tdata)$" AND end GREATER flash_end)
        set(flash_end ${end})
      endif()
      if(sec MATCHES "^(tbss|bss|preserve|stack)$" AND end GREATER ram_end)
        set(ram_end ${end})
      endif()
    endif()
    set(pending "")
    continue()
  endif()
  # Input section, on one line or with its name alone on the line before the numbers.
  set(name "")
  if(line MATCHES "^ (\\.[^ \t]+)[ \t]+0x([0-9a-f]+)[ \t]+0x([0-9a-f]+)[ \t]+")
    set(name ${CMAKE_MATCH_1})
    set(size ${CMAKE_MATCH_3})
  elseif(line MATCHES "^ (\\.[^ \t]+)$")
    set(pending ${CMAKE_MATCH_1})
    continue()
  elseif(pending AND line MATCHES "^[ \t]+0x([0-9a-f]+)[ \t]+0x([0-9a-f]+)[ \t]+")
    set(name ${pending})
    set(size ${CMAKE_MATCH_2})
  endif()
  set(pending "")
  if(name STREQUAL "")
    continue()
  endif()
  math(EXPR bytes "0x${size}")
  if(name MATCHES "^\\.(text|init)([.].*)?$")
    math(EXPR code "${code} + ${bytes}")
  elseif(name MATCHES "g_pico_gpt_model_data$")
    set(model ${bytes})
  elseif(name MATCHES "\\.g_arena$")
    set(arena ${bytes})
  elseif(name MATCHES "\\.g_rt$")
    set(runtime_state ${bytes})
  endif()
endforeach()

# ---- report ----------------------------------------------------------------------------
math(EXPR data_image "${sec_data} + ${sec_tdata}")
math(EXPR flash "${flash_end} - ${FLASH_ORIGIN}")
math(EXPR rodata "${sec_init} + ${sec_text} + ${sec_toc} - ${code}")
math(EXPR bss "${sec_tbss} + ${sec_bss} + ${sec_preserve}")
math(EXPR other_bss "${bss} - ${arena} - ${runtime_state}")
math(EXPR ram "${ram_end} - ${RAM_ORIGIN}")
math(EXPR padding "${ram} - ${data_image} - ${bss} - ${sec_stack}")

function(describe used total out)
  math(EXPR permille "(${used} * 1000 + ${total} / 2) / ${total}")
  math(EXPR whole "${permille} / 10")
  math(EXPR frac "${permille} % 10")
  if(used GREATER total)
    math(EXPR over "${used} - ${total}")
    set(${out} "${whole}.${frac}%, OVER BY ${over}" PARENT_SCOPE)
  else()
    math(EXPR free "${total} - ${used}")
    set(${out} "${whole}.${frac}%, ${free} free" PARENT_SCOPE)
  endif()
endfunction()
describe(${flash} ${FLASH_SIZE} flash_d)
describe(${ram} ${RAM_SIZE} ram_d)
get_filename_component(name ${MAP} NAME_WE)
message(STATUS "Size report: ${name} (${TARGET_DESC})\n"
  "  flash ${flash} / ${FLASH_SIZE} bytes (${flash_d}): code ${code}, read-only data ${rodata} "
  "(model ${model}), .data image ${data_image}\n"
  "  RAM   ${ram} / ${RAM_SIZE} bytes (${ram_d}): tensor arena ${arena} + runtime state "
  "${runtime_state} + other .bss ${other_bss} + .data ${data_image} + stack ${sec_stack} + alignment ${padding}")

set(problems "")
if(flash GREATER FLASH_SIZE)
  string(APPEND problems "\n  flash: code + read-only data (the model is ${model} bytes) need ${flash} "
         "bytes, PICOGPT_FW_FLASH_SIZE is ${FLASH_SIZE}")
endif()
if(ram GREATER RAM_SIZE)
  string(APPEND problems "\n  RAM: the tensor arena (${arena} bytes, see fw_arena.h), runtime state "
         "and stack need ${ram} bytes, PICOGPT_FW_RAM_SIZE is ${RAM_SIZE}")
endif()
if(problems)
  message(FATAL_ERROR "PicoGPT firmware does not fit its memory:${problems}")
endif()
if(NOT link_rc EQUAL 0)
  message(FATAL_ERROR "link failed (exit status ${link_rc}), see the linker's messages above")
endif()
