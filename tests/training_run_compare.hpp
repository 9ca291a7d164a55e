// Comparing two training runs: their checkpoints bit for bit, and their logs without the timings.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "capsnet/checkpoint.hpp"

namespace capsnet_test {

// Every tensor of two checkpoints (weights and both Adam moments) and the run position, bit for bit.
inline void require_identical(const capsnet::Checkpoint& a, const capsnet::Checkpoint& b) {
    auto same = [](const char* name, const auto& x, const auto& y) {
        INFO(name);
        REQUIRE(x == y);
    };
    capsnet::visit_parameters(same, a.model.params, b.model.params);
    capsnet::visit_parameters(same, a.adam.first_moment, b.adam.first_moment);
    capsnet::visit_parameters(same, a.adam.second_moment, b.adam.second_moment);
    REQUIRE(a.adam.step == b.adam.step);
    REQUIRE(a.progress.epoch == b.progress.epoch);
    REQUIRE(a.progress.step_in_epoch == b.progress.step_in_epoch);
}

// log.csv rows without the last two columns (epoch seconds and images/s, which depend on the machine).
inline std::vector<std::string> log_rows_without_timings(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> rows;
    for (std::string line; std::getline(in, line);) rows.push_back(line.substr(0, line.rfind(',', line.rfind(',') - 1)));
    return rows;
}

}  // namespace capsnet_test
