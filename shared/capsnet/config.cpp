// Presets and the metadata encoding of Config.
#include "capsnet/config.hpp"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "capsnet/common.hpp"

namespace capsnet {

Config config_for_preset(Preset preset) {
    Config config;  // the defaults are the seed preset
    config.preset = preset;
    if (preset == Preset::paper) {
        config.squash_primary = true;
        config.shared_digit_weights = false;
        config.conv1_leaky_slope = 0.0f;
        config.init = InitScheme::pytorch_default;
        config.batch_size = 128;
        // The paper's own code decays by 0.96 every 2000 steps of batch 128 (469 steps an epoch):
        // 0.96^(469/2000) = 0.9905 per epoch.
        config.lr_decay = 0.9905f;
        config.lr_floor = 0.0f;
    }
    return config;
}

const char* preset_name(Preset preset) { return preset == Preset::paper ? "paper" : "seed"; }

Preset preset_from_name(const std::string& name) {
    if (name == "paper") return Preset::paper;
    if (name == "seed") return Preset::seed;
    throw Error("unknown preset '" + name + "' (expected 'seed' or 'paper')");
}

double learning_rate_at_epoch(const Config& config, int epoch) {
    const double lr = config.learning_rate * std::pow(static_cast<double>(config.lr_decay), epoch);
    return lr < config.lr_floor ? config.lr_floor : lr;
}

namespace {

constexpr const char* layer_group_names = "conv1, primary, digit, decoder, head (digit,decoder) or all";

}  // namespace

bool TrainableLayers::trains(const std::string& parameter_name) const {
    const std::string group = parameter_name.substr(0, parameter_name.find('.'));
    if (group == "conv1") return conv1;
    if (group == "primary") return primary;
    if (group == "digit") return digit;
    if (group == "decoder") return decoder;
    throw Error("no layer group holds the parameter '" + parameter_name + "'");
}

std::string trainable_layers_name(const TrainableLayers& layers) {
    if (layers.all()) return "all";
    std::string name;
    const auto add = [&](bool on, const char* group) {
        if (on) name += (name.empty() ? "" : ",") + std::string(group);
    };
    add(layers.conv1, "conv1");
    add(layers.primary, "primary");
    add(layers.digit, "digit");
    add(layers.decoder, "decoder");
    return name;
}

TrainableLayers trainable_layers_from_name(const std::string& names) {
    if (names == "all") return {};
    TrainableLayers layers{false, false, false, false};
    std::stringstream list(names);
    std::string group;
    while (std::getline(list, group, ',')) {
        if (group == "conv1") layers.conv1 = true;
        else if (group == "primary") layers.primary = true;
        else if (group == "digit") layers.digit = true;
        else if (group == "decoder") layers.decoder = true;
        else if (group == "head") layers.digit = layers.decoder = true;
        else throw Error("unknown layer group '" + group + "' in '" + names + "' (expected a comma-separated list of " +
                         layer_group_names + ")");
    }
    if (!layers.any()) throw Error("no layer group in '" + names + "' (expected " + layer_group_names + ")");
    return layers;
}

namespace {

const char* init_name(InitScheme scheme) {
    return scheme == InitScheme::uniform_005 ? "uniform_005" : "pytorch_default";
}

std::string number(double value) {
    std::ostringstream out;
    out.precision(9);
    out << value;
    return out.str();
}

// Visits every field with its metadata key, once for writing and once for reading, so the two
// directions cannot drift apart.
template <class Visitor>
void visit_fields(Config& c, Visitor&& v) {
    v.flag("squash_primary", c.squash_primary);
    v.flag("shared_digit_weights", c.shared_digit_weights);
    v.real("conv1_leaky_slope", c.conv1_leaky_slope);
    v.integer("routing_iterations", c.routing_iterations);
    v.flag("routing_stop_gradient", c.routing_stop_gradient);
    v.flag("reconstruct", c.reconstruct);
    v.real("reconstruction_weight", c.reconstruction_weight);
    v.real("margin_positive", c.margin_positive);
    v.real("margin_negative", c.margin_negative);
    v.real("margin_lambda", c.margin_lambda);
    v.integer("batch_size", c.batch_size);
    v.real("learning_rate", c.learning_rate);
    v.real("lr_decay", c.lr_decay);
    v.real("lr_floor", c.lr_floor);
    v.real("adam_beta1", c.adam_beta1);
    v.real("adam_beta2", c.adam_beta2);
    v.real("adam_epsilon", c.adam_epsilon);
    v.integer("max_shift", c.max_shift);
    v.text("init_from", c.init_from);
}

struct Writer {
    std::map<std::string, std::string>& out;
    void flag(const char* key, bool value) { out[key] = value ? "true" : "false"; }
    void real(const char* key, float value) { out[key] = number(value); }
    void integer(const char* key, int value) { out[key] = std::to_string(value); }
    void text(const char* key, const std::string& value) {
        if (!value.empty()) out[key] = value;  // absent in the files of fresh runs, as before the field existed
    }
};

struct Reader {
    const std::map<std::string, std::string>& in;
    const std::string& source;

