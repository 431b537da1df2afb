# The CPU sources of fastdl._C, by kind (see docs/layout.md):
#
#   csrc/cpu/<family>/*_kernels.cpp        kernel sources, compiled once per capability level
#   csrc/cpu/<family>/kernels/<level>.cpp  hand-written per-architecture kernels (the GEMM
#                                          micro-kernels), compiled at their own level only
#   every other csrc/cpu/**/*.cpp          portable driver code, compiled once for the
#                                          target's baseline
#
# Levels and their flags: generic (none), avx2 (-mavx2 -mfma), avx512 (-mavx512f -mavx2
# -mfma); off x86, generic only. Only kernel objects get ISA flags, never flags for the build machine's own CPU.
# A kernel object is built with FASTDL_CAP_NS=<level> (the namespace its kernels live in)
# and FASTDL_CAP_LEVEL=<0,1,2> and registers itself in its family's DispatchTable
# (csrc/cpu/runtime/dispatch.h) when the module is loaded.
#
# Defines FASTDL_CPU_SOURCES (driver code), FASTDL_CPU_KERNEL_OBJECTS (generator
# expressions of the per-level object libraries), FASTDL_SIMD_COMPILED, and the interface
# target fastdl_cpu_options (flags shared by the drivers and the kernel objects).

file(GLOB_RECURSE _fastdl_all CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/csrc/cpu/*.cpp)
set(FASTDL_CPU_SOURCES "")
set(_fastdl_multi "")
foreach(src ${_fastdl_all})
  if(src MATCHES "_kernels\\.cpp$")
    list(APPEND _fastdl_multi ${src})
  elseif(NOT src MATCHES "/kernels/[a-z0-9]+\\.cpp$")
    list(APPEND FASTDL_CPU_SOURCES ${src})
  endif()
endforeach()

set(FASTDL_X86 OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64|i.86")
  set(FASTDL_X86 ON)
endif()

add_library(fastdl_cpu_options INTERFACE)
target_include_directories(fastdl_cpu_options INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/csrc)
target_compile_options(fastdl_cpu_options INTERFACE
  $<$<CXX_COMPILER_ID:GNU,Clang>:-O3 -Wall -Wextra -Wno-unused-parameter -fno-math-errno>)
if(FASTDL_X86)
  target_compile_definitions(fastdl_cpu_options INTERFACE FASTDL_X86=1)
endif()
find_package(OpenMP COMPONENTS CXX)
if(OpenMP_CXX_FOUND)
  target_link_libraries(fastdl_cpu_options INTERFACE OpenMP::OpenMP_CXX)
  set(FASTDL_OPENMP_DESC "OpenMP ${OpenMP_CXX_VERSION} (${OpenMP_CXX_FLAGS})")
else()
  set(FASTDL_OPENMP_DESC "")
  message(WARNING "fastdl: OpenMP not found; building single-threaded kernels")
endif()
if(FASTDL_SANITIZE)
  target_compile_options(fastdl_cpu_options INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(fastdl_cpu_options INTERFACE -fsanitize=address,undefined)
endif()

if(FASTDL_X86)
  set(_fastdl_levels generic avx2 avx512)
else()
  set(_fastdl_levels generic)
endif()
set(_fastdl_flags_generic "")
set(_fastdl_flags_avx2 -mavx2 -mfma)
set(_fastdl_flags_avx512 -mavx512f -mavx2 -mfma)

set(FASTDL_CPU_KERNEL_OBJECTS "")
set(_fastdl_index 0)
foreach(level ${_fastdl_levels})
  set(_srcs ${_fastdl_multi})
  foreach(src ${_fastdl_all})
    if(src MATCHES "/kernels/${level}\\.cpp$")
      list(APPEND _srcs ${src})
    endif()
  endforeach()
  add_library(fastdl_cpu_${level} OBJECT ${_srcs})
  set_target_properties(fastdl_cpu_${level} PROPERTIES
    POSITION_INDEPENDENT_CODE ON CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_link_libraries(fastdl_cpu_${level} PRIVATE fastdl_cpu_options)
  target_compile_definitions(fastdl_cpu_${level} PRIVATE
    FASTDL_CAP_NS=${level} FASTDL_CAP_LEVEL=${_fastdl_index})
  target_compile_options(fastdl_cpu_${level} PRIVATE ${_fastdl_flags_${level}})
  list(APPEND FASTDL_CPU_KERNEL_OBJECTS $<TARGET_OBJECTS:fastdl_cpu_${level}>)
  math(EXPR _fastdl_index "${_fastdl_index} + 1")
endforeach()
string(REPLACE ";" "," FASTDL_SIMD_COMPILED "${_fastdl_levels}")
