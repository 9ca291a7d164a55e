// Model and training hyper-parameters, and the two named presets of docs/model-contract.md:
// `paper` (Sabour et al. 2017 as written) and `seed` (the Chainer implementation the project follows).
// Every saved model records its Config as safetensors metadata, so a file is self-describing.
#pragma once

#include <map>
#include <string>

namespace capsnet {

// Architecture sizes fixed by the paper; named so the code reads as the paper does.
constexpr int image_side = 28;
constexpr int image_pixels = image_side * image_side;
constexpr int conv1_channels = 256;
constexpr int conv_kernel = 9;
constexpr int conv1_side = image_side - conv_kernel + 1;             // 20
constexpr int primary_types = 32;
constexpr int primary_dims = 8;
constexpr int primary_channels = primary_types * primary_dims;         // 256
constexpr int primary_stride = 2;
constexpr int primary_side = (conv1_side - conv_kernel) / primary_stride + 1;  // 6
constexpr int primary_grid = primary_side * primary_side;              // 36
constexpr int primary_capsules = primary_types * primary_grid;         // 1152
constexpr int digit_classes = 10;
constexpr int digit_dims = 16;
constexpr int decoder_input = digit_classes * digit_dims;              // 160
constexpr int decoder_hidden1 = 512;
constexpr int decoder_hidden2 = 1024;

enum class Preset { paper, seed };

enum class InitScheme {
    uniform_005,      // everything Uniform(-0.05, 0.05), biases 0: Chainer's initializers.Uniform(0.05)
    pytorch_default,  // conv/linear U(+-1/sqrt(fan_in)) for weights and biases; digit W ~ N(0, 0.01^2)
};

// The parameter groups that training updates, named by their parameters' prefixes (conv1, primary, digit,
// decoder). A frozen group keeps its weights and its Adam moments, and the backward pass stops below the
// lowest trainable group: training only the digit capsules and the decoder skips both convolutions'
// backward (the browser demo's fine-tuning; `capsnet train --train-only digit,decoder`).
struct TrainableLayers {
    bool conv1 = true, primary = true, digit = true, decoder = true;

    bool all() const { return conv1 && primary && digit && decoder; }
    bool any() const { return conv1 || primary || digit || decoder; }
    // Whether the parameter of this name (conv1.weight, decoder.2.bias...) trains.
    bool trains(const std::string& parameter_name) const;
    bool operator==(const TrainableLayers& other) const {
        return conv1 == other.conv1 && primary == other.primary && digit == other.digit && decoder == other.decoder;
    }
    bool operator!=(const TrainableLayers& other) const { return !(*this == other); }
};
// "all", or the trainable groups in the network's order joined by commas ("digit,decoder").
std::string trainable_layers_name(const TrainableLayers& layers);
// Parses that list ("all", "head" for digit,decoder, or groups in any order); Error naming the valid
// groups for anything else, and for an empty set.
TrainableLayers trainable_layers_from_name(const std::string& names);

struct Config {
    Preset preset = Preset::seed;

    // Model.
    bool squash_primary = false;        // paper: primary capsules squashed; seed: raw conv output
    bool shared_digit_weights = true;   // seed: one W (+ bias) per capsule type, shared over the 6x6 grid
    float conv1_leaky_slope = 0.05f;    // 0 gives plain ReLU
    int routing_iterations = 3;
    bool routing_stop_gradient = false; // true: coupling coefficients are treated as constants in backprop
    bool reconstruct = true;            // add the decoder's reconstruction loss
    float reconstruction_weight = 0.0005f;
    float margin_positive = 0.9f;
    float margin_negative = 0.1f;
    float margin_lambda = 0.5f;

    // Training.
    InitScheme init = InitScheme::uniform_005;
    int batch_size = 256;
    float learning_rate = 1e-3f;
    float lr_decay = 0.95f;   // multiplied in once per epoch
    float lr_floor = 1e-5f;
    float adam_beta1 = 0.9f;
    float adam_beta2 = 0.999f;
    float adam_epsilon = 1e-8f;
    int max_shift = 2;        // random translation of each training image, in pixels
    TrainableLayers trainable;  // every layer unless --train-only says otherwise
    // The model file a run's weights started from (capsnet train --init-from), "" for a fresh
    // initialisation. Carried into every file the run writes, so a model says where it came from.
    std::string init_from;
};

Config config_for_preset(Preset preset);

// The one rule for the digit capsules' bias: the seed's per-type 1x1 convolutions carry one, the
// paper's per-capsule W has none. Parameters, the CPU model and the CUDA kernels all ask this.
inline bool has_digit_bias(const Config& config) { return config.shared_digit_weights; }
Preset preset_from_name(const std::string& name);  // throws Error naming the valid presets
const char* preset_name(Preset preset);

// Learning rate of a 0-based epoch: lr * decay^epoch, never below the floor.
double learning_rate_at_epoch(const Config& config, int epoch);

// Round trip through string metadata (safetensors `__metadata__`). from_metadata starts from the
// recorded preset's defaults, so files written before a field existed still load.
std::map<std::string, std::string> config_to_metadata(const Config& config);
Config config_from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source);

}  // namespace capsnet
