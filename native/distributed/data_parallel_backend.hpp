// Data-parallel training over the processes of a run (mpirun -np N capsnet train): a TrainingBackend
// wrapping this process's own backend (CPU or CUDA). Every rank is handed the same global batch; each
// trains on its contiguous share (part_range over the ranks), and its backend hands the share's mean
// gradient to Communicator::weighted_sum (weight: share / batch) before its optimiser step, so every rank
// applies the whole batch's gradient and all ranks keep the same parameters, bit for bit. With one CPU
// thread per rank, N ranks compute exactly what one process with N threads does (the same shards, summed
// in the same order by the same code). Evaluation is split the same way and its rows shared.
#pragma once

#include <memory>

#include "backend/training_backend.hpp"
#include "distributed/communicator.hpp"

namespace capsnet {

class DataParallelBackend : public TrainingBackend {
public:
    DataParallelBackend(std::unique_ptr<TrainingBackend> local, Communicator& world);
    std::string description() const override;

    void load(const Config& config, const Parameters<float>& params, const AdamState<float>& adam) override;
    // Throws Error when the batch has fewer images than there are ranks (one would have no share).
    StepReport train_step(double learning_rate, const Tensor<float, 4>& images, const std::vector<int>& labels) override;
    Tensor<float, 2> capsule_lengths(const Tensor<float, 4>& images) override;

    const Config& config() const override { return local_->config(); }
    const Parameters<float>& parameters() override { return local_->parameters(); }
    const AdamState<float>& adam_state() override { return local_->adam_state(); }
    void combine_gradients_with(GradientCombiner) override;  // Error: this backend is the combiner

private:
    std::unique_ptr<TrainingBackend> local_;
    Communicator& world_;
    float share_weight_ = 1;  // this rank's share of the current step's batch
    Tensor<float, 4> share_images_;
    std::vector<int> share_labels_;
};

}  // namespace capsnet
