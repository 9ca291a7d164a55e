// Model files: round trips for both presets, and the loader's refusals (wrong shape, missing or
// unexpected tensor, bad metadata, truncated file), each with a message naming the problem.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "capsnet/weights.hpp"

using namespace capsnet;
using Catch::Matchers::Contains;

namespace {

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("capsnet_test_weights_" + name)).string();
}

Model random_model(Preset preset, std::uint64_t seed) {
    Rng rng(seed);
    Model model;
    model.config = config_for_preset(preset);
    model.config.routing_iterations = 2;  // a non-default value must survive the round trip too
    model.params = parameters_init<float>(model.config, rng);
    if (model.params.digit_bias.size()) for (auto& x : model.params.digit_bias) x = float(rng.uniform(-1, 1));
    return model;
}

}  // namespace

TEST_CASE("model files round trip bit for bit, both presets", "[weights]") {
    for (Preset preset : {Preset::seed, Preset::paper}) {
        const Model model = random_model(preset, 7);
        const std::string path = temp_path(preset_name(preset));
        model_save(path, model);
        const Model loaded = model_load(path);
        std::filesystem::remove(path);
        CHECK(loaded.config.preset == preset);
        CHECK(loaded.config.routing_iterations == 2);
        CHECK(loaded.config.squash_primary == model.config.squash_primary);
        CHECK(loaded.config.lr_decay == model.config.lr_decay);
        visit_parameters([](const char* name, const auto& a, const auto& b) {
            INFO(name);
            CHECK(a.shape() == b.shape());
            CHECK(a == b);
        }, loaded.params, model.params);
    }
}

TEST_CASE("model files carry the names, shapes and metadata of docs/model-contract.md", "[weights]") {
    const SafeTensors file = model_to_safetensors(random_model(Preset::seed, 8));
    CHECK(file.metadata.at("preset") == "seed");
    CHECK(file.metadata.at("routing_iterations") == "2");
    CHECK(file.tensors.at("conv1.weight").shape == std::vector<std::int64_t>{256, 1, 9, 9});
    CHECK(file.tensors.at("primary.weight").shape == std::vector<std::int64_t>{256, 256, 9, 9});
    CHECK(file.tensors.at("digit.weight").shape == std::vector<std::int64_t>{32, 10, 16, 8});
    CHECK(file.tensors.at("digit.bias").shape == std::vector<std::int64_t>{32, 10, 16});
    CHECK(file.tensors.at("decoder.0.weight").shape == std::vector<std::int64_t>{512, 160});
    CHECK(file.tensors.at("decoder.2.weight").shape == std::vector<std::int64_t>{784, 1024});
    CHECK(file.tensors.size() == 12);
    const SafeTensors paper = model_to_safetensors(random_model(Preset::paper, 9));
    CHECK(paper.tensors.at("digit.weight").shape == std::vector<std::int64_t>{1152, 10, 16, 8});
    CHECK(paper.tensors.count("digit.bias") == 0);
    CHECK(paper.tensors.size() == 11);
}

TEST_CASE("the loader refuses malformed model files with clear messages", "[weights]") {
    const Model model = random_model(Preset::seed, 10);
    const SafeTensors good = model_to_safetensors(model);

    SafeTensors missing = good;
    missing.tensors.erase("decoder.1.bias");
    CHECK_THROWS_WITH(model_from_safetensors(missing, "m.safetensors"), Contains("decoder.1.bias") && Contains("missing"));

    SafeTensors wrong_shape = good;
    wrong_shape.tensors["digit.weight"] = stored_tensor_f32({1152, 10, 16, 8}, std::vector<float>(1152 * 1280).data());
    CHECK_THROWS_WITH(model_from_safetensors(wrong_shape, "m.safetensors"),
                      Contains("digit.weight") && Contains("[1152, 10, 16, 8]") && Contains("[32, 10, 16, 8]"));

    SafeTensors extra = good;
    extra.tensors["decoder.3.weight"] = stored_tensor_f32({1}, std::vector<float>(1).data());
    CHECK_THROWS_WITH(model_from_safetensors(extra, "m.safetensors"), Contains("unexpected") && Contains("decoder.3.weight"));

    SafeTensors no_preset = good;
    no_preset.metadata.erase("preset");
    CHECK_THROWS_WITH(model_from_safetensors(no_preset, "m.safetensors"), Contains("preset"));

    SafeTensors bad_preset = good;
    bad_preset.metadata["preset"] = "resnet";
    CHECK_THROWS_WITH(model_from_safetensors(bad_preset, "m.safetensors"), Contains("resnet"));

    SafeTensors bad_number = good;
    bad_number.metadata["routing_iterations"] = "three";
    CHECK_THROWS_WITH(model_from_safetensors(bad_number, "m.safetensors"), Contains("routing_iterations"));

    // A truncated file on disk.
    const std::vector<std::uint8_t> bytes = safetensors_serialize(good);
    const std::string path = temp_path("truncated");
    {
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size() - 1000));
    }
    CHECK_THROWS_AS(model_load(path), Error);
    std::filesystem::remove(path);
    CHECK_THROWS_WITH(model_load(temp_path("does_not_exist")), Contains("does_not_exist"));
}

