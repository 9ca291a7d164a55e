// Where a training step's time goes: wall-clock seconds per stage (conv1 forward, routing backward,
// Adam...), for the benchmark that prints the per-stage profile (bench/train_speed --profile). Off by
// default: a StageTimer costs one thread_local load and a branch unless the calling thread is
// recording, so the timers stay in the model code for good.
//
// Timers nest and count exclusive time: a stage timed inside another (conv2's input gradient inside the
// convolution backward) is subtracted from its parent, so the stages of one thread add up to its time.
#pragma once

#include <array>
#include <chrono>

namespace capsnet {

enum class Stage : int {
    batch_assembly,       // MNIST bytes -> shifted float images (the training driver's make_batch)
    conv1_forward,        // conv1 + its activation
    conv2_forward,        // the primary-capsule convolution
    primary_capsules,     // conv output <-> capsule layout (and the optional squash), forward and backward
    predictions_forward,  // u_hat = W u
    routing_forward,
    decoder,              // masking, the three FC layers forward and backward
    losses,               // margin + reconstruction, forward and their output gradients
    routing_backward,
    predictions_backward,
    conv2_weight_grad,
    conv2_input_grad,     // including the activation's backward
    conv1_weight_grad,
    adam,                 // with the data-parallel backend's sum of the threads' gradients
    other,                // anything timed by nobody: thread start-up, waits, copies between stages
    count
};

const char* stage_name(Stage stage);

struct StageTimes {
    std::array<double, static_cast<int>(Stage::count)> seconds{};
    double& operator[](Stage stage) { return seconds[static_cast<int>(stage)]; }
    double operator[](Stage stage) const { return seconds[static_cast<int>(stage)]; }
    double total() const;
    StageTimes& operator+=(const StageTimes& other);
};

// While alive, the StageTimers of the constructing thread add into *times (nullptr: record nothing).
// Recordings do not nest; each thread has its own.
class StageRecording {
public:
    explicit StageRecording(StageTimes* times);
    ~StageRecording();
    StageRecording(const StageRecording&) = delete;
    StageRecording& operator=(const StageRecording&) = delete;

private:
    StageTimes* previous_;
};

class StageTimer {
public:
    explicit StageTimer(Stage stage);
    ~StageTimer();
    StageTimer(const StageTimer&) = delete;
    StageTimer& operator=(const StageTimer&) = delete;

private:
    using Clock = std::chrono::steady_clock;
    Stage stage_;
    bool active_;
    Clock::time_point start_;
    double children_ = 0;      // seconds of the timers nested inside this one
    StageTimer* parent_ = nullptr;
};

}  // namespace capsnet
