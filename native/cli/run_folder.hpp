// The files of a training run's --save folder, and its log.csv: what `capsnet train` writes and
// `--resume` reads back.
#pragma once

#include <string>

namespace capsnet::cli {

struct RunFolder {
    std::string dir, checkpoint, model, best, log;
};

RunFolder run_folder(const std::string& dir);

// log.csv's header line (without the newline).
extern const char* const training_log_header;

// Keeps the header and the rows of epochs 1..completed: after a kill between the log append and the
// checkpoint, the resumed run repeats that epoch and must not log it twice.
void trim_training_log(const std::string& path, int completed);

// One row; the header first when the file is new.
void append_training_log(const std::string& path, const std::string& row);

}  // namespace capsnet::cli
