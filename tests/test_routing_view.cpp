// The routing view (routing_view.hpp) on random parameters and images, both presets, 1 and 3 iterations:
// the trace against the forward state it was read from, the receptive fields against the real
// convolutions, the attribution against its definition computed pixel by pixel, and the heatmap layout.
#include <catch2/catch.hpp>
#include <xtensor/xview.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "capsnet/model.hpp"
#include "capsnet/routing_view.hpp"
#include "gradient_check.hpp"

using namespace capsnet;

namespace {

// Float sums of 10 values in [0, 1] (the couplings) or of 16 products (agreements, lengths) recomputed in
// another order, possibly with the SIMD exp of routing.cpp (last-bit differences): 1e-5 is ~100 ulps
// at the sizes seen here, far below the differences a wrong index or a missing term gives (checked
// with `nontrivial` below).
constexpr float float_rounding = 1e-5f;

// Random strokes: 30% of the pixels inked, the rest 0.
Tensor<float, 4> random_images(std::size_t count, Rng& rng) {
    Tensor<float, 4> images = xt::zeros<float>({count, std::size_t(1), std::size_t(image_side), std::size_t(image_side)});
    for (auto& x : images) x = rng.uniform01() < 0.3 ? static_cast<float>(rng.uniform01()) : 0.0f;
    return images;
}

// Random parameters with larger predictions than the initialisation gives (|u_hat| ~ 1 rather than
// ~0.05), so the routing moves the couplings well away from the uniform 0.1 and the checks below could
// tell a wrong b from the right one; and nonzero biases (the seed initialises them to 0), so a blank
// input still has primary capsules and votes, and a zero attribution for it comes from the ink alone.
Parameters<float> random_parameters(const Config& config, Rng& rng) {
    Parameters<float> params = parameters_init<float>(config, rng);
    params.digit_weight *= config.preset == Preset::paper ? 300.0f : 20.0f;
    capsnet_test::fill_random(params.conv1_bias, rng, -0.05, 0.05);
    capsnet_test::fill_random(params.primary_bias, rng, -0.05, 0.05);
    capsnet_test::fill_random(params.digit_bias, rng, -0.05, 0.05);
    return params;
}

ForwardState<float> run_forward(const Config& config, const Parameters<float>& params, const Tensor<float, 4>& images) {
    ForwardState<float> state;
    model_forward(config, params, images, DecoderMask::none, {}, state);
    return state;
}

Tensor<float, 2> image_of(const Tensor<float, 4>& images, std::size_t sample) {
    Tensor<float, 2> image = xt::zeros<float>({std::size_t(image_side), std::size_t(image_side)});
    std::copy_n(images.data() + sample * image_pixels, image_pixels, image.data());
    return image;
}

bool field_contains(int grid_y, int grid_x, int py, int px) {
    const int top = primary_field_start(grid_y), left = primary_field_start(grid_x);
    return py >= top && py < top + primary_field_side && px >= left && px < left + primary_field_side;
}

// The attribution's definition (routing_view.hpp) pixel by pixel, in double: every capsule is asked
// whether its field holds the pixel.
double attribution_by_definition(const RoutingTrace& trace, const Tensor<float, 2>& image, int r, int j, int py, int px) {
    double sum = 0;
    for (int i = 0; i < primary_capsules; ++i) {
        const int cell = i % primary_grid;
        if (field_contains(cell / primary_side, cell % primary_side, py, px))
            sum += double(trace.coupling(r, i, j)) * trace.prediction_lengths(i, j);
    }
    return double(image(py, px)) * sum / (primary_field_side * primary_field_side);
}

}  // namespace

