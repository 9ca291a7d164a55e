// Placeholder while the CUDA layers tests are written.
#include <catch2/catch.hpp>
