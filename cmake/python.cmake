# Finds the Python and nanobind the module is built with; sets CUDAEMBED_WITH_PYTHON, and
# CUDAEMBED_PYTHON_TESTS when that Python has numpy and pytest to test it with. With
# CUDAEMBED_PYTHON=AUTO what is missing is a status line, with ON an error. scikit-build-core (pip
# install .) hands over its own Python; otherwise the repository's .venv comes first.
set(_cudaembed_python_missing "")
if(NOT DEFINED Python_EXECUTABLE AND NOT SKBUILD AND EXISTS "${PROJECT_SOURCE_DIR}/.venv/bin/python")
  set(Python_EXECUTABLE "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH "Python the module is built for")
endif()
find_package(Python 3.9 COMPONENTS Interpreter Development.Module)
if(NOT Python_FOUND)
  set(_cudaembed_python_missing "no Python 3.9+ with its headers (python3-dev)")
else()
  execute_process(COMMAND "${Python_EXECUTABLE}" -m nanobind --cmake_dir
                  OUTPUT_VARIABLE _cudaembed_nanobind_dir OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE _cudaembed_nanobind_status ERROR_QUIET)
  if(_cudaembed_nanobind_status EQUAL 0)
    find_package(nanobind CONFIG PATHS "${_cudaembed_nanobind_dir}" NO_DEFAULT_PATH)
  endif()
  if(NOT nanobind_FOUND)
    set(_cudaembed_python_missing "no nanobind in ${Python_EXECUTABLE}")
  endif()
endif()

if(_cudaembed_python_missing STREQUAL "")
  set(CUDAEMBED_WITH_PYTHON ON)
  message(STATUS "cudaembed: the Python module, for ${Python_EXECUTABLE} (Python ${Python_VERSION}, nanobind ${nanobind_VERSION})")
  # ctest's python test runs pytest with this Python, on numpy.
  execute_process(COMMAND "${Python_EXECUTABLE}" -c "import numpy, pytest" RESULT_VARIABLE _cudaembed_pytest_status
                  OUTPUT_QUIET ERROR_QUIET)
  set(CUDAEMBED_PYTHON_TESTS OFF)
  if(_cudaembed_pytest_status EQUAL 0)
    set(CUDAEMBED_PYTHON_TESTS ON)
  elseif(NOT SKBUILD)
    message(STATUS "cudaembed: no python test: ${Python_EXECUTABLE} lacks numpy or pytest (scripts/install-deps.sh)")
  endif()
elseif(CUDAEMBED_PYTHON STREQUAL "AUTO")
  message(STATUS "cudaembed: no Python module: ${_cudaembed_python_missing}; scripts/install-deps.sh makes .venv "
                 "with what it needs (CUDAEMBED_PYTHON=AUTO)")
else()
  message(FATAL_ERROR "CUDAEMBED_PYTHON=${CUDAEMBED_PYTHON}, but there is ${_cudaembed_python_missing}: run "
                      "scripts/install-deps.sh (it makes .venv with nanobind), set -DPython_EXECUTABLE=, or configure "
                      "with -DCUDAEMBED_PYTHON=OFF")
endif()
