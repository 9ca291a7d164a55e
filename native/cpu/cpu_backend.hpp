// The CPU training backend: data parallel over the batch. Each of N threads (a pool that lives as long
// as the backend) runs the core's forward and backward pass on a contiguous shard of the batch with its
// own workspace; then every thread takes a slice of the parameters, sums the shards' gradients there in
// a fixed order (weighted by shard size, since the losses are batch means) and applies Adam to it. The
// GEMMs (one per shard and layer over all of the shard's images) go to the process's GEMM, which the
// program chooses once in main() and the backend leaves alone: the native programs choose
// gemm_by_shape_backend (OpenBLAS, on one thread per caller, or the core's xsimd GEMM on skinny
// shapes), and description() names it. For a fixed thread count and GEMM every step is deterministic,
// so a resumed run repeats an uninterrupted one bit for bit.
#pragma once

#include <vector>

#include "backend/training_backend.hpp"
#include "capsnet/profile.hpp"
#include "capsnet/training.hpp"
#include "capsnet/thread_pool.hpp"

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
    void combine_gradients_with(GradientCombiner combine) override { combine_ = std::move(combine); }
    int threads() const { return threads_; }
    // From now on every train_step adds the seconds of its stages to *times (nullptr: stop). Stages that
    // the threads run side by side count the mean over the threads.
    void record_stages(StageTimes* times) { stage_times_ = times; }

private:
    // One thread's part of a step: its shard of the batch and what the passes over it keep.
    struct Shard {
        TrainWorkspace<float> workspace;
        Tensor<float, 4> images;
        std::vector<int> labels;
        StageTimes times;
    };
    // One parameter tensor with its Adam moments and every shard's gradient of it.
    struct ParameterSlot {
        float* value;
        float* first_moment;
        float* second_moment;
        std::vector<const float*> shard_grads;
        std::size_t size;
    };
    void update_parameters(double learning_rate, const std::vector<float>& shard_weights);

    int threads_;
    ThreadPool pool_;
    Config config_;
    Parameters<float> params_;
    AdamState<float> adam_;
    std::vector<Shard> shards_;  // one per thread
    StageTimes* stage_times_ = nullptr;
    GradientCombiner combine_;               // set in a run over several processes
    std::vector<float> combined_gradient_;  // its flat gradient
};

}  // namespace capsnet