    const std::string* find(const char* key) const {
        auto it = in.find(key);
        return it == in.end() ? nullptr : &it->second;
    }
    [[noreturn]] void bad(const char* key, const std::string& value, const char* expected) const {
        throw Error(source + ": metadata '" + key + "' = '" + value + "' is not " + expected);
    }
    void flag(const char* key, bool& value) const {
        if (auto s = find(key)) {
            if (*s == "true") value = true;
            else if (*s == "false") value = false;
            else bad(key, *s, "'true' or 'false'");
        }
    }
    void real(const char* key, float& value) const {
        if (auto s = find(key)) {
            char* end = nullptr;
            const double parsed = std::strtod(s->c_str(), &end);
            if (s->empty() || *end != '\0' || !std::isfinite(parsed)) bad(key, *s, "a finite number");
            value = static_cast<float>(parsed);
        }
    }
    void integer(const char* key, int& value) const {
        if (auto s = find(key)) {
            char* end = nullptr;
            const long parsed = std::strtol(s->c_str(), &end, 10);
            if (s->empty() || *end != '\0' || parsed < 0 || parsed > 1000000) bad(key, *s, "a small non-negative integer");
            value = static_cast<int>(parsed);
        }
    }
    void text(const char* key, std::string& value) const {
        if (auto s = find(key)) value = *s;
    }
};

}  // namespace

std::map<std::string, std::string> config_to_metadata(const Config& config) {
    std::map<std::string, std::string> metadata;
    metadata["format"] = "capsnet";
    metadata["preset"] = preset_name(config.preset);
    metadata["init"] = init_name(config.init);
    Config copy = config;
    visit_fields(copy, Writer{metadata});
    // Absent when every layer trains, as in the files written before the field existed.
    if (!config.trainable.all()) metadata["train_only"] = trainable_layers_name(config.trainable);
    return metadata;
}

Config config_from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source) {
    auto preset = metadata.find("preset");
    if (preset == metadata.end()) throw Error(source + ": metadata has no 'preset' (not a CapsNet model file?)");
    Preset p;
    try {
        p = preset_from_name(preset->second);
    } catch (const Error& e) {
        throw Error(source + ": " + e.what());
    }
    Config config = config_for_preset(p);
    if (auto init = metadata.find("init"); init != metadata.end()) {
        if (init->second == "uniform_005") config.init = InitScheme::uniform_005;
        else if (init->second == "pytorch_default") config.init = InitScheme::pytorch_default;
        else throw Error(source + ": metadata 'init' = '" + init->second + "' is unknown");
    }
    visit_fields(config, Reader{metadata, source});
    if (auto trainable = metadata.find("train_only"); trainable != metadata.end()) {
        try {
            config.trainable = trainable_layers_from_name(trainable->second);
        } catch (const Error& e) {
            throw Error(source + ": metadata 'train_only': " + e.what());
        }
    }
    if (config.routing_iterations < 1) throw Error(source + ": metadata 'routing_iterations' must be at least 1");
    return config;
}

}  // namespace capsnet
