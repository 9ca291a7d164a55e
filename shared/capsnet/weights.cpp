// Model files on top of the generic safetensors reader and writer.
#include "capsnet/weights.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace capsnet {

namespace {

template <class E>
std::vector<std::int64_t> shape_of(const E& tensor) {
    return std::vector<std::int64_t>(tensor.shape().begin(), tensor.shape().end());
}

// The largest weight a model file may hold. Trained weights here are below 10 in magnitude; 1e6 keeps
// every sum of the forward pass (fan-in at most 20736, squared by squash) far inside float's 3.4e38, while
// a weight of 1e30 (or an int8 scale of 1e30) would overflow to infinity and NaN on the first image.
constexpr float max_weight_magnitude = 1e6f;

// A NaN or an infinity in a weight spreads silently through every capsule, so a model file holding one
// (or an absurdly large value, as above) is rejected, naming the file, the tensor and the first bad value.
void require_plausible_weights(const std::vector<float>& values, const std::string& where) {
    for (std::size_t i = 0; i < values.size(); ++i) {
        const float v = values[i];
        if (std::isnan(v)) throw Error(where + ": value " + std::to_string(i) + " is NaN (weights must be finite)");
        if (std::isinf(v)) throw Error(where + ": value " + std::to_string(i) + " is infinite (weights must be finite)");
        if (std::fabs(v) > max_weight_magnitude)
            throw Error(where + ": value " + std::to_string(i) + " is " + std::to_string(v) +
                        ", beyond the plausible +-1e6 of a model's weight");
    }
}

// Values of an I8 tensor times the F32 scale of its output channel (the first axis). Each scale must be
// positive and finite (the exporter writes largest |w| / 127, or 1 for an all-zero channel) and small
// enough that 127 times it is a plausible weight.
std::vector<float> dequantize(const SafeTensors& file, const std::string& name, const StoredTensor& stored,
                              const std::string& source) {
    const auto scale_it = file.tensors.find(name + ".scale");
    if (scale_it == file.tensors.end())
        throw Error(source + ": tensor '" + name + "' is I8 but '" + name + ".scale' is missing");
    const std::string scale_where = source + ": tensor '" + name + ".scale'";
    const std::vector<float> scale = stored_tensor_to_f32(scale_it->second, scale_where);
    for (std::size_t c = 0; c < scale.size(); ++c)
        if (!(std::isfinite(scale[c]) && scale[c] > 0 && 127 * scale[c] <= max_weight_magnitude))
            throw Error(scale_where + ": the scale of channel " + std::to_string(c) + " is " + std::to_string(scale[c]) +
                        " (int8 scales must be positive, finite and at most 1e6 / 127)");
    const std::int64_t channels = stored.shape.empty() ? 1 : stored.shape[0];
    if (static_cast<std::int64_t>(scale.size()) != channels)
        throw Error(source + ": '" + name + ".scale' has " + std::to_string(scale.size()) + " values for " +
                    std::to_string(channels) + " output channels");
    const std::size_t count = stored.bytes.size();
    const std::size_t per_channel = channels > 0 ? count / static_cast<std::size_t>(channels) : 0;
    std::vector<float> values(count);
    for (std::size_t i = 0; i < count; ++i)
        values[i] = static_cast<float>(static_cast<std::int8_t>(stored.bytes[i])) * scale[i / per_channel];
    return values;
}

}  // namespace

SafeTensors model_to_safetensors(const Model& model) {
    SafeTensors file;
    file.metadata = config_to_metadata(model.config);
    visit_parameters(
        [&file](const char* name, const auto& tensor) {
            file.tensors[name] = stored_tensor_f32(shape_of(tensor), tensor.data());
        },
        model.params);
    return file;
}

