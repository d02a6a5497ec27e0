# SPDX-License-Identifier: MIT
# Compiles a set of shaders (a folder's *.comp and the variants its variants.txt
# lists) to SPIR-V with glslangValidator and embeds them as uint32_t arrays, with a
# generated header of an enum and a table, so pipelines are looked up by enum:
# vkphi_shaders(shaders ...) makes the runtime's (shaders.h: SHADER_<NAME>,
# shader_table), tests/CMakeLists.txt the tests' own kernels (test_shaders.h:
# TEST_SHADER_<NAME>, test_shader_table). The entries are struct shader_code
# (runtime/gpu/shader_code.h), what pipeline_desc takes.
find_program(GLSLANG glslangValidator REQUIRED)
# The host tool that turns NV cooperative-matrix SPIR-V into KHR (see its header).
add_executable(spv_coopmat ${CMAKE_SOURCE_DIR}/cmake/spv_coopmat.c)

# The types vkphi runs, from the one table of types (runtime/core/quant_types.h):
# X(NAME, id, values per block, bytes per block, yes). One value per block: a float type.
set(_types_h ${CMAKE_SOURCE_DIR}/runtime/core/quant_types.h)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_types_h})
file(READ ${_types_h} _types_text)
string(REGEX MATCHALL "X\\([A-Z0-9_]+, *[0-9]+, *[0-9]+, *[0-9]+, *yes\\)" _type_lines "${_types_text}")
set(_run_types)
foreach(line ${_type_lines})
  string(REGEX REPLACE "^ *X\\(([A-Z0-9_]+), *[0-9]+, *([0-9]+),.*" "\\1;\\2" _f "${line}")
  list(GET _f 0 _t)
  list(GET _f 1 _blck)
  list(APPEND _run_types ${_t})
  set(_blck_${_t} ${_blck})
endforeach()
list(LENGTH _run_types _n_run)
if(_n_run LESS 3)
  message(FATAL_ERROR "found ${_n_run} types vkphi runs in ${_types_h}: its X(...) lines changed form")
endif()

# An entry "name|source|DEF1,DEF2" into its three fields.
macro(vkphi_shader_entry entry out_name out_src out_defs)
  string(REPLACE "|" ";" _f "${entry}")
  list(GET _f 0 ${out_name})
  list(GET _f 1 ${out_src})
  list(LENGTH _f _n)
  set(${out_defs} "")
  if(_n GREATER 2)
    list(GET _f 2 ${out_defs})
  endif()
endmacro()

