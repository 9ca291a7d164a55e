// The visualisation grids: each reconstruction must be exactly the decoder's output for the masked (and
// perturbed) capsule the grid claims it shows; offsets, sample picking and tiling are checked directly.
#include <catch2/catch.hpp>

#include "capsnet/model.hpp"
#include "capsnet/visualize.hpp"

#include <xtensor/xview.hpp>
#include "gradient_check.hpp"

using namespace capsnet;

namespace {

Tensor<float, 2> decode_one(const Parameters<float>& params, const Tensor<float, 2>& input) {
    Tensor<float, 2> h1, h2, out;
    decoder_forward(params, input, h1, h2, out);
    return out;
}

// Float rounding only: the same decoder on the same input, batched differently (GEMM blocking may
// change the summation order), so 1e-5 on sigmoid outputs in [0, 1].
constexpr float same_output = 1e-5f;

}  // namespace

TEST_CASE("sweep offsets include both ends and an exact zero", "[visualize]") {
    const std::vector<float> offsets = sweep_offsets(-0.25f, 0.25f, 0.05f);
    REQUIRE(offsets.size() == 11);
    CHECK(offsets.front() == Approx(-0.25f));
    CHECK(offsets.back() == Approx(0.25f));
    CHECK(offsets[5] == 0.0f);
    CHECK(sweep_offsets(0.0f, 0.0f, 0.1f) == std::vector<float>{0.0f});
    CHECK(sweep_offsets(-1.0f, 1.0f, 0.5f).size() == 5);
    CHECK_THROWS_AS(sweep_offsets(-1.0f, 1.0f, 0.0f), Error);
    CHECK_THROWS_AS(sweep_offsets(1.0f, -1.0f, 0.1f), Error);
    CHECK_THROWS_AS(sweep_offsets(-1.0f, 1.0f, 1e-6f), Error);
    CHECK_THROWS_AS(sweep_offsets(-1.0f, std::nanf(""), 0.1f), Error);
}

TEST_CASE("mask grid reconstructs each input through each capsule alone", "[visualize]") {
    Rng rng(31);
    const Config config = config_for_preset(Preset::seed);
    const Parameters<float> params = parameters_init<float>(config, rng);
    Tensor<float, 3> capsules = xt::zeros<float>({3, 10, 16});
    capsnet_test::fill_random(capsules, rng, -0.3, 0.3);
    const Tensor<float, 3> grid = mask_grid_reconstructions(params, capsules);
    REQUIRE(capsnet_test::shape_is(grid, {3, 10, 784}));
    for (std::size_t n : {0, 2})
        for (std::size_t j : {0, 7}) {
            Tensor<float, 2> input = xt::zeros<float>({1, 160});
            for (std::size_t d = 0; d < 16; ++d) input(0, j * 16 + d) = capsules(n, j, d);
            const Tensor<float, 2> expected = decode_one(params, input);
            float worst = 0;
            for (std::size_t p = 0; p < 784; ++p) worst = std::max(worst, std::abs(grid(n, j, p) - expected(0, p)));
            INFO("sample " << n << " capsule " << j);
            CHECK(worst <= same_output);
        }
    // Different capsules give different pictures (the mask really changes the input).
    CHECK(xt::amax(xt::abs(xt::view(grid, 0, 0) - xt::view(grid, 0, 1)))() > 1e-3f);
}

TEST_CASE("dimension sweep perturbs one dimension of one capsule per cell", "[visualize]") {
    Rng rng(32);
    const Config config = config_for_preset(Preset::seed);
    const Parameters<float> params = parameters_init<float>(config, rng);
    Tensor<float, 2> capsules = xt::zeros<float>({10, 16});
    capsnet_test::fill_random(capsules, rng, -0.3, 0.3);
    const std::vector<float> offsets = sweep_offsets(-0.25f, 0.25f, 0.05f);
    const Tensor<float, 3> sweep = dimension_sweep_reconstructions(params, capsules, 4, offsets);
    REQUIRE(capsnet_test::shape_is(sweep, {11, 16, 784}));
    Tensor<float, 2> base = xt::zeros<float>({1, 160});
    for (std::size_t d = 0; d < 16; ++d) base(0, 4 * 16 + d) = capsules(4, d);
    const Tensor<float, 2> unperturbed = decode_one(params, base);
    // The zero-offset row is the unperturbed reconstruction in every column.
    for (std::size_t d = 0; d < 16; ++d)
        for (std::size_t p = 0; p < 784; p += 97) CHECK(std::abs(sweep(5, d, p) - unperturbed(0, p)) <= same_output);
    // Cell (row 0, dimension 9) is capsule 4 with -0.25 added to dimension 9.
    Tensor<float, 2> moved = base;
    moved(0, 4 * 16 + 9) -= 0.25f;
    const Tensor<float, 2> expected = decode_one(params, moved);
    float worst = 0;
    for (std::size_t p = 0; p < 784; ++p) worst = std::max(worst, std::abs(sweep(0, 9, p) - expected(0, p)));
    CHECK(worst <= same_output);
    CHECK(xt::amax(xt::abs(xt::view(sweep, 0, 9) - xt::view(sweep, 5, 9)))() > 1e-4f);
    CHECK_THROWS_AS(dimension_sweep_reconstructions(params, capsules, 10, offsets), Error);
}

TEST_CASE("first samples per class and tiling", "[visualize]") {
    const std::vector<std::uint8_t> labels = {3, 1, 0, 1, 2, 0, 3, 2, 1};
    CHECK(first_samples_per_class(labels, 4, 2) == std::vector<std::size_t>{2, 5, 1, 3, 4, 7, 0, 6});
    CHECK_THROWS_WITH(first_samples_per_class(labels, 5, 1), Catch::Contains("class 4"));

    Tensor<float, 3> images = xt::zeros<float>({2, 3, 4});  // 2x3 grid of 2x2 images
    for (std::size_t i = 0; i < images.size(); ++i) images.data()[i] = float(i);
    const Tensor<float, 2> picture = tile_images(images, 2, 1, -1.0f);
    REQUIRE(capsnet_test::shape_is(picture, {5, 8}));
    CHECK(picture(0, 0) == 0.0f);   // image (0,0), pixel (0,0)
    CHECK(picture(1, 1) == 3.0f);   // image (0,0), pixel (1,1)
    CHECK(picture(0, 2) == -1.0f);  // gap column
    CHECK(picture(2, 0) == -1.0f);  // gap row
    CHECK(picture(3, 6) == 20.0f);  // image (1,2) = index 5, pixel (0,0) = 5*4
    CHECK(picture(4, 7) == 23.0f);
}
