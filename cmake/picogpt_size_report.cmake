# Size report of the PicoGPT firmware, run after every link (cim_runtime/firmware/).
#
#   cmake -DSIZE_TOOL=riscv64-unknown-elf-size -DNM_TOOL=riscv64-unknown-elf-nm -DELF=fw.elf \
#         -DFLASH_SIZE=524288 -DRAM_SIZE=163840 -DSTACK_SIZE=8192 -DTARGET_DESC=rv32imac/ilp32 \
#         -P cmake/picogpt_size_report.cmake
#
# Flash = .init + .text (code and read-only data, the model included) + the .data/.tdata load
# image. RAM = .data + .tdata + .tbss + .bss (runtime state, tensor arena) + the stack reserve.
# The linker already refuses a firmware that overflows its regions (picogpt_memory.ld); this
# script says where the bytes go and fails the same way if a number is over.
foreach(var SIZE_TOOL NM_TOOL ELF FLASH_SIZE RAM_SIZE STACK_SIZE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "picogpt_size_report.cmake: -D${var}=... is required")
  endif()
endforeach()

execute_process(COMMAND ${SIZE_TOOL} -A -d ${ELF} RESULT_VARIABLE rc OUTPUT_VARIABLE sections)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SIZE_TOOL} -A ${ELF} failed")
endif()
foreach(s init text toc data tdata tbss bss preserve)
  set(sec_${s} 0)
  if(sections MATCHES "\n\\.${s}[ \t]+([0-9]+)")
    set(sec_${s} ${CMAKE_MATCH_1})
  endif()
endforeach()

# Named objects and code size from the symbol table (sizes of T/t symbols = functions).
execute_process(COMMAND ${NM_TOOL} -S ${ELF} RESULT_VARIABLE rc OUTPUT_VARIABLE symbols)
string(REPLACE "\n" ";" symbols "${symbols}")
set(code 0)
set(model 0)
set(arena 0)
set(runtime_state 0)
foreach(line IN LISTS symbols)
  if(line MATCHES "^[0-9a-f]+ ([0-9a-f]+) ([A-Za-z]) (.+)$")
    math(EXPR bytes "0x${CMAKE_MATCH_1}")
    set(type ${CMAKE_MATCH_2})
    set(name ${CMAKE_MATCH_3})
    if(type STREQUAL "T" OR type STREQUAL "t")
      math(EXPR code "${code} + ${bytes}")
    endif()
    if(name STREQUAL "g_pico_gpt_model_data")
      set(model ${bytes})
    elseif(name STREQUAL "g_arena")
      set(arena ${bytes})
    elseif(name STREQUAL "g_rt")
      set(runtime_state ${bytes})
    endif()
  endif()
endforeach()

math(EXPR data_image "${sec_data} + ${sec_tdata}")
math(EXPR flash "${sec_init} + ${sec_text} + ${sec_toc} + ${data_image}")
math(EXPR rodata "${sec_init} + ${sec_text} + ${sec_toc} - ${code}")
math(EXPR bss "${sec_tbss} + ${sec_bss} + ${sec_preserve}")
math(EXPR other_bss "${bss} - ${arena} - ${runtime_state}")
math(EXPR ram "${data_image} + ${bss} + ${STACK_SIZE}")
math(EXPR flash_pct "(${flash} * 1000 + ${FLASH_SIZE} / 2) / ${FLASH_SIZE}")
math(EXPR ram_pct "(${ram} * 1000 + ${RAM_SIZE} / 2) / ${RAM_SIZE}")
math(EXPR flash_free "${FLASH_SIZE} - ${flash}")
math(EXPR ram_free "${RAM_SIZE} - ${ram}")

function(pct value out)
  math(EXPR whole "${value} / 10")
  math(EXPR frac "${value} % 10")
  set(${out} "${whole}.${frac}%" PARENT_SCOPE)
endfunction()
pct(${flash_pct} flash_p)
pct(${ram_pct} ram_p)
get_filename_component(name ${ELF} NAME)
message(STATUS "Size report: ${name} (${TARGET_DESC})\n"
  "  flash ${flash} / ${FLASH_SIZE} bytes (${flash_p}, ${flash_free} free): "
  "code ${code}, rodata ${rodata} (model ${model}), .data image ${data_image}\n"
  "  RAM   ${ram} / ${RAM_SIZE} bytes (${ram_p}, ${ram_free} free): "
  "tensor arena ${arena} + runtime state ${runtime_state} + other .bss ${other_bss} "
  "+ .data ${data_image} + stack ${STACK_SIZE}")
if(flash GREATER FLASH_SIZE OR ram GREATER RAM_SIZE)
  message(FATAL_ERROR "PicoGPT firmware over its memory budget (see the size report above)")
endif()
