// Placeholder while the CUDA capsules tests are written.
#include <catch2/catch.hpp>
