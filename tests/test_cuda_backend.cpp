// Placeholder while the CUDA backend tests are written.
#include <catch2/catch.hpp>
