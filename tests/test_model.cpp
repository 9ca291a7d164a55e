// The whole model: parameter counts, finite-difference gradient checks of the full loss for both presets
// (double precision, tolerance in gradient_check.hpp), float against double, Adam and augmentation.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <xtensor/xsort.hpp>
#include <xtensor/xview.hpp>

#include "capsnet/adam.hpp"
#include "capsnet/batch.hpp"
#include "capsnet/model.hpp"
#include "gradient_check.hpp"

using namespace capsnet;
using capsnet_test::check_tensor_gradient;

namespace {

// Two images of random strokes in [0, 1]: enough structure for non-trivial activations.
Tensor<double, 4> random_images(std::size_t count, Rng& rng) {
    Tensor<double, 4> images = xt::zeros<double>({count, std::size_t(1), std::size_t(28), std::size_t(28)});
    for (auto& x : images) x = rng.uniform01() < 0.3 ? rng.uniform01() : 0.0;
    return images;
}

}  // namespace

TEST_CASE("parameter counts match docs/model-contract.md", "[model]") {
    Rng rng(1);
    CHECK(parameter_count(parameters_zeros<float>(config_for_preset(Preset::seed))) == 6787088u);
    CHECK(parameter_count(parameters_zeros<float>(config_for_preset(Preset::paper))) == 8215568u);
    const Parameters<float> seed = parameters_init<float>(config_for_preset(Preset::seed), rng);
    CHECK(capsnet_test::shape_is(seed.digit_weight, {32, 10, 16, 8}));
    CHECK(capsnet_test::shape_is(seed.digit_bias, {32, 10, 16}));
    CHECK(xt::amax(xt::abs(seed.primary_weight))() <= 0.05f);
    CHECK(xt::amax(xt::abs(seed.primary_weight))() > 0.049f);
    CHECK(xt::amax(xt::abs(seed.conv1_bias))() == 0.0f);  // Chainer's default zero bias
    const Parameters<float> paper = parameters_init<float>(config_for_preset(Preset::paper), rng);
    CHECK(capsnet_test::shape_is(paper.digit_weight, {1152, 10, 16, 8}));
    CHECK(paper.digit_bias.size() == 0u);
    CHECK(xt::amax(xt::abs(paper.digit_weight))() <= 0.02f);  // truncated at 2 sigma = 0.02
}

TEST_CASE("the preset alone decides whether digit.bias exists; copies keep it", "[model]") {
    Rng rng(3);
    const Config seed_config = config_for_preset(Preset::seed), paper_config = config_for_preset(Preset::paper);
    CHECK(has_digit_bias(seed_config));
    CHECK_FALSE(has_digit_bias(paper_config));
    const Parameters<float> seed = parameters_init<float>(seed_config, rng);

    // Copying a seed model into a fresh (empty) Parameters copies digit.bias too.
    Parameters<float> copy;
    std::vector<std::string> copied;
    visit_parameters([&](const char* name, auto& dst, const auto& src) { dst = src; copied.push_back(name); }, copy, seed);
    CHECK(copied.size() == 12u);
    const bool bias_copied = copy.digit_bias == seed.digit_bias;
    CHECK(bias_copied);
    CHECK(parameters_cast<double>(seed).digit_bias.shape() == seed.digit_bias.shape());

    // A model whose tensors disagree with its preset is refused, not silently run without (or with) a bias.
    const Tensor<float, 4> images = xt::zeros<float>({std::size_t(1), std::size_t(1), std::size_t(28), std::size_t(28)});
    ForwardState<float> state;
    Parameters<float> no_bias = seed;
    no_bias.digit_bias = Tensor<float, 3>();
    CHECK_THROWS_WITH(model_forward(seed_config, no_bias, images, DecoderMask::none, {}, state),
                      Catch::Contains("seed preset needs digit.bias"));
    Parameters<float> stray = parameters_init<float>(paper_config, rng);
    stray.digit_bias = seed.digit_bias;
    CHECK_THROWS_WITH(model_forward(paper_config, stray, images, DecoderMask::none, {}, state),
                      Catch::Contains("paper preset has no digit.bias"));
    // Gradients shaped for another preset are refused too.
    model_forward(seed_config, seed, images, DecoderMask::none, {}, state);
    Parameters<float> grads = parameters_zeros<float>(seed_config);
    grads.digit_bias = Tensor<float, 3>();
    BackwardState<float> workspace;
    CHECK_THROWS_WITH(model_backward_accumulate(seed_config, seed, state, {0}, 1.0f, grads, workspace),
                      Catch::Contains("do not have the parameters' shapes"));
}

