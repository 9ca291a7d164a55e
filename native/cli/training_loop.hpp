// The step loop of `capsnet train`: trains a prepared run (its checkpoint, fresh or resumed, loaded into
// a backend) epoch by epoch, scores and logs each epoch, keeps the best model, checkpoints at every epoch
// end, every --checkpoint-minutes and on Ctrl-C / SIGTERM, and stops cleanly when a --stop-after limit is
// reached or the loss stops being finite. Under mpirun every rank runs it in step; rank 0 alone writes.
#pragma once

#include <chrono>
#include <cstdint>

#include "backend/training_backend.hpp"
#include "capsnet/checkpoint.hpp"
#include "capsnet/idx.hpp"
#include "cli/run_folder.hpp"
#include "distributed/communicator.hpp"

namespace capsnet::cli {

// When this invocation checkpoints and stops, besides its epochs running out (never stored: a resumed run
// takes them from its own command line).
struct InvocationLimits {
    double checkpoint_minutes = 10;  // 0: only at epoch ends
    std::int64_t stop_after_steps = 0;
    double stop_after_minutes = 0;  // counted from `start`
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};

// The training data of a run: the first data.train_images of `train` are trained on, the next
// data.validation_images score the validation accuracy, and the first data.test_images of `test` the test's.
struct TrainingData {
    const MnistSplit& train;
    const MnistSplit& test;
};

// Trains `checkpoint` (already loaded into `backend`) until its progress.epochs are done or the
// invocation stops; returns the exit code: 0 done or stopped by a limit, 130 interrupted, 1 diverged.
// `world` is the run over processes this one is part of, or null.
int run_training_loop(TrainingBackend& backend, Checkpoint& checkpoint, const TrainingData& data,
                      const RunFolder& folder, const InvocationLimits& limits, Communicator* world);

}  // namespace capsnet::cli
