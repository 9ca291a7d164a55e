// Training as a process, and the multithreaded CPU backend:
// - kill -9 at random moments never leaves an unreadable checkpoint, and resuming after every kill ends
//   bit for bit where an uninterrupted run ends;
// - the data-parallel backend computes the same gradients as one thread, and is deterministic.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include <xtensor/xmath.hpp>

#include <signal.h>
#include <unistd.h>

#include "capsnet/checkpoint.hpp"
#include "cpu/cpu_backend.hpp"
#include "mnist_fixture.hpp"
#include "spawn_process.hpp"
#include "training_run_compare.hpp"

using namespace capsnet;
namespace fs = std::filesystem;

namespace {

using capsnet_test::spawn;
using capsnet_test::wait_exit_code;

std::vector<std::string> tiny_run(const std::string& save, bool resume) {
    std::vector<std::string> args = {CAPSNET_BINARY, "train", "--data", capsnet_test::mnist_directory(), "--save", save,
                                     "--train-limit", "64", "--batch-size", "16", "--validation", "16", "--test-limit",
                                     "16", "--threads", "2", "--epochs", "2",
                                     // a checkpoint after every step: the kills land inside writes often
                                     "--checkpoint-minutes", "0.000001"};
    if (resume) args.push_back("--resume");
    return args;
}

double relative_error_norm(const Parameters<float>& a, const Parameters<float>& b) {
    double diff = 0, norm = 0;
    visit_parameters(
        [&](const char*, const auto& x, const auto& y) {
            for (std::size_t i = 0; i < x.size(); ++i) {
                diff += double(x.data()[i] - y.data()[i]) * double(x.data()[i] - y.data()[i]);
                norm += double(x.data()[i]) * double(x.data()[i]);
            }
        },
        a, b);
    return std::sqrt(diff / norm);
}

}  // namespace

TEST_CASE("train process: kill -9 at random moments loses at most the work since the last checkpoint", "[cli][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const std::string root = "test_train_process_tmp";
    fs::remove_all(root);
    fs::create_directories(root);

    const std::string straight = root + "/straight";
    REQUIRE(wait_exit_code(spawn(tiny_run(straight, false), root + "/straight.log")) == 0);
    const Checkpoint reference = checkpoint_load(straight + "/checkpoint.safetensors");

    const std::string killed = root + "/killed";
    Rng rng(2024);
    int kills = 0, finished_runs = 0;
    for (int attempt = 0; attempt < 40 && finished_runs == 0; ++attempt) {
        const bool resume = fs::exists(killed + "/checkpoint.safetensors");
        const pid_t pid = spawn(tiny_run(killed, resume), root + "/killed.log");
        // Between 0.05 s and 1.5 s: from inside start-up to several steps in (a step takes ~0.2 s here).
        std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng.below(1450)));
        const bool was_running = kill(pid, SIGKILL) == 0;
        const int code = wait_exit_code(pid);
        if (code == 0) {
            ++finished_runs;  // it ended before the kill arrived
        } else {
            REQUIRE(was_running);
            REQUIRE(code == -SIGKILL);
            ++kills;
        }
        // Whatever moment the kill hit, the checkpoint under the real name is complete and loads.
        if (fs::exists(killed + "/checkpoint.safetensors")) REQUIRE_NOTHROW(checkpoint_load(killed + "/checkpoint.safetensors"));
    }
    // On a loaded machine every kill can land inside start-up, before the first checkpoint: then the
    // last run starts afresh instead of resuming (the end result must be the same either way).
    if (finished_runs == 0) {
        const bool resume = fs::exists(killed + "/checkpoint.safetensors");
        REQUIRE(wait_exit_code(spawn(tiny_run(killed, resume), root + "/killed.log")) == 0);
    }
    INFO("killed " << kills << " times");
    CHECK(kills >= 3);
    capsnet_test::require_identical(reference, checkpoint_load(killed + "/checkpoint.safetensors"));
    CHECK(capsnet_test::log_rows_without_timings(killed + "/log.csv") == capsnet_test::log_rows_without_timings(straight + "/log.csv"));
    fs::remove_all(root);
}