TEST_CASE("whole-model loss gradients match finite differences", "[model][gradient]") {
    for (Preset preset : {Preset::seed, Preset::paper}) {
        DYNAMIC_SECTION("preset " << preset_name(preset)) {
            Rng rng(preset == Preset::seed ? 21 : 22);
            const Config config = config_for_preset(preset);
            Parameters<double> params = parameters_init<double>(config, rng);
            const Tensor<double, 4> images = random_images(2, rng);
            const std::vector<int> labels = {3, 8};
            ForwardState<double> state;
            auto loss = [&] {
                ForwardState<double> s;
                model_forward(config, params, images, DecoderMask::labels, labels, s);
                return double(model_loss(config, s, labels).total());
            };
            model_forward(config, params, images, DecoderMask::labels, labels, state);
            const Losses<double> losses = model_loss(config, state, labels);
            REQUIRE(losses.margin > 0);
            REQUIRE(losses.reconstruction > 0);
            Parameters<double> grads;
            model_backward(config, params, state, labels, grads);

            // A few random entries of every tensor...
            visit_parameters([&](const char* name, auto& tensor, const auto& grad) {
                check_tensor_gradient(name, tensor, grad, loss, 6, rng);
            }, params, grads);

            // ...and one random unit direction through all 7-8 million parameters at once.
            Parameters<double> direction = parameters_zeros<double>(config);
            double norm2 = 0;
            visit_parameters([&](const char*, auto& d) {
                for (auto& x : d) {
                    x = rng.normal();
                    norm2 += x * x;
                }
            }, direction);
            double analytic = 0;
            visit_parameters([&](const char*, auto& d, const auto& g) {
                d /= std::sqrt(norm2);
                analytic += xt::sum(d * g)();
            }, direction, grads);
            auto shifted_loss = [&](double step) {
                Parameters<double> moved = params;
                visit_parameters([&](const char*, auto& p, const auto& d) { p += step * d; }, moved, direction);
                ForwardState<double> s;
                model_forward(config, moved, images, DecoderMask::labels, labels, s);
                return double(model_loss(config, s, labels).total());
            };
            // A unit direction spreads the step over millions of entries, so a larger h keeps rounding
            // (~1e-16 |L| / h) small while the truncation error stays ~h^2 = 1e-10.
            const double h = 1e-5;
            const double numeric = (shifted_loss(h) - shifted_loss(-h)) / (2 * h);
            INFO("directional derivative: analytic " << analytic << " numeric " << numeric);
            // Same rule as check_tensor_gradient: relative tolerance plus the loss's rounding noise.
            const capsnet_test::FdOptions fd;
            const double noise = fd.noise_ulps * std::numeric_limits<double>::epsilon() * losses.total() / h;
            CHECK(std::abs(analytic - numeric) <= fd.relative_tolerance * std::abs(analytic) + noise);
        }
    }
}

