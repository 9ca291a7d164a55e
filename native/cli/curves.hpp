// Learning curves of training runs as a picture: `capsnet train` redraws DIR/curves.png from DIR/log.csv
// after every epoch, and `capsnet plot` draws one or several runs side by side.
#pragma once

#include <string>
#include <vector>

#include "cli/png.hpp"

namespace capsnet::cli {

// One row of log.csv (train_command.cpp writes them); accuracies are fractions, -1 when not measured.
struct EpochRow {
    int epoch = 0;
    double learning_rate = 0, train_loss = 0, train_accuracy = -1, validation_accuracy = -1, test_accuracy = -1;
    double epoch_seconds = 0;
};

struct RunLog {
    std::string name;  // the run folder's name, for the legend
    std::vector<EpochRow> rows;
    // The epoch whose validation accuracy is the highest (the first of equals), the one best.safetensors
    // holds; 0 when no epoch was validated.
    int best_epoch() const;
};

// Reads DIR/log.csv; Error naming the file for a missing file or a malformed row.
RunLog read_run_log(const std::string& run_dir);

// Three panels over the epochs, each on a log scale: the training loss; the error (100% - accuracy) on
// the training, validation and test images; the learning rate. A run has one colour, a series one line
// style (train dotted, validation solid, test dashed), and the best-validation epoch of each run is
// marked with a vertical line and a dot on its validation curve.
RgbImage plot_curves(const std::vector<RunLog>& runs);

// Draws curves.png for one run folder (nothing when its log has no rows yet).
void write_run_curves(const std::string& run_dir);

}  // namespace capsnet::cli
