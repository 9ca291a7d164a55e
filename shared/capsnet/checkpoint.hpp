// Training checkpoints: everything needed to continue a run exactly where it stopped. The parameters,
// both Adam moments and the step count, and the run's position (epoch, batch within the epoch) and
// bookkeeping, in one safetensors file. The random streams are derived from (seed, epoch, step) (see
// derived_seed), so the position is all the generator state there is. The parameters keep their
// docs/model-contract.md names, so PyTorch can still read the weights out of a checkpoint.
#pragma once

#include <cstdint>
#include <string>

#include "capsnet/adam.hpp"
#include "capsnet/weights.hpp"

namespace capsnet {

// Which data a run trains on; a resumed run must see the same split, so it is recorded.
struct DataPlan {
    std::uint64_t seed = 1;
    std::int64_t train_images = 0;       // used for training: the first train_images of the training file
    std::int64_t validation_images = 0;  // held out right after them, for picking the best epoch
    std::int64_t test_images = 0;        // scored each epoch (reported, never used for selection)
};

struct TrainingProgress {
    int epochs = 1;                  // how many the run was asked for (--resume may raise it)
    int epoch = 0;                   // 0-based epoch in progress
    std::int64_t step_in_epoch = 0;  // batches of `epoch` already applied
    // Running sums over the batches of `epoch` done so far, so a resumed epoch reports whole-epoch numbers.
    double margin_loss_sum = 0;
    double reconstruction_loss_sum = 0;
    std::int64_t correct = 0;
    std::int64_t seen = 0;
    double seconds = 0;              // training time spent in `epoch` so far
    double best_validation_accuracy = -1;
    int best_epoch = -1;             // 0-based; -1 before the first validation
};

struct Checkpoint {
    Model model;
    AdamState<float> adam;
    DataPlan data;
    TrainingProgress progress;
};

SafeTensors checkpoint_to_safetensors(const Checkpoint& checkpoint);
Checkpoint checkpoint_from_safetensors(const SafeTensors& file, const std::string& source);

void checkpoint_save(const std::string& path, const Checkpoint& checkpoint);  // atomic (temp file + rename)
Checkpoint checkpoint_load(const std::string& path);

}  // namespace capsnet
