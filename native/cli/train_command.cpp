// `capsnet train`: the training loop around a TrainingBackend, with everything that makes a long run safe:
// a checkpoint at every epoch end, every --checkpoint-minutes and on Ctrl-C / SIGTERM (each written to a
// temp file and renamed, so kill -9 at any moment leaves the previous one intact); --resume continuing
// bit for bit; a validation split held out of the training set for picking the best epoch; and a stop
// with a clear message, keeping the last good checkpoint, when the loss stops being finite. Under mpirun,
// the processes train one model data-parallel (distributed/data_parallel_backend.hpp): every rank runs
// this loop in step, rank 0 alone reads the run's files and writes them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "backend/training_backend.hpp"
#include "capsnet/safetensors.hpp"
#include "distributed/communicator.hpp"
#include "distributed/data_parallel_backend.hpp"
#include "capsnet/batch.hpp"
#include "capsnet/checkpoint.hpp"
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/curves.hpp"
#include "cli/evaluation.hpp"
#include "cli/progress.hpp"

namespace capsnet::cli {

namespace {

namespace fs = std::filesystem;

volatile std::sig_atomic_t stop_requested = 0;

// The first Ctrl-C asks for a checkpoint and a clean exit; a second one kills as usual.
void request_stop(int signal) {
    stop_requested = 1;
    std::signal(signal, SIG_DFL);
}

// Why this invocation stops now: the codes every rank compares (the largest wins) to stop together.
enum StopCode : int { keep_going = 0, stop_after_minutes_reached = 1, stop_after_steps_reached = 2, interrupted = 3 };

const char* stop_message(int code) {
    switch (code) {
        case interrupted: return "interrupted";
        case stop_after_steps_reached: return "stopped (--stop-after-steps)";
        case stop_after_minutes_reached: return "stopped (--stop-after-minutes)";
        default: return nullptr;
    }
}

// Random streams of a run: each epoch's shuffle and each batch's shifts have their own, derived from the
// seed and the position, so a resumed run draws exactly what the uninterrupted one would.
enum Stream : std::uint64_t { init_stream = 1, shuffle_stream = 2, augment_stream = 3 };

ArgParser train_parser() {
    ArgParser parser("train",
                     "Trains a CapsNet on MNIST. Writes, in the --save folder:\n"
                     "  checkpoint.safetensors  weights + Adam state + position (every epoch, every --checkpoint-minutes, on Ctrl-C)\n"
                     "  model.safetensors       the latest weights (load with eval, visualize, export, or PyTorch)\n"
                     "  best.safetensors        the weights of the epoch with the best validation accuracy\n"
                     "  log.csv                 one row per epoch: losses, accuracies, learning rate, time\n"
                     "  curves.png              the learning curves of log.csv, redrawn after every epoch (capsnet plot)");
    parser.option("preset", "NAME", "seed", "model and training preset: seed (the Chainer reference) or paper")
        .option("epochs", "N", "30", "epochs to train (with --resume: the new total)")
        .option("batch-size", "N", "", "images per step [default: the preset's, 256]")
        .option("lr", "X", "", "Adam learning rate [default: the preset's, 0.001]")
        .option("lr-decay", "X", "", "learning rate multiplier per epoch [default: 0.95 seed, 0.9905 paper]")
        .option("routing-iterations", "N", "", "dynamic routing iterations [default: 3]")
        .flag("reconstruct", "add the decoder's reconstruction loss (the default of both presets)")
        .flag("no-reconstruct", "train without the decoder (margin loss only)")
        .option("seed", "N", "1", "random seed: initialisation, shuffling, shifts")
        .option("device", "DEV", "auto", "cpu, cuda, cuda:N or auto (a GPU when this build has CUDA and one is present)")
        .option("threads", "N", "0", "CPU threads (0: all cores; under mpirun, the cores shared by the machine's processes)")
        .flag("tf32", "on a GPU, let cuBLAS use TF32 tensor-core products (faster; the default is float32)")
        .option("save", "DIR", "saved_model", "output folder")
        .flag("resume", "continue the run in --save from its checkpoint")
        .option("init-from", "MODEL", "", "start from the weights of a model file (any dtype; Adam starts fresh); recorded in every file the run writes")
        .option("data", "DIR", default_data_dir(), "folder with the MNIST IDX files ($CAPSNET_DATA_DIR)")
        .option("validation", "N", "5000", "training images held out for validation, right after the ones trained on (by default the last N)")
        .option("train-limit", "N", "0", "train on only the first N training images (0: all but the validation set)")
        .option("test-limit", "N", "10000", "test images scored after each epoch (0: none)")
        .option("max-shift", "N", "", "random shift augmentation in pixels [default: 2]")
        .option("train-only", "LAYERS", "all", "layer groups to train, the others frozen: all, or a list of conv1, primary, digit, decoder (head = digit,decoder)")
        .option("checkpoint-minutes", "M", "10", "also checkpoint mid-epoch every M minutes (0: only at epoch ends)")
        .option("stop-after-steps", "N", "0", "stop with a checkpoint after N steps of this invocation, as an interruption would (0: never)")
        .option("stop-after-minutes", "M", "0", "stop likewise at the first step or epoch end M minutes after this invocation started (0: never)")
        .example("capsnet train --save runs/seed                 # seed preset, 30 epochs, all cores")
        .example("capsnet train --save runs/seed --resume --epochs 50")
        .example("capsnet train --preset paper --device cuda --save runs/paper")
        .example("capsnet train --init-from web/model/capsnet-seed-i8.safetensors --lr 0.0005 --save runs/warm")
        .example("capsnet train --init-from web/model/capsnet-seed-i8.safetensors --train-only head --epochs 1 --save runs/head");
    if (distributed_training_built())
        parser.example("mpirun -np 4 capsnet train --threads 1 --save runs/mpi   # 4 processes, each 1/4 of every batch");
    parser.note(distributed_training_built()
                    ? "Over several processes or machines: mpirun -np N capsnet train ... trains one model, each process on "
                      "1/N of every batch (the same global --batch-size), the gradients summed in a fixed order before each "
                      "step. Rank 0 reads and writes the --save folder; every rank reads --data. With --device cuda each "
                      "process takes its machine's next GPU. --resume works with any number of processes."
                    : std::string("Over several processes (mpirun -np N): ") + distributed_training_how_to_build + ".");
    return parser;
}

struct Paths {
    std::string checkpoint, model, best, log;
};

Paths paths_in(const std::string& folder) {
    const fs::path dir(folder);
    return {(dir / "checkpoint.safetensors").string(), (dir / "model.safetensors").string(),
            (dir / "best.safetensors").string(), (dir / "log.csv").string()};
}

const char* log_header =
    "epoch,learning_rate,train_margin_loss,train_reconstruction_loss,train_loss,train_accuracy,validation_accuracy,"
    "test_accuracy,epoch_seconds,images_per_second";

// Keeps the header and the rows of epochs 1..completed: after a kill between the log append and the
// checkpoint, the resumed run repeats that epoch and must not log it twice.
void trim_log(const std::string& path, int completed) {
    std::ifstream in(path);
    if (!in) return;
    std::string line, kept;
    std::getline(in, line);
    kept = std::string(log_header) + "\n";
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (std::atoi(line.c_str()) <= completed) kept += line + "\n";
    }
    in.close();
    write_whole_file_atomically(path, std::vector<std::uint8_t>(kept.begin(), kept.end()));
}

void append_log(const std::string& path, const std::string& row) {
    const bool fresh = !fs::exists(path);
    std::ofstream out(path, std::ios::app);
    if (!out) throw Error(path + ": cannot open the log for appending");
    if (fresh) out << log_header << "\n";
    out << row << "\n";
    out.flush();
    if (!out) throw Error(path + ": writing the log failed (disk full?)");
}

std::string percent(double fraction) {
    if (fraction < 0) return "-";
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "%.2f%%", 100 * fraction);
    return buffer;
}