TEST_CASE("float forward and backward agree with double", "[model]") {
    Rng rng(23);
    const Config config = config_for_preset(Preset::seed);
    const Parameters<double> params64 = parameters_init<double>(config, rng);
    const Parameters<float> params32 = parameters_cast<float>(params64);
    const Tensor<double, 4> images64 = random_images(3, rng);
    const Tensor<float, 4> images32 = xt::cast<float>(images64);
    const std::vector<int> labels = {1, 4, 9};
    ForwardState<double> s64;
    ForwardState<float> s32;
    model_forward(config, params64, images64, DecoderMask::labels, labels, s64);
    model_forward(config, params32, images32, DecoderMask::labels, labels, s32);
    // Float keeps ~7 digits; the 20736-term convolution sums and three routing iterations lose about two,
    // so 1e-4 relative is a safe bound that still catches any float-only bug.
    const double scale = xt::amax(xt::abs(s64.digit_capsules))();
    CHECK(xt::amax(xt::abs(xt::cast<double>(s32.digit_capsules) - s64.digit_capsules))() <= 1e-4 * scale);
    CHECK(double(model_loss(config, s32, labels).total()) == Approx(model_loss(config, s64, labels).total()).epsilon(1e-4));
    Parameters<double> g64;
    Parameters<float> g32;
    model_backward(config, params64, s64, labels, g64);
    model_backward(config, params32, s32, labels, g32);
    visit_parameters([&](const char* name, const auto& a, const auto& b) {
        const double norm = std::sqrt(double(xt::sum(xt::square(a))()));
        const double error = std::sqrt(double(xt::sum(xt::square(xt::cast<double>(b) - a))()));
        INFO(name << ": relative error norm " << error / norm);
        CHECK(error <= 1e-3 * norm);
    }, g64, g32);
}

TEST_CASE("model_backward_accumulate: weighted micro-batches add up to the batch's gradient", "[model]") {
    // In double: a batch of 3 as micro-batches of 2 and 1 (weights 2/3 and 1/3), summed in place onto
    // zeros, against model_backward of the whole batch; once with every layer and once with the
    // convolutions frozen (their gradients must stay exactly zero). The two differ only in rounding
    // (the order of the sums), so 1e-10 of each gradient's norm is a wide bound that any missing term,
    // double count or wrong weight exceeds by orders of magnitude.
    Rng rng(31);
    for (const char* layers : {"all", "head"}) {
        INFO("trainable: " << layers);
        Config config = config_for_preset(Preset::seed);
        config.trainable = trainable_layers_from_name(layers);
        const Parameters<double> params = parameters_init<double>(config, rng);
        const Tensor<double, 4> images = random_images(3, rng);
        const std::vector<int> labels = {2, 7, 0};
        ForwardState<double> state;
        model_forward(config, params, images, DecoderMask::labels, labels, state);
        Parameters<double> whole;
        model_backward(config, params, state, labels, whole);

        Parameters<double> summed = parameters_zeros<double>(config);
        BackwardState<double> gradients;
        const Tensor<double, 4> first = xt::view(images, xt::range(0, 2));
        const Tensor<double, 4> second = xt::view(images, xt::range(2, 3));
        model_forward(config, params, first, DecoderMask::labels, {2, 7}, state);
        model_backward_accumulate(config, params, state, {2, 7}, 2.0 / 3.0, summed, gradients);
        model_forward(config, params, second, DecoderMask::labels, {0}, state);
        model_backward_accumulate(config, params, state, {0}, 1.0 / 3.0, summed, gradients);

        visit_parameters([&](const char* name, const auto& expected, const auto& actual) {
            const double norm = std::sqrt(double(xt::sum(xt::square(expected))()));
            const double error = std::sqrt(double(xt::sum(xt::square(actual - expected))()));
            INFO(name << ": gradient norm " << norm << ", error norm " << error);
            CHECK(error <= 1e-10 * norm);
            if (norm == 0) CHECK(error == 0);
        }, whole, summed);
        // Frozen or not is decided by the config: conv1's gradient is zero exactly when it is frozen.
        CHECK((xt::amax(xt::abs(summed.conv1_weight))() == 0.0) == (std::string(layers) == "head"));
    }
    const Config config = config_for_preset(Preset::seed);
    const Parameters<double> params = parameters_init<double>(config, rng);
    Parameters<double> empty;
    ForwardState<double> state;
    BackwardState<double> gradients;
    CHECK_THROWS_WITH(model_backward_accumulate(config, params, state, {}, 1.0, empty, gradients), Catch::Contains("shapes"));
}

