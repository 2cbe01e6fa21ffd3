# The CUDA backend: kernels under src/backend/cuda, linked into the engine.
# Default targets: Ampere (sm_80, runs on any later GPU through PTX) and Hopper (sm_90a).
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80 90a)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

file(GLOB_RECURSE ZFLOW_CUDA_SOURCES CONFIGURE_DEPENDS src/backend/cuda/*.cu src/backend/cuda/*.cpp)
target_sources(zflow_engine PRIVATE ${ZFLOW_CUDA_SOURCES})
target_compile_definitions(zflow_engine PUBLIC ZFLOW_WITH_CUDA=1)
# The .cu files are C++17: nvcc 13 cannot compile fmt 9 (zflow::fail, core/) as C++20, so the
# kernels see only backend/cuda/launch.h and the Tensor-level code lives in .cpp files, which
# the host compiler builds as C++20 with the rest of the engine.
set_property(TARGET zflow_engine PROPERTY CUDA_STANDARD 17)
# The engine target exists before CUDA is enabled, so it did not pick up the architectures.
set_property(TARGET zflow_engine PROPERTY CUDA_ARCHITECTURES ${CMAKE_CUDA_ARCHITECTURES})
target_link_libraries(zflow_engine PUBLIC CUDA::cudart CUDA::cublasLt)

# cuDNN's fused attention through the header-only cuDNN frontend (scripts/fetch-cudnn-frontend
# puts its headers in build-deps/), loaded at run time (attention_cudnn.cpp): nothing to link but
# libdl. Without the headers attention runs on the built-in kernel.
find_path(ZFLOW_CUDNN_FRONTEND_INCLUDE cudnn_frontend.h
  PATHS ${PROJECT_SOURCE_DIR}/build-deps/cudnn_frontend/include NO_DEFAULT_PATH)
find_path(ZFLOW_CUDNN_INCLUDE cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
if(ZFLOW_CUDNN_FRONTEND_INCLUDE AND ZFLOW_CUDNN_INCLUDE)
  target_include_directories(zflow_engine SYSTEM PRIVATE ${ZFLOW_CUDNN_FRONTEND_INCLUDE}
                             ${ZFLOW_CUDNN_INCLUDE})
  target_compile_definitions(zflow_engine PRIVATE ZFLOW_CUDNN_SDPA=1)
  target_link_libraries(zflow_engine PRIVATE ${CMAKE_DL_LIBS})
  message(STATUS "CUDA attention: cuDNN fused SDPA (frontend in ${ZFLOW_CUDNN_FRONTEND_INCLUDE})")
else()
  message(STATUS "CUDA attention: built-in kernel only (no cuDNN frontend headers: run "
                 "scripts/fetch-cudnn-frontend)")
endif()