// The settings a resumed run may not change, with the option that sets each.
void check_resume_matches(const Config& requested, const DataPlan& requested_data, const Checkpoint& checkpoint,
                          const ParsedArgs& args) {
    const auto want = config_to_metadata(requested), have = config_to_metadata(checkpoint.model.config);
    // train_only is absent from the metadata when every layer trains, so compare it both ways.
    if (requested.trainable != checkpoint.model.config.trainable)
        throw UsageError("--resume: --train-only " + trainable_layers_name(requested.trainable) +
                         " but the checkpoint was trained with --train-only " +
                         trainable_layers_name(checkpoint.model.config.trainable) + "; a resumed run keeps its settings");
    for (const auto& [key, value] : want)
        if (have.count(key) && have.at(key) != value)
            throw UsageError("--resume: the options set " + key + " = " + value + " but the checkpoint was trained with " +
                             have.at(key) + "; a resumed run keeps its settings (only --epochs, --device, --threads and "
                             "--checkpoint-minutes may change)");
    auto same = [&](const char* option, std::int64_t wanted, std::int64_t had) {
        if (args.given(option) && wanted != had)
            throw UsageError(std::string("--resume: --") + option + " " + std::to_string(wanted) +
                             " differs from the checkpoint's " + std::to_string(had));
    };
    same("seed", static_cast<std::int64_t>(requested_data.seed), static_cast<std::int64_t>(checkpoint.data.seed));
    same("validation", requested_data.validation_images, checkpoint.data.validation_images);
    same("test-limit", requested_data.test_images, checkpoint.data.test_images);
    if (args.given("train-limit") && args.integer("train-limit", 0, 60000) != 0)
        same("train-limit", requested_data.train_images, checkpoint.data.train_images);
}

