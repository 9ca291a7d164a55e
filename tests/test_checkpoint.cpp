// Checkpoint files and exported (F16 / I8) model files: exact round trips and bounded quantisation error.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <xtensor/xview.hpp>

#include "capsnet/checkpoint.hpp"
#include "capsnet/weights.hpp"

using namespace capsnet;

namespace {

Checkpoint random_checkpoint(Preset preset) {
    Checkpoint checkpoint;
    checkpoint.model.config = config_for_preset(preset);
    Rng rng(11);
    checkpoint.model.params = parameters_init<float>(checkpoint.model.config, rng);
    checkpoint.adam = adam_init<float>(checkpoint.model.config);
    visit_parameters(
        [&rng](const char*, auto& m, auto& v) {
            for (auto& x : m) x = static_cast<float>(rng.normal() * 1e-3);
            for (auto& x : v) x = static_cast<float>(rng.uniform01() * 1e-6);
        },
        checkpoint.adam.first_moment, checkpoint.adam.second_moment);
    checkpoint.adam.step = 1234;
    checkpoint.data = {42, 55000, 5000, 10000};
    checkpoint.progress.epochs = 30;
    checkpoint.progress.epoch = 7;
    checkpoint.progress.step_in_epoch = 99;
    checkpoint.progress.margin_loss_sum = 1.0 / 3.0;  // not representable in short decimal: tests %.17g
    checkpoint.progress.reconstruction_loss_sum = 0.1;
    checkpoint.progress.correct = 25000;
    checkpoint.progress.seen = 25344;
    checkpoint.progress.seconds = 271.828;
    checkpoint.progress.best_validation_accuracy = 0.9912;
    checkpoint.progress.best_epoch = 6;
    return checkpoint;
}

template <class F>
void for_each_pair(const Parameters<float>& a, const Parameters<float>& b, F&& f) {
    visit_parameters([&f](const char* name, const auto& x, const auto& y) { f(name, x, y); }, a, b);
}

}  // namespace

TEST_CASE("checkpoint: save and load round-trip every bit, for both presets", "[checkpoint]") {
    for (Preset preset : {Preset::seed, Preset::paper}) {
        const Checkpoint original = random_checkpoint(preset);
        const Checkpoint loaded = checkpoint_from_safetensors(
            safetensors_parse(safetensors_serialize(checkpoint_to_safetensors(original)).data(),
                              safetensors_serialize(checkpoint_to_safetensors(original)).size(), "memory"),
            "memory");
        for_each_pair(original.model.params, loaded.model.params,
                      [](const char* name, const auto& x, const auto& y) { INFO(name); CHECK(x == y); });
        for_each_pair(original.adam.first_moment, loaded.adam.first_moment,
                      [](const char* name, const auto& x, const auto& y) { INFO(name); CHECK(x == y); });
        for_each_pair(original.adam.second_moment, loaded.adam.second_moment,
                      [](const char* name, const auto& x, const auto& y) { INFO(name); CHECK(x == y); });
        CHECK(loaded.adam.step == 1234);
        CHECK(loaded.data.seed == 42);
        CHECK(loaded.data.train_images == 55000);
        CHECK(loaded.data.validation_images == 5000);
        CHECK(loaded.progress.epoch == 7);
        CHECK(loaded.progress.step_in_epoch == 99);
        CHECK(loaded.progress.margin_loss_sum == original.progress.margin_loss_sum);  // exact, not approximate
        CHECK(loaded.progress.seconds == original.progress.seconds);
        CHECK(loaded.progress.best_validation_accuracy == original.progress.best_validation_accuracy);
        CHECK(loaded.progress.best_epoch == 6);
        CHECK(loaded.model.config.preset == preset);
    }
}

TEST_CASE("checkpoint: the weights inside still load as a plain model; a plain model is not a checkpoint",
          "[checkpoint]") {
    const Checkpoint checkpoint = random_checkpoint(Preset::seed);
    const std::string path = "test_checkpoint_tmp.safetensors";
    checkpoint_save(path, checkpoint);
    // A model file has no Adam tensors: loading it as a checkpoint names what is missing.
    model_save(path + ".model", checkpoint.model);
    CHECK_THROWS_WITH(checkpoint_load(path + ".model"), Catch::Contains("not a checkpoint"));
    // Missing moments are reported by name.
    SafeTensors file = checkpoint_to_safetensors(checkpoint);
    file.tensors.erase("adam.v.conv1.bias");
    CHECK_THROWS_WITH(checkpoint_from_safetensors(file, "x"), Catch::Contains("adam.v.conv1.bias"));
    CHECK_NOTHROW(checkpoint_load(path));
    std::remove(path.c_str());
    std::remove((path + ".model").c_str());
}

TEST_CASE("export: F16 and I8 files load back within their rounding error", "[export]") {
    Model model;
    model.config = config_for_preset(Preset::seed);
    Rng rng(5);
    model.params = parameters_init<float>(model.config, rng);
    for (auto& x : xt::view(model.params.conv1_weight, 7)) x = 0;  // an all-zero channel: its scale must stay finite

    // F16: round to nearest with an 11-bit significand, so the relative error is at most 2^-11; below
    // 2^-14 half floats are subnormal with a fixed step of 2^-24, so the absolute error is at most 2^-25.
    const Model half = model_from_safetensors(model_to_safetensors(model, DType::F16), "f16");
    for_each_pair(model.params, half.params, [](const char* name, const auto& x, const auto& y) {
        INFO(name);
        for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(std::abs(x.data()[i] - y.data()[i]) <= std::max(std::abs(x.data()[i]) * 0x1p-11f, 0x1p-25f));
    });

    // I8: symmetric per output channel, scale = max|w| / 127, round to nearest: error <= scale / 2 (plus
    // float rounding of the product, covered by the 1.0001 factor). Biases are stored as F32: exact.
    const SafeTensors file = model_to_safetensors(model, DType::I8);
    CHECK(file.tensors.at("conv1.weight").dtype == DType::I8);
    CHECK(file.tensors.at("conv1.bias").dtype == DType::F32);
    CHECK(file.tensors.at("digit.bias").dtype == DType::F32);
    const Model quantized = model_from_safetensors(file, "i8");
    for_each_pair(model.params, quantized.params, [](const char* name, const auto& x, const auto& y) {
        INFO(name);
        const std::size_t channels = x.shape()[0], per_channel = x.size() / channels;
        for (std::size_t c = 0; c < channels; ++c) {
            float largest = 0;
            for (std::size_t i = 0; i < per_channel; ++i) largest = std::max(largest, std::abs(x.data()[c * per_channel + i]));
            const float bound = std::string(name).find(".weight") != std::string::npos ? largest / 127 / 2 * 1.0001f : 0.0f;
            for (std::size_t i = 0; i < per_channel; ++i)
                REQUIRE(std::abs(x.data()[c * per_channel + i] - y.data()[c * per_channel + i]) <= bound);
        }
    });
    // The I8 file is about a quarter of the F32 one.
    const double ratio = double(safetensors_serialize(file).size()) / double(safetensors_serialize(model_to_safetensors(model)).size());
    CHECK(ratio < 0.26);
    CHECK(ratio > 0.24);
}
