// Freezing layer groups (Config::trainable, `capsnet train --train-only`): the names and their metadata,
// the backward pass stopping below the lowest trainable group, Adam leaving frozen tensors alone, and the
// CPU training backend doing the same across its threads.
#include <vector>

#include <catch2/catch.hpp>
#include <xtensor/xsort.hpp>

#include "capsnet/adam.hpp"
#include "capsnet/model.hpp"
#include "capsnet/training.hpp"

using namespace capsnet;

namespace {

Tensor<float, 4> random_images(std::size_t count, Rng& rng) {
    Tensor<float, 4> images = xt::zeros<float>({count, std::size_t(1), std::size_t(28), std::size_t(28)});
    for (auto& x : images) x = rng.uniform01() < 0.3 ? static_cast<float>(rng.uniform01()) : 0.0f;
    return images;
}

// Every set worth telling apart: each group alone, the demo's head, and gaps (primary frozen between
// trainable layers).
std::vector<std::string> layer_sets() {
    return {"conv1", "primary", "digit", "decoder", "head", "primary,digit", "conv1,decoder", "conv1,digit,decoder"};
}

}  // namespace

TEST_CASE("trainable layers: names round trip, bad names are errors that list the groups", "[trainable]") {
    CHECK(trainable_layers_name(TrainableLayers{}) == "all");
    CHECK(trainable_layers_from_name("all").all());
    const TrainableLayers head = trainable_layers_from_name("head");
    CHECK((!head.conv1 && !head.primary && head.digit && head.decoder));
    CHECK(trainable_layers_name(head) == "digit,decoder");
    CHECK(trainable_layers_from_name("decoder,digit") == head);  // any order
    for (const std::string& names : layer_sets())
        CHECK(trainable_layers_from_name(trainable_layers_name(trainable_layers_from_name(names))) ==
              trainable_layers_from_name(names));
    CHECK(head.trains("decoder.2.bias"));
    CHECK(head.trains("digit.weight"));
    CHECK_FALSE(head.trains("primary.weight"));
    CHECK_THROWS_WITH(trainable_layers_from_name("digits"), Catch::Contains("'digits'") && Catch::Contains("decoder"));
    CHECK_THROWS_WITH(trainable_layers_from_name(""), Catch::Contains("no layer group"));
    CHECK_THROWS(head.trains("nonsense.weight"));
}

TEST_CASE("trainable layers: recorded in the metadata only when some are frozen", "[trainable]") {
    Config config = config_for_preset(Preset::seed);
    CHECK(config_to_metadata(config).count("train_only") == 0);  // files of ordinary runs are unchanged
    config.trainable = trainable_layers_from_name("head");
    const auto metadata = config_to_metadata(config);
    CHECK(metadata.at("train_only") == "digit,decoder");
    CHECK(config_from_metadata(metadata, "test").trainable == config.trainable);
    auto bad = metadata;
    bad["train_only"] = "everything";
    CHECK_THROWS_WITH(config_from_metadata(bad, "model.safetensors"),
                      Catch::Contains("model.safetensors") && Catch::Contains("train_only"));
}

TEST_CASE("trainable layers: the backward pass gives the full pass's gradients for trainable groups, zeros for frozen",
          "[trainable]") {
    Rng rng(41);
    const Config full = config_for_preset(Preset::seed);
    const Parameters<float> params = parameters_init<float>(full, rng);
    const Tensor<float, 4> images = random_images(2, rng);
    const std::vector<int> labels = {3, 8};
    ForwardState<float> state;
    model_forward(full, params, images, DecoderMask::labels, labels, state);
    Parameters<float> all_grads;
    model_backward(full, params, state, labels, all_grads);

    for (const std::string& names : layer_sets()) {
        Config config = full;
        config.trainable = trainable_layers_from_name(names);
        Parameters<float> grads;
        model_backward(config, params, state, labels, grads);
        // The trainable groups' gradients come from the same operations in the same order as in the full
        // pass (skipping a layer's input gradient leaves its weight gradient's sums alone): equal bits.
        visit_parameters(
            [&](const char* name, const auto& got, const auto& reference) {
                INFO(names << ": " << name);
                if (config.trainable.trains(name)) {
                    CHECK(xt::amax(xt::abs(reference))() > 0.0f);  // a real gradient, not zeros on both sides
                    CHECK((got == reference));
                } else {
                    CHECK((xt::amax(xt::abs(got))() == 0.0f));
                }
            },
            grads, all_grads);
    }
}

TEST_CASE("trainable layers: Adam moves trainable tensors only; frozen ones keep their values and moments",
          "[trainable][adam]") {
    Rng rng(42);
    Config config = config_for_preset(Preset::seed);
    config.trainable = trainable_layers_from_name("head");
    Parameters<float> params = parameters_init<float>(config, rng), grads = parameters_zeros<float>(config);
    visit_parameters([&](const char*, auto& g) { for (auto& x : g) x = static_cast<float>(rng.uniform(-1, 1)); }, grads);
    const Parameters<float> before = params;
    AdamState<float> adam = adam_init<float>(config);
    adam_update(config, 1e-3, grads, params, adam);
    CHECK(adam.step == 1);
    visit_parameters(
        [&](const char* name, const auto& p, const auto& p0, const auto& m) {
            INFO(name);
            if (config.trainable.trains(name)) {
                CHECK((p != p0));
                CHECK(xt::amax(xt::abs(m))() > 0.0f);
            } else {
                CHECK((p == p0));
                CHECK(xt::amax(xt::abs(m))() == 0.0f);
            }
        },
        params, before, adam.first_moment);
}

TEST_CASE("trainable layers: train_step on frozen convolutions leaves them bit for bit", "[trainable]") {
    Rng rng(43);
    Config config = config_for_preset(Preset::seed);
    config.trainable = trainable_layers_from_name("head");
    Parameters<float> params = parameters_init<float>(config, rng);
    const Parameters<float> before = params;
    AdamState<float> adam = adam_init<float>(config);
    TrainWorkspace<float> workspace;
    const Tensor<float, 4> images = random_images(4, rng);
    for (int step = 0; step < 3; ++step) train_step(config, 1e-3, images, {0, 1, 2, 3}, params, adam, workspace);
    CHECK((params.conv1_weight == before.conv1_weight));
    CHECK((params.primary_weight == before.primary_weight));
    CHECK((params.primary_bias == before.primary_bias));
    CHECK((params.digit_weight != before.digit_weight));
    CHECK((params.decoder2_weight != before.decoder2_weight));
}
