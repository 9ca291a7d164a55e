// The `capsnet` subcommands. Each takes the arguments after its name and returns the process exit code:
// 0 success, 1 a failure while running (bad file, diverged training), 2 a usage error, 130 interrupted.
// Errors are thrown as capsnet::Error / cli::UsageError and printed by main.
#pragma once

#include <string>
#include <vector>

namespace capsnet::cli {

int train_command(const std::vector<std::string>& args);
int eval_command(const std::vector<std::string>& args);
int visualize_command(const std::vector<std::string>& args);
int export_command(const std::vector<std::string>& args);
int plot_command(const std::vector<std::string>& args);
int robustness_command(const std::vector<std::string>& args);

}  // namespace capsnet::cli
