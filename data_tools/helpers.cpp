// placeholder, replaced by the index helper implementation
#include <pybind11/pybind11.h>
PYBIND11_MODULE(_index_helpers, m) {}