# vkphi_shaders(NAME SOURCE_DIR VARIANTS TARGET): the shaders of SOURCE_DIR (which
# include shaders/common/ as "common/..."), built into ${CMAKE_BINARY_DIR}/NAME/ with
# NAME.h and NAME.c: for NAME "shaders", enum shader_id { SHADER_<X>, ..., SHADER_COUNT },
# shader_table and arrays spv_<x>; for "test_shaders", TEST_SHADER_<X>, test_shader_table
# and test_spv_<x>. TARGET: a custom target that builds them all; TARGET_SOURCE and
# TARGET_INCLUDE_DIR are set for the library that compiles NAME.c.
function(vkphi_shaders NAME SOURCE_DIR VARIANTS TARGET)
  string(REGEX REPLACE "s$" "" _base ${NAME}) # shader, test_shader
  string(TOUPPER ${_base} _BASE)
  string(REPLACE "shader" "spv" _spv ${_base}) # the arrays' prefix
  set(_out_dir ${CMAKE_BINARY_DIR}/${NAME})
  file(MAKE_DIRECTORY ${_out_dir})

  set(_entries) # name;source;defines(comma-separated)
  # variants.txt: "name source.comp DEF=1 DEF2" per line, '#' comments; and the weight
  # families, "family NAME FLOAT_SOURCE[,DEF...] QUANT_SOURCE[,DEF...] [except TYPE...]":
  # one build NAME_<type> per type vkphi runs (but the exceptions), from the float source
  # with W_<TYPE> defined (none for F32) or from the quantized one with <TYPE> defined.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${VARIANTS})
  set(_family_sources) # built only as family members, not under their own names
  file(STRINGS ${VARIANTS} _lines)
  foreach(line ${_lines})
    string(STRIP "${line}" line)
    if(line STREQUAL "" OR line MATCHES "^#")
      continue()
    endif()
    string(REGEX REPLACE "[ \t]+" ";" parts "${line}")
    list(GET parts 0 name)
    if(name STREQUAL "family")
      list(GET parts 1 fam)
      list(GET parts 2 fsrc)
      list(GET parts 3 qsrc)
      set(except)
      list(LENGTH parts _np)
      if(_np GREATER 5) # "except TYPE..."
        list(SUBLIST parts 5 -1 except)
      endif()
      string(REPLACE "," ";" fsrc "${fsrc}")
      string(REPLACE "," ";" qsrc "${qsrc}")
      list(POP_FRONT fsrc fcomp)
      list(POP_FRONT qsrc qcomp)
      list(APPEND _family_sources ${fcomp} ${qcomp})
      foreach(t ${_run_types})
        if(t IN_LIST except)
          continue()
        endif()
        string(TOLOWER "${fam}_${t}" vname)
        if(_blck_${t} EQUAL 1)
          set(defs ${fsrc})
          if(NOT t STREQUAL "F32")
            list(APPEND defs W_${t})
          endif()
          set(comp ${fcomp})
        else()
          set(defs ${qsrc} ${t})
          set(comp ${qcomp})
        endif()
        string(REPLACE ";" "," defs "${defs}")
        list(APPEND _entries "${vname}|${SOURCE_DIR}/${comp}|${defs}")
      endforeach()
    else()
      list(GET parts 1 srcname)
      list(REMOVE_AT parts 0 1)
      string(REPLACE ";" "," defs "${parts}")
      list(APPEND _entries "${name}|${SOURCE_DIR}/${srcname}|${defs}")
    endif()
  endforeach()
  # Every other *.comp of the folder is built once under its own name with no defines.
  file(GLOB _comp CONFIGURE_DEPENDS ${SOURCE_DIR}/*.comp)
  foreach(src ${_comp})
    get_filename_component(name ${src} NAME_WE)
    get_filename_component(file ${src} NAME)
    if(NOT file IN_LIST _family_sources)
      list(APPEND _entries "${name}|${src}|")
    endif()
  endforeach()

  # Every module that uses subgroup arithmetic is also built without it (define
  # NO_SUBGROUP_ARITH, name <name>_nosg): a device without subgroupAdd in compute
  # shaders must not even be handed a module that declares the capability.
  set(_nosg_entries)
  foreach(e ${_entries})
    vkphi_shader_entry("${e}" name src defs)
    file(READ ${src} _text)
    if(_text MATCHES "GL_KHR_shader_subgroup_arithmetic")
      if(defs STREQUAL "")
        set(defs "NO_SUBGROUP_ARITH")
      else()
        set(defs "${defs},NO_SUBGROUP_ARITH")
      endif()
      list(APPEND _nosg_entries "${name}_nosg|${src}|${defs}")
      set(_nosg_of_${name} ${name}_nosg)
    endif()
  endforeach()
  list(APPEND _entries ${_nosg_entries})

  set(_headers)
  set(_enum "")
  set(_table "")
  set(_includes "")
  foreach(e ${_entries})
    vkphi_shader_entry("${e}" name src defs)
    set(dflags)
    if(NOT defs STREQUAL "")
      string(REPLACE "," ";" dl "${defs}")
      foreach(d ${dl})
        list(APPEND dflags "-D${d}")
      endforeach()
    endif()
    set(var ${_spv}_${name})
    set(out ${_out_dir}/${var}.h)
    file(READ ${src} _text)
    if(_text MATCHES "GL_NV_cooperative_matrix")
      # Cooperative-matrix kernels: compiled as NV, rewritten to KHR (cmake/spv_coopmat.c).
      # Two steps, so that the depfile (which names the .spv) tracks the included files.
      add_custom_command(
        OUTPUT ${out}.spv
        COMMAND ${GLSLANG} --quiet --target-env vulkan1.2 ${dflags}
                -I${CMAKE_SOURCE_DIR}/shaders --depfile ${out}.d -o ${out}.spv ${src}
        DEPENDS ${src}
        DEPFILE ${out}.d
        COMMENT "glslang ${name} (cooperative matrix)"
        VERBATIM)
      add_custom_command(
        OUTPUT ${out}
        COMMAND spv_coopmat ${out}.spv ${var} ${out}
        DEPENDS ${out}.spv spv_coopmat
        COMMENT "spv_coopmat ${name}"
        VERBATIM)
    else()
      add_custom_command(
        OUTPUT ${out}
        COMMAND ${GLSLANG} --quiet --target-env vulkan1.2 ${dflags}
                -I${CMAKE_SOURCE_DIR}/shaders --vn ${var}
                --depfile ${out}.d -o ${out} ${src}
        DEPENDS ${src}
        DEPFILE ${out}.d
        COMMENT "glslang ${name}"
        VERBATIM)
    endif()
    list(APPEND _headers ${out})
    string(TOUPPER ${name} uname)
    string(APPEND _enum "    ${_BASE}_${uname},\n")
    set(nosg "NULL")
    if(DEFINED _nosg_of_${name})
      string(TOUPPER ${_nosg_of_${name}} unosg)
      set(nosg "&${_base}_table[${_BASE}_${unosg}]")
    endif()
    string(APPEND _table "    {${var}, sizeof ${var}, \"${name}\", ${nosg}},\n")
    string(APPEND _includes "#include \"${var}.h\"\n")
  endforeach()

  file(CONFIGURE OUTPUT ${_out_dir}/${NAME}.h CONTENT
"// Generated by cmake/shaders.cmake: the embedded SPIR-V of every shader of ${SOURCE_DIR}.
#pragma once
#include \"shader_code.h\"
enum ${_base}_id {
${_enum}    ${_BASE}_COUNT
};
extern const struct shader_code ${_base}_table[${_BASE}_COUNT];
")
  set(_source ${_out_dir}/${NAME}.c)
  file(CONFIGURE OUTPUT ${_source}.in CONTENT
"// Generated by cmake/shaders.cmake.
#include <stddef.h>

#include \"${NAME}.h\"
${_includes}
const struct shader_code ${_base}_table[${_BASE}_COUNT] = {
${_table}};
")
  add_custom_command(OUTPUT ${_source}
    COMMAND ${CMAKE_COMMAND} -E copy ${_source}.in ${_source}
    DEPENDS ${_source}.in ${_headers})
  add_custom_target(${TARGET} DEPENDS ${_headers} ${_source})
  set(${TARGET}_SOURCE ${_source} PARENT_SCOPE)
  set(${TARGET}_INCLUDE_DIR ${_out_dir} PARENT_SCOPE)
endfunction()

# The runtime's shaders.
vkphi_shaders(shaders ${CMAKE_SOURCE_DIR}/shaders ${CMAKE_SOURCE_DIR}/shaders/variants.txt vkphi_shaders)