TEST_CASE("F16 and I8 model files load with bounded error", "[weights]") {
    const Model model = random_model(Preset::seed, 11);
    SafeTensors half = model_to_safetensors(model);
    SafeTensors quantized = half;
    for (auto& entry : half.tensors) {
        const std::vector<float> values = stored_tensor_to_f32(entry.second, entry.first);
        StoredTensor h{DType::F16, entry.second.shape, {}};
        for (float v : values) {
            const std::uint16_t bits = float_to_half(v);
            h.bytes.push_back(static_cast<std::uint8_t>(bits & 0xff));
            h.bytes.push_back(static_cast<std::uint8_t>(bits >> 8));
        }
        entry.second = h;
    }
    const Model from_half = model_from_safetensors(half, "half");
    // binary16 keeps 11 significant bits: relative rounding error <= 2^-11 (values here are >> 2^-14).
    visit_parameters([](const char* name, const auto& a, const auto& b) {
        INFO(name);
        CHECK(xt::all(xt::abs(a - b) <= xt::abs(b) * (1.0f / 2048) + 1e-7f));
    }, from_half.params, model.params);

    // I8 with a per-output-channel scale = max |w| / 127 over the channel: error <= scale / 2.
    std::map<std::string, StoredTensor> extra;
    for (auto& entry : quantized.tensors) {
        const std::vector<float> values = stored_tensor_to_f32(entry.second, entry.first);
        const std::size_t channels = entry.second.shape[0], per = values.size() / channels;
        std::vector<float> scale(channels, 0.0f);
        for (std::size_t i = 0; i < values.size(); ++i) scale[i / per] = std::max(scale[i / per], std::abs(values[i]) / 127);
        StoredTensor q{DType::I8, entry.second.shape, {}};
        for (std::size_t i = 0; i < values.size(); ++i) {
            const float s = scale[i / per] > 0 ? scale[i / per] : 1.0f;
            q.bytes.push_back(static_cast<std::uint8_t>(static_cast<std::int8_t>(std::lround(values[i] / s))));
        }
        for (auto& s : scale) if (s == 0) s = 1.0f;
        entry.second = q;
        extra[entry.first + ".scale"] = stored_tensor_f32({std::int64_t(channels)}, scale.data());
    }
    SafeTensors no_scale = quantized;
    CHECK_THROWS_WITH(model_from_safetensors(no_scale, "q"), Contains(".scale"));
    quantized.tensors.insert(extra.begin(), extra.end());
    const Model from_i8 = model_from_safetensors(quantized, "q");
    CHECK(xt::amax(xt::abs(from_i8.params.primary_weight - model.params.primary_weight))() <= 0.05f / 127 / 2 * 1.001f);
    CHECK(xt::amax(xt::abs(from_i8.params.decoder2_weight - model.params.decoder2_weight))() <= 0.05f / 127 / 2 * 1.001f);
}

TEST_CASE("the loader rejects NaN, infinite and absurd weights and int8 scales (issue 16)", "[weights][errors]") {
    const Model model = random_model(Preset::seed, 12);
    const SafeTensors good = model_to_safetensors(model);
    const auto with_value = [&](const std::string& name, std::size_t index, float value) {
        SafeTensors file = good;
        std::vector<float> values = stored_tensor_to_f32(file.tensors.at(name), name);
        values.at(index) = value;
        file.tensors[name] = stored_tensor_f32(file.tensors.at(name).shape, values.data());
        return file;
    };
    // One NaN in conv1.bias, as found; an infinity; a finite but absurd weight.
    CHECK_THROWS_WITH(model_from_safetensors(with_value("conv1.bias", 3, std::nanf("")), "m.safetensors"),
                      Contains("m.safetensors") && Contains("'conv1.bias'") && Contains("value 3 is NaN"));
    CHECK_THROWS_WITH(model_from_safetensors(with_value("decoder.1.weight", 0, -INFINITY), "m.safetensors"),
                      Contains("'decoder.1.weight'") && Contains("infinite"));
    CHECK_THROWS_WITH(model_from_safetensors(with_value("digit.weight", 5, 1e30f), "m.safetensors"),
                      Contains("'digit.weight'") && Contains("value 5") && Contains("1e6"));
    CHECK_NOTHROW(model_from_safetensors(with_value("digit.weight", 5, -9.5e5f), "m.safetensors"));

    // F16 infinity (0x7c00) and an F64 value beyond float's range (converted to infinity) are rejected too.
    SafeTensors half = good;
    StoredTensor& bias = half.tensors.at("conv1.bias");
    StoredTensor h{DType::F16, bias.shape, std::vector<std::uint8_t>(bias.bytes.size() / 2, 0)};
    h.bytes[2] = 0x00, h.bytes[3] = 0x7c;
    bias = h;
    CHECK_THROWS_WITH(model_from_safetensors(half, "h.safetensors"), Contains("'conv1.bias'") && Contains("value 1 is infinite"));

    // int8 scales: infinite, negative, zero, NaN and 1e30 (finite, but 127 x 1e30 is no weight) are
    // rejected naming the scale tensor and channel; the exporter's own file loads.
    const SafeTensors quantized = model_to_safetensors(model, DType::I8);
    REQUIRE_NOTHROW(model_from_safetensors(quantized, "q.safetensors"));
    for (const float bad : {INFINITY, -0.01f, 0.0f, std::nanf(""), 1e30f}) {
        INFO("scale " << bad);
        SafeTensors file = quantized;
        std::vector<float> scale = stored_tensor_to_f32(file.tensors.at("primary.weight.scale"), "scale");
        scale.at(7) = bad;
        file.tensors["primary.weight.scale"] = stored_tensor_f32({std::int64_t(scale.size())}, scale.data());
        CHECK_THROWS_WITH(model_from_safetensors(file, "q.safetensors"),
                          Contains("q.safetensors") && Contains("'primary.weight.scale'") && Contains("channel 7") &&
                              Contains("positive, finite"));
    }
}
