// Training over processes with MPI (mpirun -np N capsnet train), against one process:
// - 2 ranks of one thread end bit for bit where one process with 2 threads ends (the same shards,
//   summed in the same order by the same code), over a whole epoch with an uneven last batch;
// - a run resumed with a different number of processes (2 -> 1 -> 2) still ends bit for bit there;
// - 2 ranks of 2 threads repeat themselves bit for bit, and after one step are within rounding of one
//   process with 4 threads (the same 4 shards, summed in another association);
// - a rank killed mid-run ends the run with mpirun's error, and leaves a checkpoint that resumes.
// Built when CMake finds MPI; the command is mpirun from the same MPI (CAPSNET_MPIEXEC).
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <signal.h>

#include "capsnet/checkpoint.hpp"
#include "mnist_fixture.hpp"
#include "spawn_process.hpp"
#include "training_run_compare.hpp"

using namespace capsnet;
using capsnet_test::spawn;
using capsnet_test::wait_exit_code;
namespace fs = std::filesystem;

namespace {

// 56 images in batches of 16: three full steps and a last one of 8, so the split over 2 ranks is
// uneven nowhere but the shares of the last batch still differ from the full ones.
std::vector<std::string> train_args(const std::string& save, int threads, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"train", "--data", capsnet_test::mnist_directory(), "--save", save, "--train-limit", "56",
                                     "--batch-size", "16", "--validation", "16", "--test-limit", "16", "--epochs", "1",
                                     "--threads", std::to_string(threads)};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

// One process.
std::vector<std::string> single(const std::vector<std::string>& args) {
    std::vector<std::string> command = {CAPSNET_BINARY};
    command.insert(command.end(), args.begin(), args.end());
    return command;
}

// `ranks` processes under mpirun. --oversubscribe: more ranks than this machine's cores is fine for a
// test; root is allowed (CI runs as root) through Open MPI's own variables, set in main's environment.
std::vector<std::string> over_ranks(int ranks, const std::vector<std::string>& args) {
    std::vector<std::string> command = {CAPSNET_MPIEXEC, "--oversubscribe", "-np", std::to_string(ranks), CAPSNET_BINARY};
    command.insert(command.end(), args.begin(), args.end());
    return command;
}

int run(const std::vector<std::string>& command, const std::string& log) {
    const int code = wait_exit_code(spawn(command, log));
    if (code != 0) {
        std::ifstream in(log);
        std::stringstream text;
        text << in.rdbuf();
        UNSCOPED_INFO(log << ":\n" << text.str());
    }
    return code;
}

Checkpoint checkpoint_of(const std::string& save) { return checkpoint_load(save + "/checkpoint.safetensors"); }

struct Folder {
    explicit Folder(std::string path) : path(std::move(path)) {
        fs::remove_all(this->path);
        fs::create_directories(this->path);
    }
    ~Folder() { fs::remove_all(path); }
    std::string path;
};

void allow_mpirun_as_root() {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
}

}  // namespace

TEST_CASE("mpi train: 2 ranks of 1 thread equal 1 process of 2 threads, bit for bit", "[mpi][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    allow_mpirun_as_root();
    const Folder root("test_mpi_train_parity");
    REQUIRE(run(single(train_args(root.path + "/threads", 2)), root.path + "/threads.log") == 0);
    REQUIRE(run(over_ranks(2, train_args(root.path + "/ranks", 1)), root.path + "/ranks.log") == 0);
    capsnet_test::require_identical(checkpoint_of(root.path + "/threads"), checkpoint_of(root.path + "/ranks"));
    // The logged losses and accuracies too (the ranks' reports are combined like the threads').
    CHECK(capsnet_test::log_rows_without_timings(root.path + "/ranks/log.csv") ==
          capsnet_test::log_rows_without_timings(root.path + "/threads/log.csv"));
    // Only rank 0 wrote: the run's files, once.
    CHECK(fs::exists(root.path + "/ranks/best.safetensors"));
    CHECK(fs::exists(root.path + "/ranks/curves.png"));
}

TEST_CASE("mpi train: --resume with another number of processes continues the same run", "[mpi][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    allow_mpirun_as_root();
    const Folder root("test_mpi_train_resume");
    const std::string straight = root.path + "/straight", mixed = root.path + "/mixed";
    REQUIRE(run(single(train_args(straight, 2)), root.path + "/straight.log") == 0);
    // Step 1 on 2 ranks, step 2 in one process of 2 threads, the rest of the epoch on 2 ranks again.
    REQUIRE(run(over_ranks(2, train_args(mixed, 1, {"--stop-after-steps", "1"})), root.path + "/mixed.log") == 0);
    CHECK(checkpoint_of(mixed).progress.step_in_epoch == 1);
    REQUIRE(run(single(train_args(mixed, 2, {"--resume", "--stop-after-steps", "1"})), root.path + "/mixed.log") == 0);
    CHECK(checkpoint_of(mixed).progress.step_in_epoch == 2);
    REQUIRE(run(over_ranks(2, train_args(mixed, 1, {"--resume"})), root.path + "/mixed.log") == 0);
    capsnet_test::require_identical(checkpoint_of(straight), checkpoint_of(mixed));
    CHECK(capsnet_test::log_rows_without_timings(mixed + "/log.csv") == capsnet_test::log_rows_without_timings(straight + "/log.csv"));
}

