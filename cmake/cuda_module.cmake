# The CUDA module fastdl._cuda, included by cmake/cuda.cmake once it has found
# nvcc and the toolkit. Layout:
#   csrc/cuda/<family>/*.cu   kernels and their host launchers (nvcc), by family as in csrc/cpu
#   csrc/bindings_cuda/*.cpp  pybind11 bindings (the host C++ compiler)
# The kernels go into a static library so that pybind11's flags never reach
# nvcc; the module links it and the CUDA runtime statically (CUDA::cudart_static),
# so `import fastdl._cuda` works on a machine without a driver or a GPU (runtime
# calls then return errors, which the bindings turn into 0 devices or RuntimeError).

# ---------------------------------------------------------------- architectures
# Default: Volta, Ampere and Hopper (70;80;90), minus those the found nvcc can no
# longer build (CUDA 13 dropped sm_70, for example). An explicit
# -DCMAKE_CUDA_ARCHITECTURES=... (or the CUDAARCHS environment variable) wins.
set(FASTDL_CUDA_DEFAULT_ARCHS 70 80 90)
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
  execute_process(COMMAND "${CMAKE_CUDA_COMPILER}" --list-gpu-arch
                  OUTPUT_VARIABLE _fastdl_nvcc_archs ERROR_QUIET RESULT_VARIABLE _fastdl_rc)
  set(_fastdl_archs "")
  set(_fastdl_dropped "")
  if(_fastdl_rc EQUAL 0 AND _fastdl_nvcc_archs MATCHES "compute_")
    foreach(a ${FASTDL_CUDA_DEFAULT_ARCHS})
      if(_fastdl_nvcc_archs MATCHES "compute_${a}([^0-9]|$)")
        list(APPEND _fastdl_archs ${a})
      else()
        list(APPEND _fastdl_dropped ${a})
      endif()
    endforeach()
    if(NOT _fastdl_archs)
      # None of the defaults is supported: take the oldest one this nvcc knows.
      string(REGEX MATCHALL "compute_[0-9]+" _fastdl_all "${_fastdl_nvcc_archs}")
      list(GET _fastdl_all 0 _fastdl_first)
      string(REPLACE "compute_" "" _fastdl_archs "${_fastdl_first}")
    endif()
  else()
    # An nvcc too old for --list-gpu-arch: keep the defaults and let it say no.
    set(_fastdl_archs ${FASTDL_CUDA_DEFAULT_ARCHS})
  endif()
  if(_fastdl_dropped)
    string(REPLACE ";" ", " _fastdl_dropped_str "${_fastdl_dropped}")
    message(STATUS "fastdl: this nvcc cannot build sm_${_fastdl_dropped_str}; "
                   "dropped from the default CUDA architectures")
  endif()
  set(CMAKE_CUDA_ARCHITECTURES "${_fastdl_archs}" CACHE STRING
      "CUDA architectures of fastdl._cuda (default 70;80;90, filtered by what nvcc supports)")
endif()

enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
message(STATUS "fastdl: CUDA module for architectures ${CMAKE_CUDA_ARCHITECTURES} "
               "(nvcc ${CMAKE_CUDA_COMPILER_VERSION})")

# ---------------------------------------------------------------- kernels
add_library(fastdl_cuda_kernels STATIC ${FASTDL_CUDA_SOURCES})
set_target_properties(fastdl_cuda_kernels PROPERTIES
  POSITION_INDEPENDENT_CODE ON
  CUDA_SEPARABLE_COMPILATION OFF
  CUDA_VISIBILITY_PRESET hidden
  CXX_VISIBILITY_PRESET hidden)
target_include_directories(fastdl_cuda_kernels PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/csrc)
target_compile_options(fastdl_cuda_kernels PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-O3 -Xcompiler=-fno-math-errno --expt-relaxed-constexpr>)
target_link_libraries(fastdl_cuda_kernels PUBLIC CUDA::cudart_static)

# ---------------------------------------------------------------- module
file(GLOB FASTDL_CUDA_BIND_SOURCES CONFIGURE_DEPENDS
     ${CMAKE_CURRENT_SOURCE_DIR}/csrc/bindings_cuda/*.cpp)
pybind11_add_module(_cuda MODULE NO_EXTRAS ${FASTDL_CUDA_BIND_SOURCES})
target_include_directories(_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/csrc)
target_compile_options(_cuda PRIVATE
  $<$<CXX_COMPILER_ID:GNU,Clang>:-O2 -Wall -Wextra -Wno-unused-parameter>)
string(REPLACE ";" "," _fastdl_archs_str "${CMAKE_CUDA_ARCHITECTURES}")
target_compile_definitions(_cuda PRIVATE
  FASTDL_CUDA_ARCHS="${_fastdl_archs_str}"
  FASTDL_NVCC_VERSION="${CMAKE_CUDA_COMPILER_VERSION}")
target_link_libraries(_cuda PRIVATE fastdl_cuda_kernels CUDA::cudart_static fastdl_module_options)

if(SKBUILD)
  install(TARGETS _cuda LIBRARY DESTINATION fastdl)
else()
  set_target_properties(_cuda PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/python/fastdl)
endif()
