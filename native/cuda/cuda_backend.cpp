// Placeholder while the CUDA backend is written.
#include "cuda_backend.hpp"
