# The model the host apps and the firmware embed, and its kind, decided at configure time
# (docs/firmware.md, "The model"). One rule for both:
#
#   PICOGPT_MODEL_TFLITE  an exported .tflite to embed; wins when set. The build turns it into
#                         C arrays in the build directory (cim_runtime/apps/embed_model.py).
#   PICOGPT_MODEL_DATA    otherwise: which C arrays of the source tree to embed, by name:
#                         model_data (default; what tf_convert_to_tflite.py writes) or
#                         model_data_full (the committed reference full-window model), i.e.
#                         cim_runtime/include/pico_gpt/<name>.h + cim_runtime/src/pico_gpt/<name>.cc.
#   PICOGPT_USE_KV_CACHE  empty (default): the build follows the kind the model records (the
#                         header's PICOGPT_USE_KV_CACHE, a .tflite's metadata "kind").
#                         ON / OFF: the kind this build is for; a model of the other kind stops
#                         the configure with a message that names both kinds and the fix.
#
# picogpt_select_model() sets PICOGPT_MODEL_FOUND, PICOGPT_MODEL_KV_CACHE (1: KV-cache step
# model, 0: full-window model), PICOGPT_MODEL_DESC and PICOGPT_MODEL_OPS (the builtin ops the
# model uses, a list; empty when a header predates the list), and creates the OBJECT library
# picogpt_model_data (the model's C arrays) whose users include "embedded_model.h" for the
# model's header (it forwards to the right one).
set(PICOGPT_MODEL_TFLITE "" CACHE FILEPATH
    "Exported .tflite to embed (default: the source tree's C arrays, PICOGPT_MODEL_DATA)")
set(PICOGPT_MODEL_DATA "model_data" CACHE STRING
    "Source-tree C arrays to embed: model_data (tf_convert_to_tflite.py's) or model_data_full")
set(PICOGPT_USE_KV_CACHE "" CACHE STRING
    "Model kind this build is for: ON = KV-cache step model, OFF = full-window model; empty = the embedded model's kind")

function(picogpt_kind_name kv out)
  if(kv)
    set(${out} "KV-cache step model" PARENT_SCOPE)
  else()
    set(${out} "full-window (--no_kv_cache) model" PARENT_SCOPE)
  endif()
endfunction()

