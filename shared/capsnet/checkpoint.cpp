// Checkpoint files: the model's tensors under their own names, the Adam moments under "adam.m." and
// "adam.v." prefixes, and the run's position as "checkpoint.*" metadata next to the model config.
#include "capsnet/checkpoint.hpp"

#include <cstdio>
#include <cstdlib>

namespace capsnet {

namespace {

const std::string first_moment_prefix = "adam.m.";
const std::string second_moment_prefix = "adam.v.";

// %.17g keeps every bit of a double through the text metadata.
std::string exact_text(double value) {
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.17g", value);
    return buffer;
}

const std::string& required(const std::map<std::string, std::string>& metadata, const std::string& key,
                            const std::string& source) {
    const auto it = metadata.find(key);
    if (it == metadata.end()) throw Error(source + ": not a checkpoint: metadata '" + key + "' is missing");
    return it->second;
}

double number(const std::map<std::string, std::string>& metadata, const std::string& key, const std::string& source) {
    const std::string& text = required(metadata, key, source);
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0') throw Error(source + ": metadata '" + key + "' is not a number: '" + text + "'");
    return value;
}

std::int64_t integer(const std::map<std::string, std::string>& metadata, const std::string& key,
                     const std::string& source) {
    const std::string& text = required(metadata, key, source);
    char* end = nullptr;
    const long long value = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') throw Error(source + ": metadata '" + key + "' is not an integer: '" + text + "'");
    return value;
}

// Every "checkpoint.*" metadata field with its key, walked once for writing and once for reading, so
// the two directions cannot drift apart (the pattern of config.cpp's visit_fields).
template <class Visitor>
void visit_position_fields(std::int64_t& adam_step, DataPlan& data, TrainingProgress& progress, Visitor&& v) {
    v.integer("checkpoint.adam_step", adam_step);
    v.integer("checkpoint.seed", data.seed);
    v.integer("checkpoint.train_images", data.train_images);
    v.integer("checkpoint.validation_images", data.validation_images);
    v.integer("checkpoint.test_images", data.test_images);
    v.integer("checkpoint.epochs", progress.epochs);
    v.integer("checkpoint.epoch", progress.epoch);
    v.integer("checkpoint.step_in_epoch", progress.step_in_epoch);
    v.real("checkpoint.margin_loss_sum", progress.margin_loss_sum);
    v.real("checkpoint.reconstruction_loss_sum", progress.reconstruction_loss_sum);
    v.integer("checkpoint.correct", progress.correct);
    v.integer("checkpoint.seen", progress.seen);
    v.real("checkpoint.seconds", progress.seconds);
    v.real("checkpoint.best_validation_accuracy", progress.best_validation_accuracy);
    v.integer("checkpoint.best_epoch", progress.best_epoch);
}

struct PositionWriter {
    std::map<std::string, std::string>& out;
    template <class Integer>
    void integer(const char* key, Integer value) { out[key] = std::to_string(value); }
    void real(const char* key, double value) { out[key] = exact_text(value); }
};

struct PositionReader {
    const std::map<std::string, std::string>& in;
    const std::string& source;
    template <class Integer>
    void integer(const char* key, Integer& value) { value = static_cast<Integer>(capsnet::integer(in, key, source)); }
    void real(const char* key, double& value) { value = number(in, key, source); }
};

}  // namespace

SafeTensors checkpoint_to_safetensors(const Checkpoint& checkpoint) {
    SafeTensors file = model_to_safetensors(checkpoint.model);
    visit_parameters(
        [&file](const char* name, const auto& m, const auto& v) {
            const std::vector<std::int64_t> shape(m.shape().begin(), m.shape().end());
            file.tensors[first_moment_prefix + name] = stored_tensor_f32(shape, m.data());
            file.tensors[second_moment_prefix + name] = stored_tensor_f32(shape, v.data());
        },
        checkpoint.adam.first_moment, checkpoint.adam.second_moment);
    // The visitor takes references for reading; writing only reads them, from copies.
    std::int64_t adam_step = checkpoint.adam.step;
    DataPlan data = checkpoint.data;
    TrainingProgress progress = checkpoint.progress;
    visit_position_fields(adam_step, data, progress, PositionWriter{file.metadata});
    return file;
}

Checkpoint checkpoint_from_safetensors(const SafeTensors& file, const std::string& source) {
    const auto& meta = file.metadata;
    required(meta, "checkpoint.epoch", source);  // a plain model file fails here, with a clear message

    // Split the tensors: the model's own go to the model loader (which rejects anything unexpected).
    SafeTensors model_part;
    model_part.metadata = meta;
    for (const auto& entry : file.tensors) {
        const std::string& name = entry.first;
        if (name.rfind(first_moment_prefix, 0) != 0 && name.rfind(second_moment_prefix, 0) != 0)
            model_part.tensors.insert(entry);
    }
    Checkpoint checkpoint;
    checkpoint.model = model_from_safetensors(model_part, source);
    checkpoint.adam = adam_init<float>(checkpoint.model.config);
    visit_parameters(
        [&](const char* name, auto& m, auto& v) {
            for (const auto& [prefix, tensor] : {std::make_pair(first_moment_prefix, &m), std::make_pair(second_moment_prefix, &v)}) {
                const auto it = file.tensors.find(prefix + name);
                if (it == file.tensors.end()) throw Error(source + ": checkpoint tensor '" + prefix + name + "' is missing");
                const std::vector<std::int64_t> shape(tensor->shape().begin(), tensor->shape().end());
                if (it->second.shape != shape)
                    throw Error(source + ": checkpoint tensor '" + prefix + name + "' has shape " +
                                shape_text(it->second.shape) + ", expected " + shape_text(shape));
                const std::vector<float> values = stored_tensor_to_f32(it->second, source + ": '" + prefix + name + "'");
                std::copy(values.begin(), values.end(), tensor->begin());
            }
        },
        checkpoint.adam.first_moment, checkpoint.adam.second_moment);
    visit_position_fields(checkpoint.adam.step, checkpoint.data, checkpoint.progress, PositionReader{meta, source});
    const DataPlan& data = checkpoint.data;
    const TrainingProgress& progress = checkpoint.progress;
    if (progress.epoch < 0 || progress.step_in_epoch < 0 || checkpoint.adam.step < 0 || data.train_images <= 0)
        throw Error(source + ": checkpoint position is invalid (epoch " + std::to_string(progress.epoch) + ", step " +
                    std::to_string(progress.step_in_epoch) + ", " + std::to_string(data.train_images) + " training images)");
    return checkpoint;
}

void checkpoint_save(const std::string& path, const Checkpoint& checkpoint) {
    safetensors_write(path, checkpoint_to_safetensors(checkpoint));
}

Checkpoint checkpoint_load(const std::string& path) { return checkpoint_from_safetensors(safetensors_read(path), path); }

}  // namespace capsnet