TEST_CASE("train process: Ctrl-C (SIGINT) saves a mid-epoch checkpoint and exits with 130", "[cli][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const std::string root = "test_train_process_sigint";
    fs::remove_all(root);
    fs::create_directories(root);
    std::vector<std::string> args = tiny_run(root + "/run", false);
    args.back() = "0";  // --checkpoint-minutes 0: only the interruption writes a mid-epoch checkpoint
    args.insert(args.end(), {"--train-limit", "640"});
    args.erase(args.begin() + 6, args.begin() + 8);  // drop the first --train-limit 64 (replaced above)
    const pid_t pid = spawn(args, root + "/run.log");
    // Wait for the first step's progress line (the handler is installed by then, however slow the
    // start on a busy machine), then interrupt.
    bool stepped = false;
    for (int tries = 0; tries < 1200 && !stepped; ++tries) {  // up to 120 s
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        std::ifstream log(root + "/run.log");
        const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
        stepped = text.find("epoch 1/2 [") != std::string::npos;
    }
    REQUIRE(stepped);
    REQUIRE(kill(pid, SIGINT) == 0);
    CHECK(wait_exit_code(pid) == 130);
    const Checkpoint checkpoint = checkpoint_load(root + "/run/checkpoint.safetensors");
    CHECK(checkpoint.progress.epoch == 0);
    CHECK(checkpoint.progress.step_in_epoch > 0);
    CHECK(checkpoint.progress.step_in_epoch < 40);
    CHECK(checkpoint.adam.step == checkpoint.progress.step_in_epoch);
    fs::remove_all(root);
}

TEST_CASE("cpu backend: 2 threads compute the 1-thread step within float rounding, deterministically", "[backend]") {
    const Config config = config_for_preset(Preset::seed);
    Rng rng(77);
    const Parameters<float> params = parameters_init<float>(config, rng);
    Tensor<float, 4> images = xt::zeros<float>({std::size_t(7), std::size_t(1), std::size_t(28), std::size_t(28)});
    for (auto& x : images) x = static_cast<float>(rng.uniform01());
    const std::vector<int> labels = {3, 1, 4, 1, 5, 9, 2};  // 7 samples: shards of 3 and 4, unequal on purpose

    auto one_step = [&](int threads) {
        CpuBackend backend(threads);
        backend.load(config, params, adam_init<float>(config));
        const StepReport report = backend.train_step(1e-3, images, labels);
        return std::make_tuple(report, backend.adam_state().first_moment, backend.parameters(), backend.capsule_lengths(images));
    };
    const auto [report1, gradient1, params1, lengths1] = one_step(1);
    const auto [report2, gradient2, params2, lengths2] = one_step(2);
    // Adam's first moment after one step is (1 - beta1) * gradient: the gradients themselves. The shards
    // sum the same terms in another order; float's 2^-24 rounding over sums of ~10^4 terms gives
    // relative errors near 1e-6, so 1e-4 leaves margin while catching any wrong weighting (>= 1e-1).
    CHECK(relative_error_norm(gradient1, gradient2) < 1e-4);
    CHECK(std::abs(report1.margin_loss - report2.margin_loss) <= 1e-5 * std::abs(report1.margin_loss));
    CHECK(std::abs(report1.reconstruction_loss - report2.reconstruction_loss) <= 1e-5 * std::abs(report1.reconstruction_loss));
    CHECK(report1.correct == report2.correct);
    CHECK(xt::allclose(lengths1, lengths2, 1e-5, 1e-6));
    // Same thread count, same result, bit for bit (the reduction order never depends on timing).
    const auto [report3, gradient3, params3, lengths3] = one_step(2);
    visit_parameters([](const char* name, const auto& x, const auto& y) { INFO(name); CHECK(x == y); }, params2, params3);
    CHECK(report2.margin_loss == report3.margin_loss);
}
