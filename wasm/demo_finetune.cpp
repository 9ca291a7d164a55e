#include "demo_finetune.hpp"

#include <algorithm>
#include <numeric>

#include "capsnet/random.hpp"

namespace capsnet {

namespace {

// k distinct indices of [0, n) (all of them when k >= n), in a random order: a partial Fisher-Yates.
std::vector<std::size_t> draw_distinct(std::size_t n, std::size_t k, Rng& rng) {
    std::vector<std::size_t> indices(n);
    std::iota(indices.begin(), indices.end(), std::size_t{0});
    k = std::min(k, n);
    for (std::size_t i = 0; i < k; ++i) std::swap(indices[i], indices[i + rng.below(n - i)]);
    indices.resize(k);
    return indices;
}

}  // namespace

FineTuner::FineTuner(const Model& start, std::vector<TeachExample> personal, std::vector<GalleryDigit> mnist,
                     const FineTuneOptions& options)
    : model_(start), personal_(std::move(personal)), mnist_(std::move(mnist)), options_(options) {
    if (personal_.empty()) throw Error("fine-tune: no personal examples to learn from");
    if (mnist_.empty()) throw Error("fine-tune: no MNIST digits to mix in");
    if (options_.steps < 1 || options_.batch_size < 2 || options_.learning_rate <= 0 || options_.micro_batch < 0)
        throw Error("fine-tune: steps, a batch of 2 or more and a learning rate above 0 are needed");
    for (const TeachExample& example : personal_)
        if (example.label < 0 || example.label >= digit_classes)
            throw Error("fine-tune: label " + std::to_string(example.label) + " is not a digit");
    model_.config.trainable = options_.layers;
    cache_features_ = !options_.layers.conv1 && !options_.layers.primary;
    micro_batch_ = options_.micro_batch > 0 ? options_.micro_batch : cache_features_ ? options_.batch_size : 2;
    adam_ = adam_init<float>(model_.config);
    step_grads_ = parameters_zeros<float>(model_.config);
}

const DemoImage& FineTuner::image(std::size_t example) const {
    return example < personal_.size() ? personal_[example].pixels : mnist_[example - personal_.size()].pixels;
}

int FineTuner::label(std::size_t example) const {
    return example < personal_.size() ? personal_[example].label : mnist_[example - personal_.size()].label;
}

const Tensor<float, 2>& FineTuner::features(std::size_t example) {
    auto found = feature_cache_.find(example);
    if (found != feature_cache_.end()) return found->second;
    Tensor<float, 4> input = xt::zeros<float>({std::size_t{1}, std::size_t{1}, std::size_t{demo_image_side},
                                               std::size_t{demo_image_side}});
    const DemoImage& pixels = image(example);
    std::transform(pixels.begin(), pixels.end(), input.data(), [](std::uint8_t v) { return v / 255.0f; });
    features_forward(model_.config, model_.params, input, state_);
    Tensor<float, 2> capsules(std::array<std::size_t, 2>{std::size_t(primary_capsules), std::size_t(primary_dims)});
    std::copy(state_.primary_capsules.begin(), state_.primary_capsules.end(), capsules.begin());
    return feature_cache_.emplace(example, std::move(capsules)).first->second;
}

void FineTuner::begin_step() {
    // The stream of step s depends on (seed, s) only, so the batches do not depend on the frame timing.
    Rng rng(options_.seed * 0x9e3779b97f4a7c15ULL + static_cast<std::uint64_t>(steps_done_));
    const std::size_t batch = static_cast<std::size_t>(options_.batch_size);
    const std::size_t from_personal = std::min(personal_.size(), std::max<std::size_t>(1, batch / 4));
    batch_ = draw_distinct(personal_.size(), from_personal, rng);
    for (std::size_t index : draw_distinct(mnist_.size(), batch - from_personal, rng))
        batch_.push_back(personal_.size() + index);
    batch_next_ = 0;
    step_loss_ = 0;
    parameters_fill_zero(step_grads_);
}

void FineTuner::run_micro_batch() {
    if (batch_next_ == 0) begin_step();
    const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(micro_batch_), batch_.size() - batch_next_);
    const std::vector<std::size_t> examples(batch_.begin() + batch_next_, batch_.begin() + batch_next_ + count);
    std::vector<int> labels;
    Tensor<float, 4> images = xt::zeros<float>({count, std::size_t{1}, std::size_t{demo_image_side},
                                                std::size_t{demo_image_side}});
    for (std::size_t i = 0; i < count; ++i) {
        labels.push_back(label(examples[i]));
        const DemoImage& pixels = image(examples[i]);
        std::transform(pixels.begin(), pixels.end(), images.data() + i * demo_image_pixels,
                       [](std::uint8_t v) { return v / 255.0f; });
    }
    const DecoderMask mask = model_.config.reconstruct ? DecoderMask::labels : DecoderMask::none;
    if (cache_features_) {
        Tensor<float, 3> capsules(std::array<std::size_t, 3>{count, std::size_t(primary_capsules), std::size_t(primary_dims)});
        for (std::size_t i = 0; i < count; ++i) {
            const Tensor<float, 2>& cached = features(examples[i]);  // may run features_forward on state_
            std::copy(cached.begin(), cached.end(), capsules.data() + i * cached.size());
        }
        state_.images = images;
        state_.primary_capsules = std::move(capsules);
        head_forward(model_.config, model_.params, mask, labels, state_);
    } else {
        model_forward(model_.config, model_.params, images, mask, labels, state_);
    }
    const float weight = static_cast<float>(count) / static_cast<float>(batch_.size());
    step_loss_ += weight * model_loss(model_.config, state_, labels).total();
    // Added into the step's sum in place: adding a second copy of every gradient took ~150 ms of a wasm
    // every-layer step at micro-batch 1 (bench/demo_timing --profile, "other").
    model_backward_accumulate(model_.config, model_.params, state_, labels, weight, step_grads_, gradients_);

