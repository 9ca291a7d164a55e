// Catch2 main for the native model tests: the same tests as under wasm, but with the OpenBLAS GEMM the
// native program uses (the xsimd GEMM is covered by the wasm run and by test_gemm).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "cpu/gemm_openblas.hpp"

int main(int argc, char* argv[]) {
    capsnet::gemm_use_openblas();
    return Catch::Session().run(argc, argv);
}