TEST_CASE("routing trace: couplings sum to 1, are the softmax of the logits, and are the forward state's",
          "[routing_view]") {
    for (const Preset preset : {Preset::seed, Preset::paper})
        for (const int iterations : {1, 3}) {
            Config config = config_for_preset(preset);
            config.routing_iterations = iterations;
            Rng rng(100 + iterations);
            const Parameters<float> params = random_parameters(config, rng);
            const Tensor<float, 4> images = random_images(2, rng);
            const ForwardState<float> state = run_forward(config, params, images);
            INFO("preset " << preset_name(preset) << ", " << iterations << " iterations");
            for (const std::size_t sample : {std::size_t(0), std::size_t(1)}) {
                INFO("sample " << sample);
                const RoutingTrace trace = routing_trace(state, sample);
                const std::size_t R = iterations, I = primary_capsules, J = digit_classes;
                REQUIRE(trace.iterations() == iterations);
                REQUIRE(capsnet_test::shape_is(trace.coupling, {R, I, J}));
                REQUIRE(capsnet_test::shape_is(trace.logits, {R, I, J}));
                REQUIRE(capsnet_test::shape_is(trace.lengths, {R, J}));
                REQUIRE(capsnet_test::shape_is(trace.prediction_lengths, {I, J}));
                CHECK(xt::amax(xt::abs(xt::view(trace.logits, 0)))() == 0.0f);  // b_1 = 0: c_1 is uniform

                float worst_sum = 0, worst_softmax = 0, farthest_from_uniform = 0;
                for (std::size_t r = 0; r < R; ++r)
                    for (std::size_t i = 0; i < I; ++i) {
                        double row_sum = 0, top = trace.logits(r, i, 0), exp_sum = 0;
                        for (std::size_t j = 0; j < J; ++j) top = std::max(top, double(trace.logits(r, i, j)));
                        for (std::size_t j = 0; j < J; ++j) exp_sum += std::exp(trace.logits(r, i, j) - top);
                        for (std::size_t j = 0; j < J; ++j) {
                            const double c = trace.coupling(r, i, j);
                            row_sum += c;
                            const double softmax = std::exp(trace.logits(r, i, j) - top) / exp_sum;
                            worst_softmax = std::max(worst_softmax, float(std::abs(c - softmax)));
                            farthest_from_uniform = std::max(farthest_from_uniform, float(std::abs(c - 0.1)));
                        }
                        worst_sum = std::max(worst_sum, float(std::abs(row_sum - 1)));
                    }
                CHECK(worst_sum <= float_rounding);
                CHECK(worst_softmax <= float_rounding);
                // With several iterations the couplings must really move, or the softmax check above
                // would pass for b = 0 too.
                INFO("largest |c - 0.1| " << farthest_from_uniform);
                if (iterations > 1) CHECK(farthest_from_uniform > 100 * float_rounding);

                // Every iteration's c is the forward state's, for this sample (not the other one).
                for (std::size_t r = 0; r < R; ++r) {
                    const bool same = xt::view(trace.coupling, r) == xt::view(state.routing.coupling, r, sample);
                    CHECK(same);
                }
                // The last iteration's lengths are the model's class scores.
                for (std::size_t j = 0; j < J; ++j) CHECK(std::abs(trace.lengths(R - 1, j) - state.lengths(sample, j)) <= float_rounding);
                // |u_hat| of one capsule recomputed.
                const std::size_t i = 700, j = 4;
                double norm2 = 0;
                for (std::size_t d = 0; d < std::size_t(digit_dims); ++d) norm2 += std::pow(state.u_hat(sample, i, j, d), 2);
                CHECK(std::abs(trace.prediction_lengths(i, j) - std::sqrt(norm2)) <= float_rounding);
            }
        }
    ForwardState<float> state;
    CHECK_THROWS_AS(routing_trace(state, 0), Error);
}

TEST_CASE("primary receptive fields: an input pixel changes exactly the grid cells whose 17x17 field holds it",
          "[routing_view]") {
    // Checks the reasoning of routing_view.hpp (rows 2y..2y+16; row and column 27 in no field) against
    // the real convolutions: sample 0 is a random image, sample k the same with one pixel changed.
    const Config config = config_for_preset(Preset::seed);
    Rng rng(7);
    const Parameters<float> params = random_parameters(config, rng);
    const std::vector<std::pair<int, int>> pixels = {{27, 13}, {13, 27}, {27, 27}, {0, 0}, {26, 26}, {16, 16}, {17, 9}};
    Tensor<float, 4> images = xt::zeros<float>({pixels.size() + 1, std::size_t(1), std::size_t(image_side), std::size_t(image_side)});
    for (std::size_t p = 0; p < std::size_t(image_pixels); ++p) images.data()[p] = static_cast<float>(rng.uniform01());
    for (std::size_t k = 0; k < pixels.size(); ++k) {
        std::copy_n(images.data(), image_pixels, images.data() + (k + 1) * image_pixels);
        images(k + 1, 0, pixels[k].first, pixels[k].second) += 1.0f;
    }
    const ForwardState<float> state = run_forward(config, params, images);
    const float scale = xt::amax(xt::abs(state.primary_raw))();
    for (std::size_t k = 0; k < pixels.size(); ++k)
        for (int y = 0; y < primary_side; ++y)
            for (int x = 0; x < primary_side; ++x) {
                // The largest change over the 32 capsules x 8 dims of cell (y, x).
                float change = 0;
                for (int t = 0; t < primary_types; ++t)
                    for (int d = 0; d < primary_dims; ++d) {
                        const std::size_t i = std::size_t(t) * primary_grid + std::size_t(y) * primary_side + x;
                        change = std::max(change, std::abs(state.primary_raw(k + 1, i, d) - state.primary_raw(0, i, d)));
                    }
                const bool inside = field_contains(y, x, pixels[k].first, pixels[k].second);
                INFO("pixel (" << pixels[k].first << ", " << pixels[k].second << "), cell (" << y << ", " << x
                               << "), change " << change << " of " << scale);
                // Outside: the same patch through the same GEMM (a few ulps at most); inside: a unit
                // change of one input pixel moves the cell's conv outputs by far more.
                if (inside)
                    CHECK(change > 1e-3f * scale);
                else
                    CHECK(change <= 1e-6f * scale);
            }
    for (const int edge : {0, primary_side - 1}) {  // the fields of the first and last cells, directly
        CHECK(primary_field_start(edge) == 2 * edge);
        CHECK(primary_field_start(edge) + primary_field_side - 1 == 2 * edge + 16);
    }
    CHECK(primary_field_start(primary_side - 1) + primary_field_side - 1 == 26);
}