TEST_CASE("mpi train: 2 ranks of 2 threads are reproducible and within rounding of 4 threads", "[mpi][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    allow_mpirun_as_root();
    const Folder root("test_mpi_train_threads");
    const std::vector<std::string> one_step = {"--stop-after-steps", "1"};
    REQUIRE(run(over_ranks(2, train_args(root.path + "/a", 2, one_step)), root.path + "/a.log") == 0);
    REQUIRE(run(over_ranks(2, train_args(root.path + "/b", 2, one_step)), root.path + "/b.log") == 0);
    REQUIRE(run(single(train_args(root.path + "/four", 4, one_step)), root.path + "/four.log") == 0);
    const Checkpoint a = checkpoint_of(root.path + "/a"), b = checkpoint_of(root.path + "/b"),
                     four = checkpoint_of(root.path + "/four");
    capsnet_test::require_identical(a, b);
    // The 4 shards are the same images (part_range of 16 over 2 ranks, then over 2 threads, is part_range
    // over 4); only the association of the gradient sum differs: (g0 + g1) + (g2 + g3) against
    // ((g0 + g1) + g2) + g3, a rounding-sized change of each gradient element. Adam's first step moves a
    // weight by lr * g / (|g| + eps) (bias-corrected): by at most lr, so the two runs differ by at most
    // 2 lr anywhere, and a rounding-sized change of g matters only where |g| is within a few orders of
    // eps (1e-8) of zero, where that ratio is steep. Those are few (12 of 6.8 M weights differ by more
    // than 1e-7, about one float ulp of a weight near 1, when this test was written). A wrong shard,
    // weight or a missing rank changes the gradient itself and moves most weights by up to lr = 1e-3.
    const double lr = a.model.config.learning_rate;
    double worst = 0;
    std::size_t differing = 0, total = 0;
    visit_parameters(
        [&](const char*, const auto& x, const auto& y) {
            for (std::size_t i = 0; i < x.size(); ++i) {
                const double d = std::abs(double(x.data()[i]) - double(y.data()[i]));
                worst = std::max(worst, d);
                differing += d > 1e-7;
                ++total;
            }
        },
        a.model.params, four.model.params);
    INFO("largest weight difference " << worst << "; " << differing << " of " << total << " weights differ by more than 1e-7");
    CHECK(worst <= 2 * lr);
    CHECK(differing <= total / 10000);
}

TEST_CASE("mpi train: a killed rank ends the run with an error and leaves a checkpoint that resumes", "[mpi][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    allow_mpirun_as_root();
    const Folder root("test_mpi_train_kill");
    const std::string save = root.path + "/run", log = root.path + "/run.log";
    // A checkpoint after every step; enough steps (~0.3 s each) to kill rank 1 in the middle.
    const std::vector<std::string> args = train_args(save, 1, {"--train-limit", "512", "--checkpoint-minutes", "0.000001"});
    std::vector<std::string> fixed = args;
    fixed.erase(fixed.begin() + 5, fixed.begin() + 7);  // the first --train-limit (56), replaced above
    // Rank 1 is found by the variables Open MPI gives it and by a marker of this test in its environment.
    const std::string marker = "CAPSNET_TEST_MARKER=" + std::to_string(getpid());
    setenv("CAPSNET_TEST_MARKER", std::to_string(getpid()).c_str(), 1);
    const pid_t mpirun = spawn(over_ranks(2, fixed), log);
    pid_t rank1 = 0;
    for (int tries = 0; tries < 600 && !rank1; ++tries) {  // up to 60 s for the first checkpoint
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (!fs::exists(save + "/checkpoint.safetensors")) continue;
        for (const auto& entry : fs::directory_iterator("/proc")) {
            const std::string name = entry.path().filename();
            if (name.find_first_not_of("0123456789") != std::string::npos) continue;
            std::ifstream environ(entry.path() / "environ");
            std::string text((std::istreambuf_iterator<char>(environ)), std::istreambuf_iterator<char>());
            auto has = [&](const std::string& variable) { return text.find(std::string(1, '\0') + variable + '\0') != std::string::npos; };
            if (has(marker) && has("OMPI_COMM_WORLD_RANK=1")) rank1 = std::stoi(name);
        }
    }
    unsetenv("CAPSNET_TEST_MARKER");
    REQUIRE(rank1 > 0);
    REQUIRE(kill(rank1, SIGKILL) == 0);
    const int code = wait_exit_code(mpirun);
    CHECK(code != 0);
    std::ifstream in(log);
    const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    INFO(output);
    CHECK(output.find("rank 1") != std::string::npos);  // mpirun names the rank that died
    // The checkpoint under its real name is whole (written to a temp file, then renamed) and continues.
    const Checkpoint left = checkpoint_of(save);
    CHECK(left.progress.step_in_epoch > 0);
    std::vector<std::string> resume = fixed;
    resume.push_back("--resume");
    REQUIRE(run(single(resume), root.path + "/resume.log") == 0);
    CHECK(checkpoint_of(save).progress.epoch == 1);
}
