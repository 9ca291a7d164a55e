// The CPU backend is the core's reference training step (shared/capsnet/training.hpp) split over
// threads: with one thread it must take exactly that step, bit for bit (same forward, backward and Adam
// code; a single shard's gradient is weighted by 1.0, which is exact); with several, the shards'
// gradients are summed in another order, so the weights may differ by float rounding only. Its
// capsule lengths classify as the core's evaluate does. This keeps the two from drifting apart.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "capsnet/training.hpp"
#include "cpu/cpu_backend.hpp"

using namespace capsnet;

namespace {

Tensor<float, 4> random_images(std::size_t count, Rng& rng) {
    Tensor<float, 4> images = xt::zeros<float>({count, std::size_t(1), std::size_t(28), std::size_t(28)});
    for (auto& x : images) x = rng.uniform01() < 0.3 ? static_cast<float>(rng.uniform01()) : 0.0f;
    return images;
}

}  // namespace

TEST_CASE("cpu backend: one thread takes the core's reference step bit for bit, more threads within rounding",
          "[cpu_backend]") {
    for (Preset preset : {Preset::seed, Preset::paper}) {
        DYNAMIC_SECTION("preset " << preset_name(preset)) {
            const Config config = config_for_preset(preset);
            Rng rng(11);
            const Parameters<float> initial = parameters_init<float>(config, rng);
            const Tensor<float, 4> images = random_images(6, rng);
            const std::vector<int> labels = {3, 8, 0, 1, 9, 4};
            const double learning_rate = 1e-3;

            Parameters<float> params = initial;
            AdamState<float> adam = adam_init<float>(config);
            TrainWorkspace<float> workspace;
            std::vector<Losses<float>> reference_losses;
            for (int step = 0; step < 2; ++step)
                reference_losses.push_back(train_step(config, learning_rate, images, labels, params, adam, workspace));

            for (int threads : {1, 3}) {
                INFO(threads << " thread(s)");
                CpuBackend backend(threads);
                backend.load(config, initial, adam_init<float>(config));
                for (int step = 0; step < 2; ++step) {
                    const StepReport report = backend.train_step(learning_rate, images, labels);
                    const Losses<float>& want = reference_losses[static_cast<std::size_t>(step)];
                    if (threads == 1) {  // one shard, weight 1: the core's float losses exactly
                        CHECK(report.margin_loss == double(want.margin));
                        CHECK(report.reconstruction_loss == double(want.reconstruction));
                    } else {  // the shards' means, weighted: float rounding of a mean
                        CHECK(report.margin_loss == Approx(want.margin).epsilon(1e-5));
                        CHECK(report.reconstruction_loss == Approx(want.reconstruction).epsilon(1e-5));
                    }
                }
                std::size_t differing = 0;
                double largest = 0;
                visit_parameters(
                    [&](const char*, const auto& want, const auto& got) {
                        REQUIRE(want.shape() == got.shape());
                        for (std::size_t i = 0; i < want.size(); ++i) {
                            const double d = std::abs(double(want.data()[i]) - double(got.data()[i]));
                            differing += d > 0;
                            largest = std::max(largest, d);
                        }
                    },
                    params, backend.parameters());
                if (threads == 1) CHECK(differing == 0u);
                // Two Adam steps move a weight by at most ~2 lr; a different summation order changes a
                // gradient's last bits, which Adam's normalisation can turn into a visible but small step
                // difference, never near the whole step.
                else CHECK(largest < 0.1 * learning_rate);
            }
        }
    }
}

TEST_CASE("cpu backend: capsule lengths classify as the core's evaluate does", "[cpu_backend]") {
    const Config config = config_for_preset(Preset::seed);
    Rng rng(12);
    const Parameters<float> params = parameters_init<float>(config, rng);
    std::vector<std::uint8_t> pixels(8 * 784), labels(8);
    for (auto& p : pixels) p = rng.uniform01() < 0.3 ? static_cast<std::uint8_t>(rng.uniform01() * 255) : 0;
    CpuBackend backend(2);
    backend.load(config, params, adam_init<float>(config));
    Tensor<float, 4> images = xt::zeros<float>({std::size_t(8), std::size_t(1), std::size_t(28), std::size_t(28)});
    for (std::size_t i = 0; i < pixels.size(); ++i) images.data()[i] = pixels[i] / 255.0f;
    const Tensor<float, 2> lengths = backend.capsule_lengths(images);
    const std::vector<int> predicted = predicted_classes(lengths);
    for (std::size_t i = 0; i < 8; ++i) labels[i] = static_cast<std::uint8_t>(predicted[i]);
    // Every sample labelled with the backend's prediction: the core's evaluate must find all 8 right.
    const Evaluation evaluation = evaluate(config, params, pixels, labels, 0, 8, 3);
    CHECK(evaluation.correct == 8u);
    CHECK(evaluation.total == 8u);
}
