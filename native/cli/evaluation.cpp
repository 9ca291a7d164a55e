#include "cli/evaluation.hpp"

#include <chrono>
#include <cstdlib>
#include <numeric>
#include <sstream>

#include "capsnet/batch.hpp"
#include "cli/progress.hpp"

namespace capsnet::cli {

std::string default_data_dir() {
    const char* env = std::getenv("CAPSNET_DATA_DIR");
    return env && *env ? env : "data/mnist";
}

MnistSplit load_mnist(const std::string& directory, const std::string& prefix) {
    try {
        return mnist_load(directory, prefix);
    } catch (const Error& error) {
        throw Error(std::string(error.what()) +
                    "\n  (MNIST goes in data/mnist: run scripts/fetch_mnist.sh, or point --data or CAPSNET_DATA_DIR at "
                    "a folder with the four uncompressed IDX files)");
    }
}

Scores score_model(TrainingBackend& backend, const MnistSplit& split, std::size_t first, std::size_t count,
                   std::size_t batch_size, const std::string& label, std::vector<float>* lengths) {
    Scores scores;
    const auto start = std::chrono::steady_clock::now();
    std::unique_ptr<ProgressBar> bar;
    if (!label.empty()) bar = std::make_unique<ProgressBar>(label, static_cast<std::int64_t>(count));
    Tensor<float, 4> images;
    std::vector<int> labels;
    Rng unused(0);  // max_shift 0: no augmentation
    for (std::size_t begin = first; begin < first + count; begin += batch_size) {
        std::vector<std::size_t> indices(std::min(batch_size, first + count - begin));
        std::iota(indices.begin(), indices.end(), begin);
        make_batch(split.images.pixels, split.labels, image_side, indices, 0, unused, images, labels);
        const Tensor<float, 2> batch_lengths = backend.capsule_lengths(images);
        if (lengths) lengths->insert(lengths->end(), batch_lengths.begin(), batch_lengths.end());
        const std::vector<int> predicted = predicted_classes(batch_lengths);
        for (std::size_t i = 0; i < predicted.size(); ++i) {
            ++scores.confusion[static_cast<std::size_t>(labels[i])][static_cast<std::size_t>(predicted[i])];
            scores.correct += predicted[i] == labels[i];
        }
        scores.total += static_cast<std::int64_t>(predicted.size());
        if (bar) bar->update(scores.total);
    }
    if (bar) bar->finish();
    scores.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return scores;
}

std::string confusion_table(const Scores& scores) {
    std::ostringstream out;
    out << "confusion matrix (rows: true digit, columns: predicted)\n      ";
    for (int p = 0; p < 10; ++p) out << "     " << p;
    out << "\n";
    for (int t = 0; t < 10; ++t) {
        out << "  " << t << "   ";
        for (int p = 0; p < 10; ++p) {
            std::string cell = std::to_string(scores.confusion[t][p]);
            out << std::string(6 - std::min<std::size_t>(6, cell.size()), ' ') << cell;
        }
        out << "\n";
    }
    return out.str();
}

}  // namespace capsnet::cli
