#include "cli/run_folder.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "capsnet/common.hpp"

namespace capsnet::cli {

namespace fs = std::filesystem;

RunFolder run_folder(const std::string& dir) {
    const fs::path folder(dir);
    return {dir, (folder / "checkpoint.safetensors").string(), (folder / "model.safetensors").string(),
            (folder / "best.safetensors").string(), (folder / "log.csv").string()};
}

const char* const training_log_header =
    "epoch,learning_rate,train_margin_loss,train_reconstruction_loss,train_loss,train_accuracy,validation_accuracy,"
    "test_accuracy,epoch_seconds,images_per_second";

void trim_training_log(const std::string& path, int completed) {
    std::ifstream in(path);
    if (!in) return;
    std::string line, kept;
    std::getline(in, line);
    kept = std::string(training_log_header) + "\n";
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (std::atoi(line.c_str()) <= completed) kept += line + "\n";
    }
    in.close();
    write_whole_file_atomically(path, std::vector<std::uint8_t>(kept.begin(), kept.end()));
}

void append_training_log(const std::string& path, const std::string& row) {
    const bool fresh = !fs::exists(path);
    std::ofstream out(path, std::ios::app);
    if (!out) throw Error(path + ": cannot open the log for appending");
    if (fresh) out << training_log_header << "\n";
    out << row << "\n";
    out.flush();
    if (!out) throw Error(path + ": writing the log failed (disk full?)");
}

}  // namespace capsnet::cli
