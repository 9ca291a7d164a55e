// Fine-tuning the demo's model on a person's own digits ("Learn your handwriting"), with the core's own
// forward, backward and Adam. Plain C++ like demo_engine.hpp, so the native tests, the wasm-against-native
// test and the page run the same code.
//
// Every step takes a batch of `batch_size` images: up to a quarter of them personal examples, the rest MNIST
// training digits (so the model does not forget what it knew), drawn from a stream seeded by (seed, step),
// without augmentation. A step is computed in micro-batches whose gradients are summed with the weights
// micro / batch (the losses are batch means), so the page can spread one step over several frames and
// stay responsive; the result does not depend on how the micro-batches fall across advance() calls.
//
// With the convolutions frozen (the default: digit capsules and decoder train) the primary capsules of
// each image never change, so they are computed once per image and kept: a step then costs the digit
// capsules' predictions, routing and the decoder only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <vector>

#include "capsnet/adam.hpp"
#include "capsnet/weights.hpp"
#include "demo_engine.hpp"

namespace capsnet {

struct TeachExample {
    int label = 0;
    DemoImage pixels{};
};

struct FineTuneOptions {
    TrainableLayers layers = trainable_layers_from_name("head");
    int steps = 40;
    int batch_size = 16;
    // A tenth of the seed preset's: small steps from a trained model. Measured in tests/e2e/teach_e2e.mjs
    // (8 quarter-turned sevens, 40 steps): 2e-4 learnt them as well but cost 1.0 pp on 500 MNIST test
    // digits, 1e-4 0.2 pp.
    double learning_rate = 1e-4;
    std::uint64_t seed = 1;
    int micro_batch = 0;          // images per forward/backward pass; 0: the whole batch (head) or 2 (all layers)
};

class FineTuner {
public:
    // Error when there are no personal examples or no MNIST digits, or an option is out of range.
    FineTuner(const Model& start, std::vector<TeachExample> personal, std::vector<GalleryDigit> mnist,
              const FineTuneOptions& options);

    // Runs micro-batches until `budget_ms` has passed (always at least one) or the last step is done.
    // Returns done().
    bool advance(double budget_ms);
    bool done() const { return steps_done_ >= options_.steps; }
    int steps_done() const { return steps_done_; }
    double progress() const;          // 0..1, counting micro-batches
    double last_loss() const { return last_loss_; }  // the total loss of the last finished step (-1 before)
    double seconds_per_step() const;  // the mean so far (0 before the first step)

    // The weights as they are now (after steps_done() steps), the config recording the frozen groups.
    const Model& model() const { return model_; }

private:
    void begin_step();
    void run_micro_batch();
    const Tensor<float, 2>& features(std::size_t example);  // [1152, 8], cached while the convolutions are frozen
    const DemoImage& image(std::size_t example) const;
    int label(std::size_t example) const;

    Model model_;
    std::vector<TeachExample> personal_;
    std::vector<GalleryDigit> mnist_;
    FineTuneOptions options_;
    bool cache_features_;
    int micro_batch_;
    AdamState<float> adam_;
    Parameters<float> step_grads_;
    ForwardState<float> state_;
    BackwardState<float> gradients_;
    std::map<std::size_t, Tensor<float, 2>> feature_cache_;  // example index (personal first, then MNIST)

    int steps_done_ = 0;
    std::vector<std::size_t> batch_;  // this step's examples
    std::size_t batch_next_ = 0;      // the first example of the next micro-batch
    double step_loss_ = 0, last_loss_ = -1;
    double seconds_ = 0;
};

// Classifies many digits spread over calls, as the page's before / after checks do (the 500 test digits
// take seconds in a browser, too long for one frame). Batches of `batch_size` through the core's forward
// pass; the predictions do not depend on how the batches fall across advance() calls.
class ChunkedClassifier {
public:
    // `model` must outlive this object.
    ChunkedClassifier(const Model& model, std::vector<GalleryDigit> digits, int batch_size = 10);

    // Classifies batches until `budget_ms` has passed (always at least one) or every digit is done.
    bool advance(double budget_ms);
    bool done() const { return predictions_.size() == digits_.size(); }
    double progress() const { return digits_.empty() ? 1.0 : double(predictions_.size()) / double(digits_.size()); }
    // The longest capsule of each digit classified so far (digits in the order given).
    const std::vector<int>& predictions() const { return predictions_; }
    // Of the digits from `first` on that are classified so far: how many have their label.
    int correct(std::size_t first = 0) const;

private:
    const Model& model_;
    std::vector<GalleryDigit> digits_;
    int batch_size_;
    std::vector<int> predictions_;
    ForwardState<float> state_;
};

// Milliseconds per fine-tuning step: options.steps steps, each run as the page runs them (advance(0):
// one micro-batch per call, as one per frame). The first step of the head alone includes computing the
// primary capsules it caches.
std::vector<double> fine_tune_step_times(const Model& model, const std::vector<TeachExample>& personal,
                                         const std::vector<GalleryDigit>& mnist, const FineTuneOptions& options);

}  // namespace capsnet
