// A progress bar for long loops, with rate and ETA. On a terminal it redraws one line (at most 5 times a
// second); when stderr is a file or a pipe (CI logs, nohup) it prints a plain line every 10% instead,
// so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace capsnet::cli {

class ProgressBar {
public:
    // `done` items may already be behind us (a resumed epoch); the rate counts only those done here.
    ProgressBar(std::string label, std::int64_t total, std::int64_t done = 0, std::string unit = "img");
    void update(std::int64_t done, const std::string& details = "");
    void finish(const std::string& details = "");  // the final state, then a newline
    double rate() const;                            // items per second since construction

private:
    void draw(bool final_line, const std::string& details);
    std::string label_, unit_;
    std::int64_t total_, start_done_, done_;
    std::chrono::steady_clock::time_point start_, last_draw_;
    int last_decile_ = -1;
    bool terminal_;
};

// Off: no progress bar of this process draws anything (the ranks other than 0 of a run over several
// processes, which train and score in step with rank 0: one set of bars is enough).
void set_progress_bars_shown(bool shown);

// "4m05s", "1h02m", "37s".
std::string format_duration(double seconds);

}  // namespace capsnet::cli