SafeTensors model_to_safetensors(const Model& model, DType dtype) {
    SafeTensors file = model_to_safetensors(model);
    if (dtype == DType::F32) return file;
    if (dtype != DType::F16 && dtype != DType::I8)
        throw Error(std::string("model export: dtype ") + dtype_name(dtype) + " is not supported (use F32, F16 or I8)");
    SafeTensors out;
    out.metadata = file.metadata;
    for (const auto& [name, f32] : file.tensors) {
        const std::vector<float> values = stored_tensor_to_f32(f32, name);
        const bool is_weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
        if (dtype == DType::F16) {
            StoredTensor half{DType::F16, f32.shape, std::vector<std::uint8_t>(values.size() * 2)};
            for (std::size_t i = 0; i < values.size(); ++i) {
                const std::uint16_t bits = float_to_half(values[i]);
                half.bytes[2 * i] = static_cast<std::uint8_t>(bits & 0xff);
                half.bytes[2 * i + 1] = static_cast<std::uint8_t>(bits >> 8);
            }
            out.tensors[name] = std::move(half);
        } else if (!is_weight) {
            out.tensors[name] = f32;
        } else {
            const std::size_t channels = static_cast<std::size_t>(f32.shape[0]);
            const std::size_t per_channel = values.size() / channels;
            std::vector<float> scale(channels);
            StoredTensor quantized{DType::I8, f32.shape, std::vector<std::uint8_t>(values.size())};
            for (std::size_t c = 0; c < channels; ++c) {
                float largest = 0;
                for (std::size_t i = 0; i < per_channel; ++i) largest = std::max(largest, std::abs(values[c * per_channel + i]));
                // An all-zero channel keeps scale 1 so dequantisation never divides by or multiplies with 0/0.
                scale[c] = largest > 0 ? largest / 127.0f : 1.0f;
                for (std::size_t i = 0; i < per_channel; ++i) {
                    const float q = std::nearbyint(values[c * per_channel + i] / scale[c]);
                    quantized.bytes[c * per_channel + i] =
                        static_cast<std::uint8_t>(static_cast<std::int8_t>(std::clamp(q, -127.0f, 127.0f)));
                }
            }
            out.tensors[name] = std::move(quantized);
            out.tensors[name + ".scale"] = stored_tensor_f32({static_cast<std::int64_t>(channels)}, scale.data());
        }
    }
    return out;
}

Model model_from_safetensors(const SafeTensors& file, const std::string& source) {
    Model model;
    model.config = config_from_metadata(file.metadata, source);
    model.params = parameters_zeros<float>(model.config);
    std::set<std::string> expected;
    visit_parameters(
        [&](const char* name, auto& tensor) {
            expected.insert(name);
            const auto it = file.tensors.find(name);
            if (it == file.tensors.end())
                throw Error(source + ": tensor '" + std::string(name) + "' is missing (preset " +
                            preset_name(model.config.preset) + ")");
            const StoredTensor& stored = it->second;
            if (stored.shape != shape_of(tensor))
                throw Error(source + ": tensor '" + std::string(name) + "' has shape " + shape_text(stored.shape) +
                            ", expected " + shape_text(shape_of(tensor)) + " for preset " +
                            preset_name(model.config.preset));
            std::vector<float> values;
            const std::string where = source + ": tensor '" + std::string(name) + "'";
            if (stored.dtype == DType::I8) {
                values = dequantize(file, name, stored, source);
                expected.insert(std::string(name) + ".scale");
            } else {
                values = stored_tensor_to_f32(stored, where);
            }
            require_plausible_weights(values, where);
            std::copy(values.begin(), values.end(), tensor.data());  // row-major, the order of the file
        },
        model.params);
    for (const auto& entry : file.tensors)
        if (!expected.count(entry.first))
            throw Error(source + ": unexpected tensor '" + entry.first + "' for preset " + preset_name(model.config.preset));
    return model;
}

void model_save(const std::string& path, const Model& model) { safetensors_write(path, model_to_safetensors(model)); }

Model model_load(const std::string& path) { return model_from_safetensors(safetensors_read(path), path); }

}  // namespace capsnet