TEST_CASE("routing attribution: its definition, zero off the fields and off the ink, nonnegative, normalised",
          "[routing_view]") {
    for (const Preset preset : {Preset::seed, Preset::paper})
        for (const int iterations : {1, 3}) {
            Config config = config_for_preset(preset);
            config.routing_iterations = iterations;
            Rng rng(200 + iterations);
            const Parameters<float> params = random_parameters(config, rng);
            INFO("preset " << preset_name(preset) << ", " << iterations << " iterations");
            const std::size_t R = iterations, J = digit_classes, S = image_side;

            // Sample 0: every pixel inked (so only the fields can make a pixel zero); sample 1: blank;
            // sample 2: blank except one stroke.
            Tensor<float, 4> images = xt::zeros<float>({std::size_t(3), std::size_t(1), S, S});
            for (std::size_t p = 0; p < S * S; ++p) images.data()[p] = 0.1f + 0.9f * static_cast<float>(rng.uniform01());
            for (std::size_t y = 5; y < 22; ++y) images(2, 0, y, 9 + y / 3) = 1.0f;
            const ForwardState<float> state = run_forward(config, params, images);

            const RoutingView full = routing_view(state, 0);
            REQUIRE(capsnet_test::shape_is(full.attribution, {R, J, S, S}));
            REQUIRE(capsnet_test::shape_is(full.attribution_normalized, {R, J, S, S}));
            const Tensor<float, 2> image = image_of(images, 0);
            const float top = xt::amax(full.attribution)();
            REQUIRE(top > 0);
            float worst = 0, smallest_inside = top;
            for (int r = 0; r < iterations; ++r)
                for (int j = 0; j < digit_classes; ++j)
                    for (int py = 0; py < image_side; ++py)
                        for (int px = 0; px < image_side; ++px) {
                            const float value = full.attribution(r, j, py, px);
                            if (py == image_side - 1 || px == image_side - 1) {
                                CHECK(value == 0.0f);  // row and column 27: in no field
                                continue;
                            }
                            smallest_inside = std::min(smallest_inside, value);
                            if ((py * 7 + px * 3 + r + j) % 5 == 0)  // a fifth of the pixels against the definition
                                worst = std::max(worst, float(std::abs(value - attribution_by_definition(full.trace, image, r, j, py, px))));
                        }
            CHECK(worst <= float_rounding * top);
            CHECK(smallest_inside > 0);  // every other inked pixel is in some field and gets some vote

            // Normalised: each iteration's maximum over classes and pixels is 1, and the ratios are kept.
            for (std::size_t r = 0; r < R; ++r) {
                const auto normalized = xt::view(full.attribution_normalized, r);
                CHECK(xt::amax(normalized)() == Approx(1.0f).margin(1e-6));
                CHECK(xt::amin(normalized)() >= 0.0f);
                const float iteration_top = xt::amax(xt::view(full.attribution, r))();
                CHECK(xt::amax(xt::abs(normalized * iteration_top - xt::view(full.attribution, r)))() <=
                      float_rounding * iteration_top);
            }

            // A blank input: nothing anywhere, raw or normalised (though its capsules still vote: biases).
            const RoutingView blank = routing_view(state, 1);
            CHECK(xt::amax(xt::abs(blank.attribution))() == 0.0f);
            CHECK(xt::amax(xt::abs(blank.attribution_normalized))() == 0.0f);
            CHECK(xt::amax(blank.trace.prediction_lengths)() > 0.0f);

            // One stroke: the map is zero exactly where the input is, positive on the stroke.
            const RoutingView stroke = routing_view(state, 2);
            CHECK(xt::amin(stroke.attribution)() >= 0.0f);
            for (std::size_t r = 0; r < R; ++r)
                for (std::size_t j = 0; j < J; ++j)
                    for (std::size_t py = 0; py < S; ++py)
                        for (std::size_t px = 0; px < S; ++px) {
                            const bool inked = images(2, 0, py, px) > 0;
                            if (inked != (stroke.attribution(r, j, py, px) > 0)) {
                                INFO("iteration " << r + 1 << " class " << j << " pixel (" << py << ", " << px << ")");
                                FAIL_CHECK("attribution is nonzero exactly where the stroke is");
                            }
                        }
            // The classes differ (their couplings and predictions do).
            CHECK(xt::amax(xt::abs(xt::view(stroke.attribution, R - 1, 0) - xt::view(stroke.attribution, R - 1, 1)))() > 0);
        }
}