    batch_next_ += count;
    if (batch_next_ == batch_.size()) {
        adam_update(model_.config, options_.learning_rate, step_grads_, model_.params, adam_);
        last_loss_ = step_loss_;
        batch_next_ = 0;
        ++steps_done_;
    }
}

bool FineTuner::advance(double budget_ms) {
    const auto start = std::chrono::steady_clock::now();
    const auto elapsed_ms = [&] {
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    };
    while (!done()) {
        run_micro_batch();
        if (elapsed_ms() >= budget_ms) break;
    }
    seconds_ += elapsed_ms() / 1000.0;
    return done();
}

double FineTuner::progress() const {
    const double per_step = static_cast<double>(options_.batch_size);
    return (steps_done_ * per_step + static_cast<double>(batch_next_)) / (options_.steps * per_step);
}

ChunkedClassifier::ChunkedClassifier(const Model& model, std::vector<GalleryDigit> digits, int batch_size)
    : model_(model), digits_(std::move(digits)), batch_size_(std::max(batch_size, 1)) {
    predictions_.reserve(digits_.size());
}

bool ChunkedClassifier::advance(double budget_ms) {
    const auto start = std::chrono::steady_clock::now();
    while (!done()) {
        const std::size_t first = predictions_.size();
        const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(batch_size_), digits_.size() - first);
        Tensor<float, 4> images = xt::zeros<float>({count, std::size_t{1}, std::size_t{demo_image_side},
                                                    std::size_t{demo_image_side}});
        for (std::size_t i = 0; i < count; ++i) {
            const DemoImage& pixels = digits_[first + i].pixels;
            std::transform(pixels.begin(), pixels.end(), images.data() + i * demo_image_pixels,
                           [](std::uint8_t v) { return v / 255.0f; });
        }
        model_forward(model_.config, model_.params, images, DecoderMask::none, {}, state_);
        for (int predicted : predicted_classes(state_.lengths)) predictions_.push_back(predicted);
        if (std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() >= budget_ms)
            break;
    }
    return done();
}

int ChunkedClassifier::correct(std::size_t first) const {
    int count = 0;
    for (std::size_t i = first; i < predictions_.size(); ++i) count += predictions_[i] == digits_[i].label;
    return count;
}

std::vector<double> fine_tune_step_times(const Model& model, const std::vector<TeachExample>& personal,
                                         const std::vector<GalleryDigit>& mnist, const FineTuneOptions& options) {
    FineTuner tuner(model, personal, mnist, options);
    std::vector<double> times;
    while (!tuner.done()) {
        const int step = tuner.steps_done();
        const auto start = std::chrono::steady_clock::now();
        while (tuner.steps_done() == step) tuner.advance(0);
        times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    return times;
}

double FineTuner::seconds_per_step() const {
    const double steps = progress() * options_.steps;
    return steps > 0 ? seconds_ / steps : 0.0;
}

}  // namespace capsnet
