// The CPU training backend: data parallel over the batch. Each of N threads runs the core's forward
// and backward pass on a contiguous shard of the batch with its own workspace; the shard gradients are
// combined in a fixed order (weighted by shard size, since the losses are batch means) and one Adam
// update follows. The per-capsule GEMMs are far too small to split across threads, which is why
// OpenBLAS's own threading gains nothing here (bench/README.md) and is switched off while N > 1.
// For a fixed thread count every step is deterministic, so a resumed run repeats an uninterrupted one
// bit for bit.
#pragma once

#include <functional>
#include <vector>

#include "backend/training_backend.hpp"
#include "capsnet/training.hpp"

namespace capsnet {

class CpuBackend : public TrainingBackend {
public:
    explicit CpuBackend(int threads);  // 0: every core std::thread reports
    std::string description() const override;

    void load(const Config& config, const Parameters<float>& params, const AdamState<float>& adam) override;
    StepReport train_step(double learning_rate, const Tensor<float, 4>& images, const std::vector<int>& labels) override;
    Tensor<float, 2> capsule_lengths(const Tensor<float, 4>& images) override;

    const Config& config() const override { return config_; }
    const Parameters<float>& parameters() override { return params_; }
    const AdamState<float>& adam_state() override { return adam_; }
    int threads() const { return threads_; }

private:
    int threads_;
    Config config_;
    Parameters<float> params_;
    AdamState<float> adam_;
    std::vector<TrainWorkspace<float>> workspaces_;  // one per thread
    Parameters<float> summed_grads_;
};

// Runs job(0) .. job(count - 1) on `count` threads (the calling thread takes job 0) and rethrows the
// first exception any of them threw.
void run_in_parallel(int count, const std::function<void(int)>& job);

}  // namespace capsnet
