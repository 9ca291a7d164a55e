// Catch2 main for the native model tests: the same tests as under wasm, but with the GEMM the native
// program selects in its main() (OpenBLAS, xsimd on skinny products: gemm_by_shape_backend); the xsimd
// GEMM alone is covered by the wasm run and by test_gemm, each backend against the reference by
// test_gemm and test_gemm_openblas.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "cpu/gemm_openblas.hpp"

int main(int argc, char* argv[]) {
    capsnet::gemm_use_by_shape();
    return Catch::Session().run(argc, argv);
}