// A file's safetensors, read by rank 0 and handed to every rank of a run over processes (the others need
// not see the file: the --save folder may be on rank 0's machine only).
SafeTensors read_on_rank0(const std::string& path, Communicator* world) {
    std::vector<std::uint8_t> bytes;
    if (!world || world->rank() == 0) bytes = read_whole_file(path);
    if (world) world->broadcast(bytes, 0);
    return safetensors_parse(bytes.data(), bytes.size(), path);
}

// Every rank of a run over processes trains every step, so each must get a share of every batch.
void check_batches_split_over(const Communicator& world, std::size_t batch_size, std::size_t train_count) {
    const std::size_t ranks = static_cast<std::size_t>(world.ranks()), last = train_count % batch_size;
    if (batch_size < ranks)
        throw UsageError("--batch-size " + std::to_string(batch_size) + " is smaller than the " + std::to_string(ranks) +
                         " processes: each trains on a share of every batch, at least one image");
    if (last > 0 && last < ranks)
        throw UsageError("--batch-size " + std::to_string(batch_size) + " over " + std::to_string(train_count) +
                         " training images leaves a last batch of " + std::to_string(last) + " images in each epoch, too few for " +
                         std::to_string(ranks) + " processes (each needs one): change --batch-size or --train-limit");
}

