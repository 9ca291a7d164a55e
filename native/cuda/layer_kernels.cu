// Placeholder: the kernels declared in layer_kernels.hpp are being written.
#include "layer_kernels.hpp"
