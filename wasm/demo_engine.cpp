#include "demo_engine.hpp"

#include <algorithm>

#include <xtensor/xmanipulation.hpp>
#include <xtensor/xview.hpp>

#include "capsnet/drawing.hpp"
#include "capsnet/gemm_parallel.hpp"
#include "capsnet/safetensors.hpp"
#include "capsnet/visualize.hpp"

namespace capsnet {

int demo_use_gemm_threads(int requested) {
    gemm_parallel_set_threads(std::clamp(requested, 1, demo_max_gemm_threads));
    gemm_set_backend(gemm_parallel_backend());
    return gemm_parallel_threads();
}

std::vector<GalleryDigit> gallery_parse(const std::vector<std::uint8_t>& bytes) {
    constexpr std::size_t header = 8, record = 1 + demo_image_pixels;
    if (bytes.size() < header || std::string(bytes.begin(), bytes.begin() + 4) != "CNG1")
        throw Error("gallery: not a CNG1 gallery file");
    const std::size_t count = bytes[4] | bytes[5] << 8 | bytes[6] << 16 | static_cast<std::size_t>(bytes[7]) << 24;
    if (count > 100000 || bytes.size() != header + count * record)
        throw Error("gallery: " + std::to_string(bytes.size()) + " bytes do not hold " + std::to_string(count) +
                    " digits");
    std::vector<GalleryDigit> digits(count);
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint8_t* at = bytes.data() + header + i * record;
        if (at[0] > 9) throw Error("gallery: digit " + std::to_string(i) + " has label " + std::to_string(at[0]));
        digits[i].label = at[0];
        std::copy_n(at + 1, demo_image_pixels, digits[i].pixels.begin());
    }
    return digits;
}

std::vector<std::uint8_t> gallery_serialize(const std::vector<GalleryDigit>& digits) {
    std::vector<std::uint8_t> bytes = {'C', 'N', 'G', '1'};
    const std::size_t count = digits.size();
    for (int shift = 0; shift < 32; shift += 8) bytes.push_back(static_cast<std::uint8_t>(count >> shift));
    for (const GalleryDigit& digit : digits) {
        if (digit.label < 0 || digit.label > 9) throw Error("gallery: label " + std::to_string(digit.label) + " is not a digit");
        bytes.push_back(static_cast<std::uint8_t>(digit.label));
        bytes.insert(bytes.end(), digit.pixels.begin(), digit.pixels.end());
    }
    return bytes;
}

Tensor<float, 2> demo_image_floats(const DemoImage& image) {
    Tensor<float, 2> values(std::array<std::size_t, 2>{demo_image_side, demo_image_side});
    std::transform(image.begin(), image.end(), values.begin(), [](std::uint8_t v) { return v / 255.0f; });
    return values;
}

DemoPoseImage demo_pose_image(const DemoImage& base, bool refit) {
    if (refit) return {drawing_upscale(demo_image_floats(base), demo_raster_side), PoseSource::canvas};
    return {demo_image_floats(base), PoseSource::mnist};
}

DemoImage demo_pose_input(const DemoImage& base, const AffineTransform& pose, bool refit) {
    const DemoPoseImage source = demo_pose_image(base, refit);
    const std::vector<std::uint8_t> bytes = pose_input_bytes(source.image, source.source, pose);
    DemoImage input;
    std::copy(bytes.begin(), bytes.end(), input.begin());
    return input;
}

DemoEngine::DemoEngine(const std::vector<std::uint8_t>& model_file, const std::string& source)
    : DemoEngine(model_from_safetensors(safetensors_parse(model_file.data(), model_file.size(), source), source)) {}

DemoEngine::DemoEngine(Model model) : model_(std::move(model)) {}

int DemoEngine::classes() const { return static_cast<int>(model_.params.digit_weight.shape(1)); }
int DemoEngine::capsule_dims() const { return static_cast<int>(model_.params.digit_weight.shape(2)); }

DemoAnalysis DemoEngine::classify(const DemoImage& input) {
    Tensor<float, 4> image = xt::zeros<float>({std::size_t{1}, std::size_t{1}, std::size_t{demo_image_side},
                                               std::size_t{demo_image_side}});
    std::transform(input.begin(), input.end(), image.data(), [](std::uint8_t v) { return v / 255.0f; });
    model_forward(model_.config, model_.params, image, DecoderMask::none, {}, scratch_);

    DemoAnalysis analysis;
    analysis.lengths.assign(scratch_.lengths.data(), scratch_.lengths.data() + classes());
    analysis.capsules = xt::view(scratch_.digit_capsules, 0, xt::all(), xt::all());
    const bool blank = std::all_of(input.begin(), input.end(), [](std::uint8_t v) { return v == 0; });
    analysis.prediction = blank ? -1 : predicted_classes(scratch_.lengths)[0];
    return analysis;
}

RoutingView DemoEngine::routing() const { return routing_view(scratch_, 0); }

PoseSweep DemoEngine::pose_sweep(const DemoImage& base, bool refit, const AffineTransform& pose, PoseAxis axis,
                                 const std::vector<float>& values, int digit) {
    const DemoPoseImage source = demo_pose_image(base, refit);
    return capsnet::pose_sweep(model_.config, model_.params, source.image, source.source, pose, axis, values, digit,
                               scratch_);
}

Tensor<float, 2> DemoEngine::mask_grid(const Tensor<float, 2>& capsules) const {
    Tensor<float, 3> batch = xt::expand_dims(capsules, 0);
    Tensor<float, 3> grid = mask_grid_reconstructions(model_.params, batch);
    return xt::view(grid, 0, xt::all(), xt::all());
}

Tensor<float, 3> DemoEngine::sweep_grid(const Tensor<float, 2>& capsules, int digit,
                                        const std::vector<float>& offsets) const {
    return dimension_sweep_reconstructions(model_.params, capsules, digit, offsets);
}

std::vector<float> DemoEngine::reconstruct(const std::vector<float>& capsule, int digit) const {
    const std::size_t J = classes(), D = capsule_dims();
    if (digit < 0 || static_cast<std::size_t>(digit) >= J || capsule.size() != D)
        throw Error("reconstruct: capsule " + std::to_string(digit) + " with " + std::to_string(capsule.size()) +
                    " values does not fit a model of " + std::to_string(J) + " x " + std::to_string(D));
    Tensor<float, 2> input = xt::zeros<float>({std::size_t{1}, J * D});
    std::copy(capsule.begin(), capsule.end(), input.data() + digit * D);
    Tensor<float, 2> hidden1, hidden2, reconstruction;
    decoder_forward(model_.params, input, hidden1, hidden2, reconstruction);
    return {reconstruction.begin(), reconstruction.end()};
}

}  // namespace capsnet