// One invocation of `capsnet train`; `world` is the run over processes this one is part of, or null.
int train(const ParsedArgs& args, Communicator* world, std::chrono::steady_clock::time_point invocation_start) {
    const bool rank0 = !world || world->rank() == 0;  // reads and writes the --save folder
    const bool resume = args.flag("resume");
    const std::string save_dir = args.text("save");
    const Paths paths = paths_in(save_dir);

    // Settings from the command line, on top of the preset (or, when resuming, the checkpoint's).
    Checkpoint checkpoint;
    if (rank0 && resume && !fs::exists(paths.checkpoint))
        throw Error(paths.checkpoint + ": no checkpoint to resume (train without --resume first, or check --save)");
    if (rank0 && !resume && fs::exists(paths.checkpoint))
        throw UsageError(paths.checkpoint + " already exists: add --resume to continue that run, or choose another --save folder");
    if (resume) checkpoint = checkpoint_from_safetensors(read_on_rank0(paths.checkpoint, world), paths.checkpoint);
    // --init-from: the weights of a model file, its preset unless --preset names one (which must match).
    const std::string init_from = args.text("init-from");
    Model initial;
    if (!init_from.empty()) {
        if (resume) throw UsageError("--init-from starts a new run; --resume continues one from its checkpoint (use one of them)");
        initial = model_from_safetensors(read_on_rank0(init_from, world), init_from);
        if (args.given("preset") && preset_from_name(args.text("preset")) != initial.config.preset)
            throw UsageError("--init-from " + init_from + " holds a " + preset_name(initial.config.preset) +
                             " model but --preset is " + args.text("preset"));
    }
    Config config = resume && !args.given("preset") ? checkpoint.model.config
                    : !init_from.empty()            ? config_for_preset(initial.config.preset)
                                                    : config_for_preset(preset_from_name(args.text("preset")));
    config.init_from = resume ? config.init_from : init_from;
    if (args.given("batch-size")) config.batch_size = static_cast<int>(args.integer("batch-size", 1, 65536));
    if (args.given("lr")) config.learning_rate = static_cast<float>(args.number("lr", 1e-9, 1.0));
    if (args.given("lr-decay")) config.lr_decay = static_cast<float>(args.number("lr-decay", 1e-6, 1.0));
    if (args.given("routing-iterations"))
        config.routing_iterations = static_cast<int>(args.integer("routing-iterations", 1, 100));
    if (args.flag("reconstruct") && args.flag("no-reconstruct"))
        throw UsageError("--reconstruct and --no-reconstruct contradict each other");
    if (args.flag("reconstruct")) config.reconstruct = true;
    if (args.flag("no-reconstruct")) config.reconstruct = false;
    if (args.given("max-shift")) config.max_shift = static_cast<int>(args.integer("max-shift", 0, 8));
    if (args.given("train-only")) {
        try {
            config.trainable = trainable_layers_from_name(args.text("train-only"));
        } catch (const Error& e) {
            throw UsageError(std::string("--train-only: ") + e.what());
        }
    }
    const int epochs = static_cast<int>(args.integer("epochs", 1, 100000));
    int threads = static_cast<int>(args.integer("threads", 0, 1024));
    // --threads 0 means all cores: shared by the ranks on this machine, not all of them to each.
    if (world && threads == 0)
        threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / world->ranks_on_node());
    const double checkpoint_minutes = args.number("checkpoint-minutes", 0, 1e6);
    const std::int64_t stop_after_steps = args.integer("stop-after-steps", 0, 1LL << 40);
    const double stop_after_minutes = args.number("stop-after-minutes", 0, 1e7);
    const std::string device = args.text("device");

    const MnistSplit train_split = load_mnist(args.text("data"), "train");
    const MnistSplit test_split = load_mnist(args.text("data"), "t10k");
    const std::int64_t available = train_split.images.count;
    DataPlan data;
    data.seed = static_cast<std::uint64_t>(args.integer("seed", 0, (1LL << 62)));
    data.validation_images = args.integer("validation", 0, available - 1);
    const std::int64_t limit = args.integer("train-limit", 0, available);
    data.train_images = limit > 0 ? limit : available - data.validation_images;
    if (data.train_images + data.validation_images > available)
        throw UsageError("--train-limit " + std::to_string(data.train_images) + " plus --validation " +
                         std::to_string(data.validation_images) + " exceed the " + std::to_string(available) +
                         " training images");
    data.test_images = args.integer("test-limit", 0, test_split.images.count);

    if (resume) {
        check_resume_matches(config, data, checkpoint, args);
        if (args.given("epochs")) checkpoint.progress.epochs = epochs;
        config = checkpoint.model.config;
        data = checkpoint.data;
        if (rank0) trim_log(paths.log, checkpoint.progress.epoch);
    } else {
        std::error_code ec;
        if (rank0) fs::create_directories(save_dir, ec);
        if (rank0 && (ec || !fs::is_directory(save_dir)))
            throw Error(save_dir + ": cannot create the output folder (" + ec.message() + ")");
        Rng init_rng(derived_seed(data.seed, init_stream));
        checkpoint.model.config = config;
        checkpoint.model.params = init_from.empty() ? parameters_init<float>(config, init_rng) : initial.params;
        checkpoint.adam = adam_init<float>(config);
        checkpoint.data = data;
        checkpoint.progress.epochs = epochs;
        if (rank0) fs::remove(paths.log);
    }
    TrainingProgress& progress = checkpoint.progress;

    const std::size_t batch_size = static_cast<std::size_t>(config.batch_size);
    const std::size_t train_count = static_cast<std::size_t>(data.train_images);
    if (world) check_batches_split_over(*world, batch_size, train_count);

    std::unique_ptr<TrainingBackend> backend = make_training_backend(
        device, threads, args.flag("tf32") ? GpuMatmul::tf32 : GpuMatmul::float32, world ? world->rank_on_node() : 0);
    if (world) backend = std::make_unique<DataParallelBackend>(std::move(backend), *world);
    backend->load(config, checkpoint.model.params, checkpoint.adam);
    auto save_checkpoint = [&] {
        if (!rank0) return;
        checkpoint.model.params = backend->parameters();
        checkpoint.adam = backend->adam_state();
        checkpoint_save(paths.checkpoint, checkpoint);
    };

    const std::int64_t steps_per_epoch = static_cast<std::int64_t>((train_count + batch_size - 1) / batch_size);
    std::printf("capsnet train: preset %s, %zu parameters, %s\n", preset_name(config.preset),
                parameter_count(checkpoint.model.params), backend->description().c_str());
    std::printf("  %lld training images (%lld steps of %zu per epoch), %lld validation, %lld test; saving to %s\n",
                static_cast<long long>(data.train_images), static_cast<long long>(steps_per_epoch), batch_size,
                static_cast<long long>(data.validation_images), static_cast<long long>(data.test_images), save_dir.c_str());
    if (!config.init_from.empty())
        std::printf("  weights initialised from %s%s\n", config.init_from.c_str(), resume ? "" : " (Adam starts fresh)");
    if (!config.trainable.all())
        std::printf("  training only %s; the other layers stay frozen\n", trainable_layers_name(config.trainable).c_str());
    if (resume)
        std::printf("  resuming at epoch %d, step %lld of %lld\n", progress.epoch + 1,
                    static_cast<long long>(progress.step_in_epoch), static_cast<long long>(steps_per_epoch));
    std::fflush(stdout);

    stop_requested = 0;
    std::signal(SIGINT, request_stop);
    std::signal(SIGTERM, request_stop);
    struct RestoreSignals {
        ~RestoreSignals() {
            std::signal(SIGINT, SIG_DFL);
            std::signal(SIGTERM, SIG_DFL);
        }
    } restore_signals;

    std::int64_t steps_this_run = 0;
    // Why this invocation ends now (a signal, or one of the --stop-after limits), or keep_going.
    auto stop_code = [&]() -> int {
        if (stop_requested) return interrupted;
        if (stop_after_steps > 0 && steps_this_run >= stop_after_steps) return stop_after_steps_reached;
        if (stop_after_minutes > 0 &&
            std::chrono::steady_clock::now() - invocation_start >= std::chrono::duration<double>(60 * stop_after_minutes))
            return stop_after_minutes_reached;
        return keep_going;
    };
    // The ranks of a run over processes act on the same stop and checkpoint together: the largest code
    // of any rank (a signal may reach one rank only, and their clocks differ).
    auto agreed = [&](int code) { return world ? world->max(code) : code; };
    auto last_checkpoint = std::chrono::steady_clock::now();
    Tensor<float, 4> images;
    std::vector<int> labels;
    const std::size_t eval_batch = 100;

    while (progress.epoch < progress.epochs) {
        const int epoch = progress.epoch;
        const double learning_rate = learning_rate_at_epoch(config, epoch);
        Rng shuffle_rng(derived_seed(data.seed, shuffle_stream, static_cast<std::uint64_t>(epoch)));
        const std::vector<std::size_t> order = shuffled_indices(train_count, shuffle_rng);
        const std::string label = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(progress.epochs);
        ProgressBar bar(label, data.train_images, progress.seen);
        auto epoch_clock = std::chrono::steady_clock::now();
        auto account_time = [&] {
            const auto now = std::chrono::steady_clock::now();
            progress.seconds += std::chrono::duration<double>(now - epoch_clock).count();
            epoch_clock = now;
        };

        std::string last_details;
        while (progress.step_in_epoch < steps_per_epoch) {
            const std::size_t begin = static_cast<std::size_t>(progress.step_in_epoch) * batch_size;
            const std::vector<std::size_t> indices(order.begin() + begin, order.begin() + std::min(begin + batch_size, train_count));
            Rng augment_rng(derived_seed(derived_seed(data.seed, augment_stream, static_cast<std::uint64_t>(epoch)),
                                         static_cast<std::uint64_t>(progress.step_in_epoch)));
            make_batch(train_split.images.pixels, train_split.labels, image_side, indices, config.max_shift, augment_rng,
                       images, labels);
            const StepReport report = backend->train_step(learning_rate, images, labels);
            if (!std::isfinite(report.margin_loss) || !std::isfinite(report.reconstruction_loss)) {
                bar.finish();
                if (rank0)  // every rank sees the same report, and stops here with it
                    std::fprintf(stderr,
                             "capsnet train: training diverged: the loss became %s at epoch %d, step %lld (learning rate "
                             "%g).\n  Nothing since the last checkpoint was saved; %s holds the last good state%s.\n  Try a lower --lr, "
                             "then --resume, or start over.\n",
                             std::isnan(report.margin_loss + report.reconstruction_loss) ? "NaN" : "infinite", epoch + 1,
                             static_cast<long long>(progress.step_in_epoch + 1), learning_rate, paths.checkpoint.c_str(),
                             fs::exists(paths.checkpoint) ? "" : " (none was written yet)");
                return 1;
            }
            const double n = static_cast<double>(indices.size());
            progress.margin_loss_sum += report.margin_loss * n;
            progress.reconstruction_loss_sum += report.reconstruction_loss * n;
            progress.correct += report.correct;
            progress.seen += static_cast<std::int64_t>(indices.size());
            ++progress.step_in_epoch;
            ++steps_this_run;
            char details[96];
            std::snprintf(details, sizeof details, "loss %.4f acc %s",
                          (progress.margin_loss_sum + progress.reconstruction_loss_sum) / double(progress.seen),
                          percent(double(progress.correct) / double(progress.seen)).c_str());
            bar.update(progress.seen, details);
            last_details = details;

            const bool end_of_epoch = progress.step_in_epoch == steps_per_epoch;
            if (end_of_epoch) break;  // the epoch-end checkpoint below covers a stop here too
            const bool timer_due = checkpoint_minutes > 0 && std::chrono::steady_clock::now() - last_checkpoint >
                                                                 std::chrono::duration<double>(60 * checkpoint_minutes);
            // code * 2 + timer: the largest carries the most urgent stop, or else any rank's due timer.
            const int agreement = agreed(stop_code() * 2 + (timer_due ? 1 : 0));
            const char* stop = stop_message(agreement / 2);
            const bool timer = agreement % 2 == 1;
            if (stop || timer) {
                account_time();
                save_checkpoint();
                last_checkpoint = std::chrono::steady_clock::now();
            }
            if (stop) {
                bar.finish(details);
                std::printf("capsnet train: %s at epoch %d, step %lld of %lld; checkpoint saved to %s.\n  Continue with: "
                            "capsnet train --save %s --resume\n",
                            stop, epoch + 1, static_cast<long long>(progress.step_in_epoch),
                            static_cast<long long>(steps_per_epoch), paths.checkpoint.c_str(), save_dir.c_str());
                return agreement / 2 == interrupted ? 130 : 0;
            }
        }
        account_time();
        bar.finish(last_details);

        // End of epoch: score, log, keep the best, checkpoint.
        const double seen = static_cast<double>(progress.seen);
        const double margin = progress.margin_loss_sum / seen, reconstruction = progress.reconstruction_loss_sum / seen;
        const double train_accuracy = double(progress.correct) / seen;
        const double epoch_seconds = progress.seconds;
        const double rate = epoch_seconds > 0 ? seen / epoch_seconds : 0.0;
        double validation_accuracy = -1, test_accuracy = -1;
        if (data.validation_images > 0)
            validation_accuracy = score_model(*backend, train_split, train_count,
                                              static_cast<std::size_t>(data.validation_images), eval_batch, "  validation")
                                      .accuracy();
        if (data.test_images > 0)
            test_accuracy =
                score_model(*backend, test_split, 0, static_cast<std::size_t>(data.test_images), eval_batch, "  test").accuracy();

        const bool best = validation_accuracy > progress.best_validation_accuracy;
        Model latest;
        if (rank0) latest = Model{config, backend->parameters()};
        if (best) {
            if (rank0) model_save(paths.best, latest);
            progress.best_validation_accuracy = validation_accuracy;
            progress.best_epoch = epoch;
        }
        char row[512];
        std::snprintf(row, sizeof row, "%d,%.9g,%.9g,%.9g,%.9g,%.6f,%.6f,%.6f,%.3f,%.2f", epoch + 1, learning_rate, margin,
                      reconstruction, margin + reconstruction, train_accuracy, validation_accuracy, test_accuracy,
                      epoch_seconds, rate);
        if (rank0) {
            append_log(paths.log, row);
            write_run_curves(save_dir);
            model_save(paths.model, latest);
        }
        progress.epoch = epoch + 1;
        progress.step_in_epoch = 0;
        progress.margin_loss_sum = progress.reconstruction_loss_sum = 0;
        progress.correct = progress.seen = 0;
        progress.seconds = 0;
        save_checkpoint();
        last_checkpoint = std::chrono::steady_clock::now();
        std::printf("epoch %d/%d  loss %.5f (margin %.5f + reconstruction %.5f)  train %s  validation %s  test %s  lr %.3g  "
                    "%.0f img/s%s\n",
                    epoch + 1, progress.epochs, margin + reconstruction, margin, reconstruction, percent(train_accuracy).c_str(),
                    percent(validation_accuracy).c_str(), percent(test_accuracy).c_str(), learning_rate, rate,
                    best ? "  [best so far]" : "");
        std::fflush(stdout);
        const int code = agreed(stop_code());
        if (const char* stop = stop_message(code)) {
            std::printf("capsnet train: %s after epoch %d; checkpoint saved to %s.\n  Continue with: capsnet train --save %s "
                        "--resume\n",
                        stop, epoch + 1, paths.checkpoint.c_str(), save_dir.c_str());
            return code == interrupted ? 130 : 0;
        }
    }
    std::printf("capsnet train: done, %d epochs. Latest weights: %s", progress.epochs, paths.model.c_str());
    if (progress.best_epoch >= 0)
        std::printf("; best validation accuracy %s at epoch %d: %s", percent(progress.best_validation_accuracy).c_str(),
                    progress.best_epoch + 1, paths.best.c_str());
    std::printf("\n");
    return 0;
}

}  // namespace

