// Pieces the subcommands share: finding and loading MNIST, and scoring a model (accuracy, confusion
// matrix, throughput) through any training backend.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "backend/training_backend.hpp"
#include "capsnet/idx.hpp"

namespace capsnet::cli {

// $CAPSNET_DATA_DIR, else data/mnist (where scripts/fetch_mnist.sh puts it).
std::string default_data_dir();

// mnist_load with a hint on how to get the data when the files are missing.
MnistSplit load_mnist(const std::string& directory, const std::string& prefix);

struct Scores {
    std::int64_t correct = 0, total = 0;
    std::array<std::array<std::int64_t, 10>, 10> confusion{};  // [true label][predicted]
    double seconds = 0;
    double accuracy() const { return total ? double(correct) / double(total) : 0.0; }
    double images_per_second() const { return seconds > 0 ? double(total) / seconds : 0.0; }
};

// Classifies samples [first, first + count) (no augmentation), batch by batch; a progress bar labelled
// `label` when it is not empty. With `lengths`, also returns every sample's 10 capsule lengths.
Scores score_model(TrainingBackend& backend, const MnistSplit& split, std::size_t first, std::size_t count,
                   std::size_t batch_size, const std::string& label, std::vector<float>* lengths = nullptr);

// The confusion matrix as an aligned text table.
std::string confusion_table(const Scores& scores);

}  // namespace capsnet::cli
