// The gradient exchange of a run over processes, alone: Communicator::weighted_sum of a model's worth of
// floats (the seed preset's 6,787,088 parameters, or --floats N), timed over --repeats calls after one
// warm-up. Run under mpirun (bench/mpi_bench.sh does); rank 0 prints milliseconds per exchange and the
// bytes each rank sends per second.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "capsnet/config.hpp"
#include "capsnet/parameters.hpp"
#include "distributed/communicator.hpp"

int main(int argc, char** argv) {
    using namespace capsnet;
    std::size_t floats = parameter_count(parameters_zeros<float>(config_for_preset(Preset::seed)));
    int repeats = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--floats")) floats = std::strtoull(argv[i + 1], nullptr, 10);
        else if (!std::strcmp(argv[i], "--repeats")) repeats = std::max(1, std::atoi(argv[i + 1]));
    }
    Communicator* world = distributed_world();
    if (!world) {
        std::fprintf(stderr, "mpi_exchange: run it under mpirun with 2 or more processes\n");
        return 2;
    }
    std::vector<float> gradient(floats, 1.0f + float(world->rank()));
    world->weighted_sum(gradient.data(), floats, 0.5f);  // warm-up: buffers and connections
    std::vector<double> seconds;
    for (int r = 0; r < repeats; ++r) {
        world->max(0);  // start together
        const auto start = std::chrono::steady_clock::now();
        world->weighted_sum(gradient.data(), floats, 0.5f);
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(seconds.begin(), seconds.end());
    if (world->rank() == 0) {
        const int n = world->ranks();
        // Each rank sends (n - 1) / n of the floats in the reduce-scatter and as much in the gather.
        const double sent = 2.0 * double(n - 1) / n * double(floats) * sizeof(float);
        const double median = seconds[seconds.size() / 2];
        std::printf("ranks %d  floats %zu  median %.2f ms  best %.2f ms  sent per rank %.1f MB  %.2f GB/s\n", n, floats,
                    1e3 * median, 1e3 * seconds.front(), sent / 1e6, sent / median / 1e9);
    }
    return 0;
}
