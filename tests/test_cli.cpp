// The `capsnet` subcommands driven in-process: argument errors, resume equivalence, the PNG outputs of
// visualize, export, plot and --init-from. Training runs use a few dozen MNIST images so each takes about a second.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "capsnet/checkpoint.hpp"
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/curves.hpp"
#include "cli/numbers.hpp"
#include "cli/png.hpp"
#include "mnist_fixture.hpp"
#include "training_run_compare.hpp"

using namespace capsnet;
using namespace capsnet::cli;
namespace fs = std::filesystem;

namespace {

// A fresh, empty folder under the build tree's working directory.
std::string scratch(const std::string& name) {
    const std::string dir = "test_cli_tmp/" + name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

// A small run: 64 training images, batches of 16 (4 steps an epoch), tiny validation and test sets.
// `extra` options are appended, or replace the value of one of these.
std::vector<std::string> tiny_run(const std::string& save, std::vector<std::string> extra) {
    std::vector<std::string> args = {"--data", capsnet_test::mnist_directory(), "--save", save, "--train-limit", "64",
                                     "--batch-size", "16", "--validation", "16", "--test-limit", "16", "--threads", "2"};
    for (std::size_t i = 0; i < extra.size(); ++i) {
        bool replaced = false;
        for (std::size_t k = 0; k + 1 < args.size() && i + 1 < extra.size(); k += 2)  // args is option, value pairs
            if (args[k] == extra[i]) {
                args[k + 1] = extra[++i];
                replaced = true;
                break;
            }
        if (!replaced) args.push_back(extra[i]);
    }
    return args;
}

std::string write_random_model(const std::string& dir) {
    Model model;
    model.config = config_for_preset(Preset::seed);
    Rng rng(3);
    model.params = parameters_init<float>(model.config, rng);
    const std::string path = dir + "/random.safetensors";
    model_save(path, model);
    return path;
}

}  // namespace

TEST_CASE("cli: argument errors are usage errors that name the option", "[cli]") {
    struct Case {
        int (*command)(const std::vector<std::string>&);
        std::vector<std::string> args;
        const char* message;
    };
    const std::vector<Case> cases = {
        {train_command, {"--epoch", "3"}, "unknown option --epoch (did you mean --epochs?)"},
        {train_command, {"--epochs"}, "--epochs needs a value"},
        {train_command, {"--epochs", "three"}, "--epochs: 'three' is not an integer"},
        {train_command, {"--epochs", "0"}, "--epochs: 0 is out of range"},
        {train_command, {"--lr", "nan"}, "--lr: 'nan' is not a finite number"},
        {train_command, {"--epochs", "2", "--epochs", "3"}, "--epochs is given twice"},
        {train_command, {"--resume=yes"}, "--resume takes no value"},
        {train_command, {"saved_model"}, "unexpected argument 'saved_model'"},
        {train_command, {"--reconstruct", "--no-reconstruct", "--save", "test_cli_tmp/none"}, "contradict"},
        {eval_command, {}, "--model FILE is required"},
        {visualize_command, {"--model", "m.safetensors"}, "--out DIR is required"},
        {export_command, {"--model", "a", "--out", "b", "--dtype", "f8"}, "--dtype: 'f8' is not f16 or i8"},
    };
    for (const Case& c : cases) {
        INFO(c.message);
        CHECK_THROWS_AS(c.command(c.args), UsageError);
        CHECK_THROWS_WITH(c.command(c.args), Catch::Contains(c.message));
    }
    // --help is not an error and prints every option.
    CHECK(train_command({"--help"}) == 0);
    CHECK(ArgParser("x", "y").option("alpha", "N", "1", "a").parse({"--alpha=5"}).text("alpha") == "5");
}

TEST_CASE("cli: train refuses to overwrite a run, to resume nothing, and to change a resumed run's settings", "[cli][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const std::string dir = scratch("guards");
    CHECK_THROWS_WITH(train_command(tiny_run(dir, {"--resume"})), Catch::Contains("no checkpoint to resume"));
    CHECK_THROWS_WITH(train_command(tiny_run(dir, {"--device", "tpu"})), Catch::Contains("unknown device 'tpu'"));
    // TF32 is a GPU mode: asked for on the CPU it is refused, not silently ignored.
    CHECK_THROWS_WITH(train_command(tiny_run(dir, {"--device", "cpu", "--tf32"})), Catch::Contains("--tf32"));
#ifndef CAPSNET_HAS_CUDA
    CHECK_THROWS_WITH(train_command(tiny_run(dir, {"--device", "cuda:1"})), Catch::Contains("no CUDA support"));
#endif
    CHECK_THROWS_WITH(train_command(tiny_run(dir, {"--validation", "59990"})), Catch::Contains("exceed"));
    CHECK_THROWS_WITH(train_command(tiny_run(dir, {"--data", "no/such/folder"})), Catch::Contains("fetch_mnist.sh"));
    REQUIRE(train_command(tiny_run(dir, {"--epochs", "1", "--stop-after-steps", "1"})) == 0);
    CHECK_THROWS_WITH(train_command(tiny_run(dir, {"--epochs", "1"})), Catch::Contains("add --resume"));
    CHECK_THROWS_WITH(train_command(tiny_run(dir, {"--resume", "--lr", "0.01"})), Catch::Contains("learning_rate"));
    CHECK_THROWS_WITH(train_command(tiny_run(dir, {"--resume", "--seed", "9"})), Catch::Contains("--seed 9 differs"));
    // Same settings repeated with --resume are fine.
    CHECK(train_command(tiny_run(dir, {"--resume", "--epochs", "1"})) == 0);
}

TEST_CASE("cli: 2 steps + resume 2 steps == 4 steps, bit for bit (mid-epoch and at an epoch boundary)", "[cli][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    // Uninterrupted: 2 epochs of 4 steps.
    const std::string straight = scratch("straight");
    REQUIRE(train_command(tiny_run(straight, {"--epochs", "2"})) == 0);
    const Checkpoint reference = checkpoint_load(straight + "/checkpoint.safetensors");
    REQUIRE(reference.progress.epoch == 2);
    REQUIRE(reference.adam.step == 8);

    // Stopped after 2 steps (mid-epoch), resumed; then stopped at the epoch boundary (step 4), resumed.
    const std::string pieces = scratch("pieces");
    REQUIRE(train_command(tiny_run(pieces, {"--epochs", "2", "--stop-after-steps", "2"})) == 0);
    const Checkpoint middle = checkpoint_load(pieces + "/checkpoint.safetensors");
    CHECK(middle.progress.epoch == 0);
    CHECK(middle.progress.step_in_epoch == 2);
    CHECK(middle.adam.step == 2);
    REQUIRE(train_command(tiny_run(pieces, {"--resume", "--stop-after-steps", "2"})) == 0);
    CHECK(checkpoint_load(pieces + "/checkpoint.safetensors").progress.epoch == 1);
    REQUIRE(train_command(tiny_run(pieces, {"--resume"})) == 0);
    capsnet_test::require_identical(reference, checkpoint_load(pieces + "/checkpoint.safetensors"));

    // The log has exactly one row per epoch, identical to the uninterrupted run's except the timings.
    const auto rows = capsnet_test::log_rows_without_timings;
    CHECK(rows(pieces + "/log.csv").size() == 3);
    CHECK(rows(pieces + "/log.csv") == rows(straight + "/log.csv"));
    // The model files hold the same weights as the checkpoint.
    const Model latest = model_load(pieces + "/model.safetensors");
    CHECK((latest.params.digit_weight == reference.model.params.digit_weight));
    CHECK(fs::exists(pieces + "/best.safetensors"));
}

TEST_CASE("cli: --stop-after-minutes stops with a checkpoint, mid-epoch or at an epoch end", "[cli][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    // A limit already passed when the first step ends (the clock starts with the command, before the
    // data loads): it stops right after that step, mid-epoch, as --stop-after-steps 1 would.
    const std::string middle = scratch("minutes-middle");
    REQUIRE(train_command(tiny_run(middle, {"--epochs", "5", "--stop-after-minutes", "1e-6"})) == 0);
    const Checkpoint stopped = checkpoint_load(middle + "/checkpoint.safetensors");
    CHECK(stopped.progress.epoch == 0);
    CHECK(stopped.progress.step_in_epoch == 1);
    CHECK(stopped.adam.step == 1);

    // One step an epoch: every step is an epoch end, so it stops there, with the epoch scored and logged.
    const std::string boundary = scratch("minutes-boundary");
    REQUIRE(train_command(tiny_run(boundary, {"--train-limit", "16", "--epochs", "5", "--stop-after-minutes", "1e-6"})) == 0);
    const Checkpoint after_epoch = checkpoint_load(boundary + "/checkpoint.safetensors");
    CHECK(after_epoch.progress.epoch == 1);
    CHECK(after_epoch.progress.step_in_epoch == 0);
    CHECK(capsnet_test::log_rows_without_timings(boundary + "/log.csv").size() == 2);  // the header + epoch 1
    CHECK(fs::exists(boundary + "/best.safetensors"));
    CHECK(fs::exists(boundary + "/curves.png"));

    // A real budget (1.2 s) ends a run of 1000 epochs long before they are done; the checkpoint resumes it.
    const std::string budget = scratch("minutes-budget");
    const auto start = std::chrono::steady_clock::now();
    REQUIRE(train_command(tiny_run(budget, {"--epochs", "1000", "--stop-after-minutes", "0.02"})) == 0);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
    const Checkpoint partial = checkpoint_load(budget + "/checkpoint.safetensors");
    CHECK(partial.progress.epoch < 1000);
    CHECK(partial.adam.step >= 1);
    CHECK(train_command(tiny_run(budget, {"--resume", "--epochs", std::to_string(partial.progress.epoch + 1)})) == 0);
    CHECK(checkpoint_load(budget + "/checkpoint.safetensors").progress.epoch == partial.progress.epoch + 1);
}

TEST_CASE("cli: a NaN loss stops training with a message and leaves the last good checkpoint untouched", "[cli][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const std::string dir = scratch("diverge");
    REQUIRE(train_command(tiny_run(dir, {"--epochs", "1", "--stop-after-steps", "1"})) == 0);
    // Poison one first moment of Adam: the next update throws that weight to ~1e33, and the forward pass
    // after it overflows into a NaN loss, as a diverging run would. (A NaN weight itself no longer gets
    // this far: the model loader rejects it, tests/test_weights.cpp.)
    const std::string path = dir + "/checkpoint.safetensors";
    Checkpoint checkpoint = checkpoint_load(path);
    checkpoint.adam.first_moment.conv1_weight(0, 0, 4, 4) = 1e30f;
    checkpoint_save(path, checkpoint);
    const std::vector<std::uint8_t> before = read_whole_file(path);
    CHECK(train_command(tiny_run(dir, {"--resume"})) == 1);
    CHECK(read_whole_file(path) == before);
    CHECK_FALSE(fs::exists(dir + "/model.safetensors"));  // no epoch finished, so nothing else was written
}

TEST_CASE("cli: visualize writes vis_all.png and vis_tweaked0..9.png with the grid's shape", "[cli][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const std::string dir = scratch("visualize");
    const std::string model = write_random_model(dir);
    // Default range -0.25..0.25 step 0.05: 11 rows. Tiles are 28 px with 2 px gaps, zoom 2.
    REQUIRE(visualize_command({"--model", model, "--out", dir + "/vis", "--data", capsnet_test::mnist_directory()}) == 0);
    const RgbImage all = png_read(dir + "/vis/vis_all.png");
    CHECK(all.width == (20 * 30 - 2) * 2);   // 20 inputs: the first two test images of each digit
    CHECK(all.height == (11 * 30 - 2) * 2);  // the inputs + one row per digit capsule
    for (int d = 0; d < 10; ++d) {
        const RgbImage tweaked = png_read(dir + "/vis/vis_tweaked" + std::to_string(d) + ".png");
        CHECK(tweaked.width == (16 * 30 - 2) * 2);  // 16 capsule dimensions
        CHECK(tweaked.height == (11 * 30 - 2) * 2);
    }
    // The unperturbed row (offset 0, row 5) is framed in orange just above it; row 0 has no frame.
    const RgbImage tweaked = png_read(dir + "/vis/vis_tweaked0.png");
    auto pixel = [&](int x, int y) { return &tweaked.pixels[(static_cast<std::size_t>(y) * tweaked.width + x) * 3]; };
    const int frame_y = 5 * 30 * 2 - 2;  // inside the 4 px gap above row 5
    CHECK(int(pixel(10, frame_y)[0]) == 255);
    CHECK(int(pixel(10, frame_y)[2]) == 0);
    CHECK(int(pixel(10, 30 * 2 - 2)[0]) == int(pixel(10, 30 * 2 - 2)[2]));  // the grey gap above row 1

    // A custom range: -0.5..0.5 step 0.25 gives 5 rows; zoom 1.
    REQUIRE(visualize_command({"--model", model, "--out", dir + "/custom", "--data", capsnet_test::mnist_directory(),
                               "--low", "-0.5", "--high", "0.5", "--step", "0.25", "--zoom", "1"}) == 0);
    const RgbImage custom = png_read(dir + "/custom/vis_tweaked3.png");
    CHECK(custom.width == 16 * 30 - 2);
    CHECK(custom.height == 5 * 30 - 2);
    CHECK_THROWS_AS(visualize_command({"--model", model, "--out", dir, "--low", "1", "--high", "0"}), UsageError);
    CHECK_THROWS_WITH(visualize_command({"--model", dir + "/missing.safetensors", "--out", dir}),
                      Catch::Contains("missing.safetensors"));
}

TEST_CASE("cli: visualize writes vis_routing.png, one row per digit, one attribution column per class", "[cli][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const std::string dir = scratch("visualize_routing");
    const std::string model = write_random_model(dir);
    REQUIRE(visualize_command({"--model", model, "--out", dir + "/vis", "--data", capsnet_test::mnist_directory()}) == 0);
    // Columns: the input + 10 classes; rows: 10 digits under a 12-pixel header; 28 px tiles, 2 px gaps, zoom 2.
    const RgbImage routing = png_read(dir + "/vis/vis_routing.png");
    CHECK(routing.width == (11 * 30 - 2) * 2);
    CHECK(routing.height == 12 * 2 + (10 * 30 - 2) * 2);
    auto pixel = [&](int x, int y) { return &routing.pixels[(static_cast<std::size_t>(y) * routing.width + x) * 3]; };
    // The same digit's attribution to two classes differs somewhere in every row.
    auto tile = [&](int row, int column) {
        std::vector<std::uint8_t> bytes;
        for (int y = 0; y < 56; ++y)
            for (int x = 0; x < 56; ++x) bytes.insert(bytes.end(), pixel(column * 60 + x, 24 + row * 60 + y), pixel(column * 60 + x, 24 + row * 60 + y) + 3);
        return bytes;
    };
    for (int row = 0; row < 10; ++row) {
        INFO("row " << row);
        CHECK(tile(row, 1) != tile(row, 2));
        CHECK(tile(row, 1 + row) != tile(row, 1 + (row + 1) % 10));
    }
    // Row 0 is digit 0: class 0's tile (column 1) is framed in orange in the gap left of it; in row 1 (digit 1)
    // that gap is grey, the frame being around column 2.
    CHECK(int(pixel(60 - 2, 24 + 10)[0]) == 255);
    CHECK(int(pixel(60 - 2, 24 + 10)[2]) == 0);
    CHECK(int(pixel(60 - 2, 24 + 60 + 10)[0]) == int(pixel(60 - 2, 24 + 60 + 10)[2]));
    CHECK(int(pixel(120 - 2, 24 + 60 + 10)[0]) == 255);
    // An earlier iteration draws another picture of the same size; one past the model's is a usage error.
    REQUIRE(visualize_command({"--model", model, "--out", dir + "/first", "--data", capsnet_test::mnist_directory(),
                               "--routing-iteration", "1"}) == 0);
    const RgbImage first = png_read(dir + "/first/vis_routing.png");
    CHECK(first.width == routing.width);
    CHECK(first.pixels != routing.pixels);
    CHECK_THROWS_AS(visualize_command({"--model", model, "--out", dir, "--routing-iteration", "4"}), UsageError);
}

TEST_CASE("cli: errors name the file and never escape as other exceptions; numbers parse one way", "[cli]") {
    const std::string dir = scratch("errors");
    const std::string model = write_random_model(dir);
    // An --out folder that cannot be created, and a --model that does not exist (the --out check used to
    // throw std::filesystem::filesystem_error, which aborted the program).
    CHECK_THROWS_WITH(export_command({"--model", model, "--out", "/proc/forbidden/x.safetensors"}),
                      Catch::Contains("/proc/forbidden/x.safetensors: cannot create its folder /proc/forbidden"));
    CHECK_THROWS_AS(export_command({"--model", model, "--out", "/proc/forbidden/x.safetensors"}), Error);
    CHECK_THROWS_WITH(export_command({"--model", dir + "/absent.safetensors", "--out", model}),
                      Catch::Contains("absent.safetensors: cannot open"));
    // One number syntax for options (and log.csv): the whole text, no spaces, finite.
    for (const char* bad : {" 3", "3 ", "3x", "", "99999999999999999999"}) {
        INFO("'" << bad << "'");
        CHECK(!parse_integer(bad));
    }
    for (const char* bad : {" 0.1", "0.1 ", "1e999", "nan", "inf", "0.1.2", ""}) {
        INFO("'" << bad << "'");
        CHECK(!parse_finite_number(bad));
    }
    CHECK(parse_integer("-42") == -42);
    CHECK(parse_finite_number("2.5e-3") == 2.5e-3);
    CHECK_THROWS_WITH(train_command({"--epochs", " 3"}), Catch::Contains("--epochs: ' 3' is not an integer"));
    CHECK_THROWS_WITH(robustness_command({"--model", model, "--rotations", "0, 5"}), Catch::Contains("' 5' is not a number"));
    // Asking for an option the parser never declared is a bug in the caller: it fails there, loudly.
    const ParsedArgs args = ArgParser("x", "y").option("alpha", "N", "1", "a").flag("beta", "b").parse({});
    CHECK(args.text("alpha") == "1");
    CHECK_THROWS_AS(args.text("alpah"), std::logic_error);
    CHECK_THROWS_AS(args.flag("bta"), std::logic_error);
    CHECK_THROWS_AS(args.given("alpah"), std::logic_error);
    CHECK_THROWS_AS(args.integer("alpah", 0, 9), std::logic_error);
}

TEST_CASE("cli: export writes a loadable F16 / I8 model a quarter or half the size", "[cli][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const std::string dir = scratch("export");
    const std::string model = write_random_model(dir);
    for (const char* dtype : {"f16", "i8"}) {
        const std::string out = dir + "/exported-" + dtype + ".safetensors";
        REQUIRE(export_command({"--model", model, "--dtype", dtype, "--out", out, "--limit", "20", "--data",
                                capsnet_test::mnist_directory()}) == 0);
        const double ratio = double(fs::file_size(out)) / double(fs::file_size(model));
        CHECK(ratio < (std::string(dtype) == "f16" ? 0.51 : 0.26));
        CHECK(model_load(out).config.preset == Preset::seed);
    }
    CHECK_THROWS_AS(export_command({"--model", model, "--out", model}), UsageError);
}

TEST_CASE("cli: train draws curves.png after every epoch; plot redraws and overlays runs", "[cli][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const std::string dir = scratch("curves");
    REQUIRE(train_command(tiny_run(dir, {"--epochs", "2"})) == 0);
    const RgbImage drawn = png_read(dir + "/curves.png");
    CHECK(drawn.width == 1200);
    CHECK(drawn.height == 1040);
    // The log it was drawn from: two epochs, the best one by validation accuracy.
    const RunLog run = read_run_log(dir);
    REQUIRE(run.rows.size() == 2);
    CHECK(run.name == "curves");
    const int best = run.rows[1].validation_accuracy > run.rows[0].validation_accuracy ? 2 : 1;
    CHECK(run.best_epoch() == best);
    CHECK(checkpoint_load(dir + "/checkpoint.safetensors").progress.best_epoch + 1 == best);
    // Not a blank page: the curves and the text put colour on it.
    const std::size_t coloured = std::count_if(drawn.pixels.begin(), drawn.pixels.end(), [](std::uint8_t p) { return p < 200; });
    CHECK(coloured > 10000);

    fs::remove(dir + "/curves.png");
    REQUIRE(plot_command({"--run", dir}) == 0);
    CHECK(png_read(dir + "/curves.png").pixels == drawn.pixels);  // the same picture from the same log
    const std::string overlay = dir + "/two.png";
    REQUIRE(plot_command({"--run", dir + "," + dir, "--out", overlay}) == 0);
    CHECK(png_read(overlay).pixels != drawn.pixels);  // a second legend entry at least
    CHECK_THROWS_WITH(plot_command({"--run", dir + "/no-such-run"}), Catch::Contains("log.csv"));
    CHECK_THROWS_AS(plot_command({}), UsageError);
}

TEST_CASE("cli: --init-from starts from a model's weights with a fresh Adam, recorded in the files", "[cli][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const std::string dir = scratch("init-from");
    const std::string source = write_random_model(dir);
    const Model start = model_load(source);
    const std::string run = dir + "/run";
    REQUIRE(train_command(tiny_run(run, {"--init-from", source, "--epochs", "1", "--stop-after-steps", "1"})) == 0);
    const Checkpoint after_one = checkpoint_load(run + "/checkpoint.safetensors");
    CHECK(after_one.model.config.init_from == source);
    CHECK(after_one.adam.step == 1);
    // One Adam step from the source weights: Adam's first step moves each weight by at most lr (1e-3)
    // and by about lr where the gradient is not tiny, so the weights are close to the source's and far
    // from a fresh initialisation's Uniform(-0.05, 0.05) draw.
    const float moved = xt::amax(xt::abs(after_one.model.params.primary_weight - start.params.primary_weight))();
    CHECK(moved > 0.0f);
    CHECK(moved <= 1.001e-3f);
    // The record survives --resume and reaches the model files.
    REQUIRE(train_command(tiny_run(run, {"--resume"})) == 0);
    CHECK(model_load(run + "/model.safetensors").config.init_from == source);
    CHECK(model_load(run + "/best.safetensors").config.init_from == source);
    CHECK_THROWS_WITH(train_command(tiny_run(dir + "/other", {"--init-from", source, "--preset", "paper"})),
                      Catch::Contains("holds a seed model"));
    CHECK_THROWS_WITH(train_command(tiny_run(run, {"--resume", "--init-from", source})), Catch::Contains("--init-from"));
    CHECK_THROWS_WITH(train_command(tiny_run(dir + "/missing", {"--init-from", dir + "/nothing.safetensors"})),
                      Catch::Contains("nothing.safetensors"));
}

TEST_CASE("cli: --train-only trains the named groups only (the CPU backend's threads too), recorded and kept on resume",
          "[cli][mnist][trainable]") {
    if (!capsnet_test::mnist_available()) return;
    const std::string dir = scratch("train-only");
    const std::string source = write_random_model(dir);
    const Model start = model_load(source);
    const std::string run = dir + "/run";
    REQUIRE(train_command(tiny_run(run, {"--init-from", source, "--train-only", "head", "--epochs", "1",
                                         "--stop-after-steps", "2"})) == 0);
    const Checkpoint checkpoint = checkpoint_load(run + "/checkpoint.safetensors");
    CHECK(trainable_layers_name(checkpoint.model.config.trainable) == "digit,decoder");
    CHECK((checkpoint.model.params.conv1_weight == start.params.conv1_weight));
    CHECK((checkpoint.model.params.primary_weight == start.params.primary_weight));
    CHECK((checkpoint.model.params.digit_weight != start.params.digit_weight));
    CHECK((checkpoint.model.params.decoder0_weight != start.params.decoder0_weight));
    CHECK(xt::amax(xt::abs(checkpoint.adam.first_moment.primary_weight))() == 0.0f);
    // A resumed run keeps its groups: naming others is refused, either way round.
    CHECK_THROWS_WITH(train_command(tiny_run(run, {"--resume", "--train-only", "all"})), Catch::Contains("--train-only"));
    REQUIRE(train_command(tiny_run(run, {"--resume"})) == 0);
    const Model model = model_load(run + "/model.safetensors");
    CHECK(trainable_layers_name(model.config.trainable) == "digit,decoder");
    CHECK((model.params.primary_weight == start.params.primary_weight));
    CHECK_THROWS_AS(train_command(tiny_run(dir + "/bad", {"--train-only", "conv2"})), UsageError);
}