# required: ON for the firmware (no model is an error), OFF for the host apps (the CLI then
# needs a .tflite path).
function(picogpt_select_model required)
  set(gen ${CMAKE_BINARY_DIR}/generated/model)
  set(tree_header ${CMAKE_SOURCE_DIR}/cim_runtime/include/pico_gpt/${PICOGPT_MODEL_DATA}.h)
  set(tree_source ${CMAKE_SOURCE_DIR}/cim_runtime/src/pico_gpt/${PICOGPT_MODEL_DATA}.cc)
  set(PICOGPT_MODEL_FOUND OFF PARENT_SCOPE)

  # ---- where the model comes from, and the kind it records ----------------------------
  if(PICOGPT_MODEL_TFLITE)
    if(NOT EXISTS "${PICOGPT_MODEL_TFLITE}" OR IS_DIRECTORY "${PICOGPT_MODEL_TFLITE}")
      message(FATAL_ERROR "PICOGPT_MODEL_TFLITE=${PICOGPT_MODEL_TFLITE} is not a file; pass an "
                          "exported .tflite (tf_convert_to_tflite.py writes one)")
    endif()
    # The exporter's metadata is printable JSON inside the flatbuffer: "kind":"step"|"full".
    file(STRINGS "${PICOGPT_MODEL_TFLITE}" meta REGEX "\"kind\":\"(step|full)\"")
    string(REGEX MATCH "\"kind\":\"(step|full)\"" kind_json "${meta}")
    if(NOT kind_json)
      message(FATAL_ERROR "PICOGPT_MODEL_TFLITE=${PICOGPT_MODEL_TFLITE} has no pico_gpt metadata "
                          "kind (\"kind\":\"step\" or \"full\"): not a model tf_convert_to_tflite.py "
                          "exported")
    endif()
    if(CMAKE_MATCH_1 STREQUAL "step")
      set(kv 1)
    else()
      set(kv 0)
    endif()
    set(header ${gen}/include/pico_gpt/model_data.h)
    set(source ${gen}/src/pico_gpt/model_data.cc)
    add_custom_command(
      OUTPUT ${header} ${source}
      COMMAND ${PICOGPT_PYTHON_CMD} ${CMAKE_SOURCE_DIR}/cim_runtime/apps/embed_model.py
              ${PICOGPT_MODEL_TFLITE} ${gen}
      DEPENDS ${PICOGPT_MODEL_TFLITE} ${CMAKE_SOURCE_DIR}/cim_runtime/apps/embed_model.py
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
      COMMENT "Embedding ${PICOGPT_MODEL_TFLITE} (build-directory model_data)"
      VERBATIM)
    # Its ops, for a firmware that links only their kernels (PICOGPT_MODEL_OPS below).
    execute_process(
      COMMAND ${PICOGPT_PYTHON_CMD} -c
              "import sys; from tf_model.export.flatbuffer import describe; print(' '.join(sorted(describe(open(sys.argv[1], 'rb').read())['ops'])))"
              ${PICOGPT_MODEL_TFLITE}
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} RESULT_VARIABLE ops_rc OUTPUT_VARIABLE ops
      ERROR_VARIABLE ops_err OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT ops_rc EQUAL 0)
      message(FATAL_ERROR "PICOGPT_MODEL_TFLITE=${PICOGPT_MODEL_TFLITE}: cannot list its ops "
                          "(${PICOGPT_PYTHON_CMD}):\n${ops_err}")
    endif()
    set(desc "${PICOGPT_MODEL_TFLITE}")
    set(include_dir ${gen}/include)
  elseif(EXISTS ${tree_header} AND EXISTS ${tree_source})
    file(STRINGS ${tree_header} define REGEX "^#define PICOGPT_USE_KV_CACHE [01]$")
    if(NOT define)
      message(FATAL_ERROR "${tree_header} does not record its model kind "
                          "(#define PICOGPT_USE_KV_CACHE 0 or 1); re-export it with "
                          "tf_convert_to_tflite.py")
    endif()
    string(REGEX REPLACE ".* " "" kv "${define}")
    # A header from before the op list: empty ops, every kernel is linked.
    file(STRINGS ${tree_header} ops REGEX "^#define PICOGPT_MODEL_OPS \"[A-Z0-9_ ]*\"$")
    string(REGEX REPLACE "^#define PICOGPT_MODEL_OPS \"(.*)\"$" "\\1" ops "${ops}")
    set(header ${tree_header})
    set(source ${tree_source})
    set(desc "cim_runtime/src/pico_gpt/${PICOGPT_MODEL_DATA}.cc")
    set(include_dir ${CMAKE_SOURCE_DIR}/cim_runtime/include)
  elseif(NOT PICOGPT_MODEL_DATA STREQUAL "model_data")
    message(FATAL_ERROR "PICOGPT_MODEL_DATA=${PICOGPT_MODEL_DATA}: ${tree_header} or ${tree_source} "
                        "does not exist (model_data: tf_convert_to_tflite.py's output; "
                        "model_data_full: the committed reference full-window model)")
  elseif(required)
    message(FATAL_ERROR
      "No model to embed: ${tree_source} (and its header) is missing.\n"
      "Export one: uv run python tf_convert_to_tflite.py --model_dir DIR (docs/firmware.md), "
      "or configure with -DPICOGPT_MODEL_TFLITE=path/to/model.tflite.")
  else()
    return()
  endif()

  # ---- the build's kind: the model's, unless PICOGPT_USE_KV_CACHE says otherwise -------------
  picogpt_kind_name(${kv} model_kind)
  if(NOT PICOGPT_USE_KV_CACHE STREQUAL "")
    if(NOT PICOGPT_USE_KV_CACHE MATCHES "^(ON|OFF|TRUE|FALSE|YES|NO|1|0|on|off|true|false|yes|no)$")
      message(FATAL_ERROR "PICOGPT_USE_KV_CACHE=${PICOGPT_USE_KV_CACHE}: expected ON, OFF or empty "
                          "(empty: the embedded model's kind)")
    endif()
    if(PICOGPT_USE_KV_CACHE)
      set(want 1)
      set(fix "export a KV-cache model (uv run python tf_convert_to_tflite.py --model_dir DIR, without --no_kv_cache) or embed one with -DPICOGPT_MODEL_TFLITE=...")
    else()
      set(want 0)
      set(fix "export a full-window model (uv run python tf_convert_to_tflite.py --model_dir DIR --no_kv_cache) or embed the reference one with -DPICOGPT_MODEL_DATA=model_data_full")
    endif()
    if(NOT want EQUAL kv)
      picogpt_kind_name(${want} want_kind)
      message(FATAL_ERROR
        "PICOGPT_USE_KV_CACHE=${PICOGPT_USE_KV_CACHE} builds for a ${want_kind}, but the "
        "embedded model ${desc} is a ${model_kind}.\n"
        "Fix: ${fix}; or drop the setting so that the build follows the model "
        "(-UPICOGPT_USE_KV_CACHE, or -DPICOGPT_USE_KV_CACHE= ; a value cached by an earlier "
        "configure counts as set).")
    endif()
  endif()

  # ---- the model's C arrays and the header that names them ------------------------------
  file(MAKE_DIRECTORY ${gen})
  file(CONFIGURE OUTPUT ${gen}/embedded_model.h CONTENT
       "/* Generated by cmake/picogpt_model.cmake: the embedded model's header (${model_kind}). */\n#include \"${header}\"\n")
  add_library(picogpt_model_data OBJECT ${source})
  target_include_directories(picogpt_model_data PUBLIC ${gen})
  target_include_directories(picogpt_model_data PRIVATE ${include_dir})
  set(PICOGPT_MODEL_FOUND ON PARENT_SCOPE)
  set(PICOGPT_MODEL_KV_CACHE ${kv} PARENT_SCOPE)
  separate_arguments(ops UNIX_COMMAND "${ops}")
  set(PICOGPT_MODEL_OPS "${ops}" PARENT_SCOPE)
  set(PICOGPT_MODEL_DESC "${desc}, a ${model_kind}" PARENT_SCOPE)
endfunction()
