// Placeholder: the kernels declared in capsule_kernels.hpp are being written.
#include "capsule_kernels.hpp"