int train_command(const std::vector<std::string>& arguments) {
    // --stop-after-minutes counts from here: a caller with a time budget (bench/gpu.sh) bounds the whole
    // invocation, data loading included.
    const auto invocation_start = std::chrono::steady_clock::now();
    const ArgParser parser = train_parser();
    const ParsedArgs args = parser.parse(arguments);
    if (args.help) {
        std::fputs(parser.help().c_str(), stdout);
        return 0;
    }
    Communicator* const world = distributed_world();
    if (!world) return train(args, nullptr, invocation_start);

    // Rank 0 speaks for the run; the others print only their own errors.
    if (world->rank() != 0) {
        set_progress_bars_shown(false);
        if (!std::freopen("/dev/null", "w", stdout)) std::fclose(stdout);
    }
    // A rank that fails alone would leave the others waiting in the next exchange: its error ends them
    // all (mpirun reports which rank). Rank 0 says what went wrong, as a single process would.
    try {
        return train(args, world, invocation_start);
    } catch (const std::exception& error) {
        const bool usage = dynamic_cast<const UsageError*>(&error) != nullptr;
        if (world->rank() == 0)
            std::fprintf(stderr, "capsnet train: error: %s\n%s", error.what(),
                         usage ? "Run 'capsnet train --help' for the options.\n" : "");
        else if (!usage)
            std::fprintf(stderr, "capsnet train (rank %d of %d): error: %s\n", world->rank(), world->ranks(), error.what());
        std::fflush(stderr);
        // A mistake in the options stops every rank at once: let rank 0's message out before ending the run.
        if (world->rank() != 0) std::this_thread::sleep_for(std::chrono::seconds(2));
        world->abort(usage ? 2 : 1);
    }
    return 1;  // not reached: abort() ends the process
}

}  // namespace capsnet::cli
