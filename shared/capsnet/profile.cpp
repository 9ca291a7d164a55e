// Per-stage timers (see profile.hpp).
#include "capsnet/profile.hpp"

namespace capsnet {

namespace {

thread_local StageTimes* recording = nullptr;
thread_local StageTimer* innermost = nullptr;

}  // namespace

const char* stage_name(Stage stage) {
    switch (stage) {
        case Stage::batch_assembly: return "batch assembly + augmentation";
        case Stage::conv1_forward: return "conv1 forward";
        case Stage::conv2_forward: return "conv2 forward";
        case Stage::primary_capsules: return "primary capsules (fwd + bwd)";
        case Stage::predictions_forward: return "predictions u_hat forward";
        case Stage::routing_forward: return "routing forward";
        case Stage::decoder: return "decoder (fwd + bwd)";
        case Stage::losses: return "losses (fwd + bwd)";
        case Stage::routing_backward: return "routing backward";
        case Stage::predictions_backward: return "predictions u_hat backward";
        case Stage::conv2_weight_grad: return "conv2 weight gradient";
        case Stage::conv2_input_grad: return "conv2 input gradient";
        case Stage::conv1_weight_grad: return "conv1 weight gradient";
        case Stage::adam: return "gradient sum + Adam";
        case Stage::other: return "other (threads, waits, copies)";
        case Stage::count: break;
    }
    return "?";
}

double StageTimes::total() const {
    double sum = 0;
    for (double s : seconds) sum += s;
    return sum;
}

StageTimes& StageTimes::operator+=(const StageTimes& other) {
    for (std::size_t i = 0; i < seconds.size(); ++i) seconds[i] += other.seconds[i];
    return *this;
}

StageRecording::StageRecording(StageTimes* times) : previous_(recording) { recording = times; }

StageRecording::~StageRecording() { recording = previous_; }

StageTimer::StageTimer(Stage stage) : stage_(stage), active_(recording != nullptr) {
    if (!active_) return;
    parent_ = innermost;
    innermost = this;
    start_ = Clock::now();
}

StageTimer::~StageTimer() {
    if (!active_) return;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    innermost = parent_;
    if (parent_) parent_->children_ += elapsed;
    if (recording) (*recording)[stage_] += elapsed - children_;
}

}  // namespace capsnet
