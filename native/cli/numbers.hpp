// The one number syntax of the command line and of the text files the commands read back (log.csv):
// the whole text and nothing else (no surrounding spaces, no unit), decimal, within the type's range;
// reals finite. Each caller turns an empty result into its own message, naming the option or the file.
#pragma once

#include <optional>
#include <string>

namespace capsnet::cli {

std::optional<long long> parse_integer(const std::string& text);
std::optional<double> parse_finite_number(const std::string& text);

}  // namespace capsnet::cli