TEST_CASE("routing heatmap: type t is tile (t / 8, t % 8) of 6x6 cells, gaps hold the gap value", "[routing_view]") {
    const std::size_t R = 2, I = primary_capsules, J = digit_classes;
    // A value that names its iteration, capsule and class.
    Tensor<float, 3> per_capsule = xt::zeros<float>({R, I, J});
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t i = 0; i < I; ++i)
            for (std::size_t j = 0; j < J; ++j) per_capsule(r, i, j) = float(r * 100000 + i * 10 + j);
    const Tensor<float, 2> heatmap = routing_heatmap(per_capsule, 1, 7, -1.0f);
    REQUIRE(capsnet_test::shape_is(heatmap, {27, 55}));
    REQUIRE(routing_heatmap_height == 27);
    REQUIRE(routing_heatmap_width == 55);
    int gaps = 0;
    for (int row = 0; row < 27; ++row)
        for (int column = 0; column < 55; ++column) {
            if (row % 7 == 6 || column % 7 == 6) {
                CHECK(heatmap(row, column) == -1.0f);
                ++gaps;
                continue;
            }
            const int t = row / 7 * 8 + column / 7, y = row % 7, x = column % 7;
            CHECK(heatmap(row, column) == float(100000 + (t * 36 + y * 6 + x) * 10 + 7));
        }
    CHECK(gaps == 27 * 55 - 1152);
    CHECK_THROWS_AS(routing_heatmap(per_capsule, 2, 0, 0.0f), Error);
    CHECK_THROWS_AS(routing_heatmap(per_capsule, 0, 10, 0.0f), Error);
}

TEST_CASE("routing colours: the ramp's ends, the overlay grey where nothing voted and pure ramp where much did",
          "[routing_view]") {
    const Rgb low = routing_ramp(0), high = routing_ramp(1);
    CHECK((int(low.r) == 120 && int(low.g) == 28 && int(low.b) == 109));
    CHECK((int(high.r) == 252 && int(high.g) == 255 && int(high.b) == 164));
    const Rgb clamped = routing_ramp(7);
    CHECK((clamped.r == high.r && clamped.g == high.g && clamped.b == high.b));
    // No vote: the ink in dim grey (half brightness), black off the ink.
    const Rgb grey = routing_overlay_pixel(1, 0), black = routing_overlay_pixel(0, 0);
    CHECK((int(grey.r) == 128 && int(grey.g) == 128 && int(grey.b) == 128));
    CHECK((int(black.r) == 0 && int(black.g) == 0 && int(black.b) == 0));
    // From a fifth of the maximum on, the ink does not show through.
    for (float a : {0.2f, 0.5f, 1.0f}) {
        const Rgb on_ink = routing_overlay_pixel(1, a), off_ink = routing_overlay_pixel(0, a), ramp = routing_ramp(a);
        CHECK((on_ink.r == ramp.r && on_ink.g == ramp.g && on_ink.b == ramp.b));
        CHECK((off_ink.r == ramp.r && off_ink.g == ramp.g && off_ink.b == ramp.b));
    }
}

TEST_CASE("routing view: time of the trace and attribution of one image", "[routing_view][.timing]") {
    // Hidden (run with `test_routing_view [timing]`): prints the forward pass and the view separately.
    const Config config = config_for_preset(Preset::seed);
    Rng rng(5);
    const Parameters<float> params = parameters_init<float>(config, rng);
    const Tensor<float, 4> images = random_images(1, rng);
    ForwardState<float> state;
    using Clock = std::chrono::steady_clock;
    const int repeats = 20;
    model_forward(config, params, images, DecoderMask::none, {}, state);
    auto start = Clock::now();
    for (int k = 0; k < repeats; ++k) model_forward(config, params, images, DecoderMask::none, {}, state);
    const double forward_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count() / repeats;
    start = Clock::now();
    double checksum = 0;
    for (int k = 0; k < repeats; ++k) checksum += routing_view(state, 0).attribution(2, 3, 14, 14);
    const double view_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count() / repeats;
    std::printf("one image: forward %.2f ms, routing trace + attribution %.3f ms (checksum %g)\n", forward_ms, view_ms,
                checksum);
    CHECK(view_ms > 0);
}