TEST_CASE("inference masks the decoder with the predicted class", "[model]") {
    Rng rng(24);
    const Config config = config_for_preset(Preset::seed);
    const Parameters<float> params = parameters_init<float>(config, rng);
    const Tensor<float, 4> images = xt::cast<float>(random_images(2, rng));
    ForwardState<float> state;
    model_forward(config, params, images, DecoderMask::predictions, {}, state);
    const std::vector<int> predicted = predicted_classes(state.lengths);
    REQUIRE(state.mask_labels == predicted);
    for (std::size_t b = 0; b < 2; ++b)
        for (int j = 0; j < digit_classes; ++j)
            for (int d = 0; d < digit_dims; ++d) {
                const float expected = j == predicted[b] ? state.digit_capsules(b, j, d) : 0.0f;
                CHECK(state.decoder_input(b, j * digit_dims + d) == expected);
            }
    CHECK(xt::amin(state.reconstruction)() >= 0.0f);
    CHECK(xt::amax(state.reconstruction)() <= 1.0f);
}

TEST_CASE("Adam: first step moves every parameter by lr against its gradient's sign", "[adam]") {
    Config config = config_for_preset(Preset::seed);
    Rng rng(25);
    Parameters<double> params = parameters_init<double>(config, rng), grads = parameters_zeros<double>(config);
    const Parameters<double> before = params;
    visit_parameters([&](const char*, auto& g) { for (auto& x : g) x = rng.uniform(-1, 1); }, grads);
    AdamState<double> adam = adam_init<double>(config);
    adam_update(config, 1e-3, grads, params, adam);
    // After one step m_hat = g and v_hat = g^2, so the update is lr * g / (|g| + eps).
    visit_parameters([&](const char* name, const auto& p, const auto& p0, const auto& g) {
        const auto expected = xt::eval(p0 - 1e-3 * g / (xt::abs(g) + double(config.adam_epsilon)));
        INFO(name);
        CHECK(xt::amax(xt::abs(p - expected))() < 1e-12);
    }, params, before, grads);
    CHECK(adam.step == 1);
    // Learning-rate schedule: decay per epoch with a floor.
    CHECK(learning_rate_at_epoch(config, 0) == Approx(1e-3));
    CHECK(learning_rate_at_epoch(config, 2) == Approx(1e-3 * 0.95 * 0.95));
    CHECK(learning_rate_at_epoch(config, 500) == Approx(1e-5));
}

TEST_CASE("augmentation: shifts with zero padding, per sample", "[batch]") {
    std::vector<std::uint8_t> pixels(2 * 28 * 28, 0), labels = {7, 3};
    pixels[10 * 28 + 12] = 255;            // image 0: one dot at (y=10, x=12)
    pixels[28 * 28 + 0] = 51;              // image 1: a dot in the corner
    float shifted[28 * 28];
    shift_image(pixels.data(), 28, 2, -1, shifted);
    CHECK(shifted[9 * 28 + 14] == 1.0f);
    float total = 0;
    for (float x : shifted) total += x;
    CHECK(total == 1.0f);
    shift_image(pixels.data() + 28 * 28, 28, -1, 0, shifted);  // the corner dot falls off the image
    for (float x : shifted) CHECK(x == 0.0f);

    Rng rng(26);
    Tensor<float, 4> batch;
    std::vector<int> batch_labels;
    std::vector<int> seen_dx(5, 0);
    for (int trial = 0; trial < 200; ++trial) {
        make_batch(pixels, labels, 28, {0, 1}, 2, rng, batch, batch_labels);
        CHECK(batch_labels == std::vector<int>{7, 3});
        // Find where the dot of image 0 went: the shift is within +-2 in each direction.
        auto flat = xt::flatten(xt::view(batch, 0));
        const auto at = static_cast<int>(xt::argmax(flat)());
        const int dy = at / 28 - 10, dx = at % 28 - 12;
        REQUIRE(std::abs(dx) <= 2);
        REQUIRE(std::abs(dy) <= 2);
        seen_dx[dx + 2] += 1;
    }
    for (int count : seen_dx) CHECK(count > 10);  // every shift occurs (expected 40 of 200 each)
    const auto order = shuffled_indices(100, rng);
    std::vector<int> hits(100, 0);
    for (auto i : order) hits[i] += 1;
    for (int h : hits) CHECK(h == 1);
}
