#include "cli/numbers.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace capsnet::cli {

namespace {

// strtoll and strtod skip leading white space, which would let " 5" through.
bool starts_cleanly(const std::string& text) {
    return !text.empty() && !std::isspace(static_cast<unsigned char>(text.front()));
}

}  // namespace

std::optional<long long> parse_integer(const std::string& text) {
    if (!starts_cleanly(text)) return std::nullopt;
    errno = 0;
    char* end = nullptr;
    const long long value = std::strtoll(text.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE) return std::nullopt;
    return value;
}

std::optional<double> parse_finite_number(const std::string& text) {
    if (!starts_cleanly(text)) return std::nullopt;
    errno = 0;
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    // ERANGE with a finite result is an underflow to (near) zero, which is a fine reading of the text.
    if (*end != '\0' || !std::isfinite(value)) return std::nullopt;
    return value;
}

}  // namespace capsnet::cli
