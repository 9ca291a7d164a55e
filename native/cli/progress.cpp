#include "cli/progress.hpp"

#include <algorithm>
#include <cmath>

#include <unistd.h>

namespace capsnet::cli {

namespace {
bool progress_bars_shown = true;
}

void set_progress_bars_shown(bool shown) { progress_bars_shown = shown; }

std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    const long long s = std::llround(seconds);
    char buffer[32];
    if (s >= 3600) std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
    else if (s >= 60) std::snprintf(buffer, sizeof buffer, "%lldm%02llds", s / 60, s % 60);
    else std::snprintf(buffer, sizeof buffer, "%llds", s);
    return buffer;
}

ProgressBar::ProgressBar(std::string label, std::int64_t total, std::int64_t done, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(std::max<std::int64_t>(total, 1)), start_done_(done),
      done_(done), start_(std::chrono::steady_clock::now()), last_draw_(start_), terminal_(isatty(STDERR_FILENO) != 0) {}

double ProgressBar::rate() const {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    return seconds > 0 ? double(done_ - start_done_) / seconds : 0.0;
}

void ProgressBar::update(std::int64_t done, const std::string& details) {
    done_ = done;
    const auto now = std::chrono::steady_clock::now();
    if (terminal_) {
        if (now - last_draw_ < std::chrono::milliseconds(200)) return;
        last_draw_ = now;
        draw(false, details);
    } else {
        const int decile = static_cast<int>(10 * done_ / total_);
        if (decile == last_decile_ || decile >= 10) return;
        last_decile_ = decile;
        draw(false, details);
    }
}

void ProgressBar::finish(const std::string& details) {
    draw(true, details);
}

void ProgressBar::draw(bool final_line, const std::string& details) {
    if (!progress_bars_shown) return;
    const double fraction = std::min(1.0, double(done_) / double(total_));
    const double speed = rate();
    const double eta = speed > 0 ? double(total_ - done_) / speed : NAN;
    const int width = 24, filled = static_cast<int>(fraction * width);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    char line[256];
    std::snprintf(line, sizeof line, "%s [%s] %3.0f%% %lld/%lld %.1f %s/s %s %s", label_.c_str(), bar.c_str(),
                  100 * fraction, static_cast<long long>(done_), static_cast<long long>(total_), speed, unit_.c_str(),
                  final_line ? "in" : "ETA", format_duration(final_line ? double(done_ - start_done_) / std::max(speed, 1e-9) : eta).c_str());
    if (terminal_) std::fprintf(stderr, "\r\033[K%s %s%s", line, details.c_str(), final_line ? "\n" : "");
    else std::fprintf(stderr, "%s %s\n", line, details.c_str());
    std::fflush(stderr);
}

}  // namespace capsnet::cli
