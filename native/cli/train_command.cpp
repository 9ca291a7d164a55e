// `capsnet train`: the options, and the run they start or resume, around the step loop of
// cli/training_loop.hpp, which makes a long run safe: a checkpoint at every epoch end, every
// --checkpoint-minutes and on Ctrl-C / SIGTERM (each written to a temp file and renamed, so kill -9 at any
// moment leaves the previous one intact); --resume continuing bit for bit; a validation split held out of
// the training set for picking the best epoch; and a stop with a clear message, keeping the last good
// checkpoint, when the loss stops being finite. Under mpirun, the processes train one model data-parallel
// (distributed/data_parallel_backend.hpp): every rank runs the loop in step, rank 0 alone reads the run's
// files and writes them.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include "backend/training_backend.hpp"
#include "cli/backend_choice.hpp"
#include "capsnet/checkpoint.hpp"
#include "capsnet/safetensors.hpp"
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/evaluation.hpp"
#include "cli/progress.hpp"
#include "cli/run_folder.hpp"
#include "cli/training_loop.hpp"
#include "distributed/communicator.hpp"
#include "distributed/data_parallel_backend.hpp"

namespace capsnet::cli {

namespace {

namespace fs = std::filesystem;

// The random stream of a new run's initial weights (the loop's streams are 2 and 3).
constexpr std::uint64_t init_stream = 1;

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

// A file's safetensors, read by rank 0 and handed to every rank of a run over processes (the others need
// not see the file: the --save folder may be on rank 0's machine only).
SafeTensors read_on_rank0(const std::string& path, Communicator* world) {
    std::vector<std::uint8_t> bytes;
    if (!world || world->rank() == 0) bytes = read_whole_file(path);
    if (world) world->broadcast(bytes, 0);
    return safetensors_parse(bytes.data(), bytes.size(), path);
}

// What the run continues or starts from: the checkpoint in --save (--resume), the weights of --init-from,
// or neither (a fresh initialisation). Read before MNIST, so a wrong path fails at once.
struct StartingPoint {
    std::optional<Checkpoint> resumed;
    std::optional<Model> initial;
};

StartingPoint read_starting_point(const ParsedArgs& args, const RunFolder& folder, Communicator* world) {
    const bool rank0 = !world || world->rank() == 0;
    const bool resume = args.flag("resume");
    const std::string init_from = args.text("init-from");
    if (rank0 && resume && !fs::exists(folder.checkpoint))
        throw Error(folder.checkpoint + ": no checkpoint to resume (train without --resume first, or check --save)");
    if (rank0 && !resume && fs::exists(folder.checkpoint))
        throw UsageError(folder.checkpoint + " already exists: add --resume to continue that run, or choose another --save folder");
    if (resume && !init_from.empty())
        throw UsageError("--init-from starts a new run; --resume continues one from its checkpoint (use one of them)");
    StartingPoint start;
    if (resume) start.resumed = checkpoint_from_safetensors(read_on_rank0(folder.checkpoint, world), folder.checkpoint);
    if (!init_from.empty()) {
        start.initial = model_from_safetensors(read_on_rank0(init_from, world), init_from);
        // --init-from brings its preset, unless --preset names one (which must match).
        if (args.given("preset") && preset_from_name(args.text("preset")) != start.initial->config.preset)
            throw UsageError("--init-from " + init_from + " holds a " + preset_name(start.initial->config.preset) +
                             " model but --preset is " + args.text("preset"));
    }
    return start;
}

// The Config the command line asks for: its options on top of the preset (when resuming without
// --preset, the checkpoint's settings; check_resume_matches compares the two).
Config requested_config(const ParsedArgs& args, const StartingPoint& start) {
    Config config = start.resumed && !args.given("preset") ? start.resumed->model.config
                    : start.initial                        ? config_for_preset(start.initial->config.preset)
                                                           : config_for_preset(preset_from_name(args.text("preset")));
    config.init_from = start.resumed ? config.init_from : args.text("init-from");
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
    return config;
}

// Which images the command line trains, validates and tests on, given the files' sizes.
DataPlan requested_data_plan(const ParsedArgs& args, std::int64_t training_images, std::int64_t test_images) {
    DataPlan data;
    data.seed = static_cast<std::uint64_t>(args.integer("seed", 0, (1LL << 62)));
    data.validation_images = args.integer("validation", 0, training_images - 1);
    const std::int64_t limit = args.integer("train-limit", 0, training_images);
    data.train_images = limit > 0 ? limit : training_images - data.validation_images;
    if (data.train_images + data.validation_images > training_images)
        throw UsageError("--train-limit " + std::to_string(data.train_images) + " plus --validation " +
                         std::to_string(data.validation_images) + " exceed the " + std::to_string(training_images) +
                         " training images");
    data.test_images = args.integer("test-limit", 0, test_images);
    return data;
}

InvocationLimits invocation_limits(const ParsedArgs& args, std::chrono::steady_clock::time_point invocation_start) {
    InvocationLimits limits;
    limits.checkpoint_minutes = args.number("checkpoint-minutes", 0, 1e6);
    limits.stop_after_steps = args.integer("stop-after-steps", 0, 1LL << 40);
    limits.stop_after_minutes = args.number("stop-after-minutes", 0, 1e7);
    limits.start = invocation_start;
    return limits;
}

// --threads 0 means all cores: shared by the ranks on this machine, not all of them to each.
int cpu_threads(const ParsedArgs& args, const Communicator* world) {
    const int threads = static_cast<int>(args.integer("threads", 0, 1024));
    if (world && threads == 0)
        return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / world->ranks_on_node());
    return threads;
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

// The checkpoint this invocation trains from: the resumed one (its settings kept, --epochs the new total,
// log rows past its epoch dropped), or a new run's (weights initialised or copied from --init-from, Adam
// fresh, the --save folder created and its log started over).
Checkpoint starting_checkpoint(StartingPoint start, const Config& config, const DataPlan& data, int epochs,
                               const ParsedArgs& args, const RunFolder& folder, bool rank0) {
    if (start.resumed) {
        Checkpoint checkpoint = std::move(*start.resumed);
        check_resume_matches(config, data, checkpoint, args);
        if (args.given("epochs")) checkpoint.progress.epochs = epochs;
        if (rank0) trim_training_log(folder.log, checkpoint.progress.epoch);
        return checkpoint;
    }
    std::error_code ec;
    if (rank0) fs::create_directories(folder.dir, ec);
    if (rank0 && (ec || !fs::is_directory(folder.dir)))
        throw Error(folder.dir + ": cannot create the output folder (" + ec.message() + ")");
    Checkpoint checkpoint;
    Rng init_rng(derived_seed(data.seed, init_stream));
    checkpoint.model.config = config;
    checkpoint.model.params = start.initial ? std::move(start.initial->params) : parameters_init<float>(config, init_rng);
    checkpoint.adam = adam_init<float>(config);
    checkpoint.data = data;
    checkpoint.progress.epochs = epochs;
    if (rank0) fs::remove(folder.log);
    return checkpoint;
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

void print_run_summary(const Checkpoint& checkpoint, const TrainingBackend& backend, const RunFolder& folder, bool resumed) {
    const Config& config = checkpoint.model.config;
    const DataPlan& data = checkpoint.data;
    const std::size_t batch_size = static_cast<std::size_t>(config.batch_size);
    const long long steps_per_epoch = (data.train_images + config.batch_size - 1) / config.batch_size;
    std::printf("capsnet train: preset %s, %zu parameters, %s\n", preset_name(config.preset),
                parameter_count(checkpoint.model.params), backend.description().c_str());
    std::printf("  %lld training images (%lld steps of %zu per epoch), %lld validation, %lld test; saving to %s\n",
                static_cast<long long>(data.train_images), steps_per_epoch, batch_size,
                static_cast<long long>(data.validation_images), static_cast<long long>(data.test_images), folder.dir.c_str());
    if (!config.init_from.empty())
        std::printf("  weights initialised from %s%s\n", config.init_from.c_str(), resumed ? "" : " (Adam starts fresh)");
    if (!config.trainable.all())
        std::printf("  training only %s; the other layers stay frozen\n", trainable_layers_name(config.trainable).c_str());
    if (resumed)
        std::printf("  resuming at epoch %d, step %lld of %lld\n", checkpoint.progress.epoch + 1,
                    static_cast<long long>(checkpoint.progress.step_in_epoch), steps_per_epoch);
    std::fflush(stdout);
}

// One invocation of `capsnet train`; `world` is the run over processes this one is part of, or null.
int train(const ParsedArgs& args, Communicator* world, std::chrono::steady_clock::time_point invocation_start) {
    const bool rank0 = !world || world->rank() == 0;  // reads and writes the --save folder
    const RunFolder folder = run_folder(args.text("save"));
    StartingPoint start = read_starting_point(args, folder, world);
    const bool resumed = start.resumed.has_value();
    const Config config = requested_config(args, start);
    const int epochs = static_cast<int>(args.integer("epochs", 1, 100000));
    const int threads = cpu_threads(args, world);
    const InvocationLimits limits = invocation_limits(args, invocation_start);
    const std::string device = args.text("device");

    const MnistSplit train_split = load_mnist(args.text("data"), "train");
    const MnistSplit test_split = load_mnist(args.text("data"), "t10k");
    const DataPlan data = requested_data_plan(args, train_split.images.count, test_split.images.count);
    Checkpoint checkpoint = starting_checkpoint(std::move(start), config, data, epochs, args, folder, rank0);
    if (world)
        check_batches_split_over(*world, static_cast<std::size_t>(checkpoint.model.config.batch_size),
                                 static_cast<std::size_t>(checkpoint.data.train_images));

    std::unique_ptr<TrainingBackend> backend = make_training_backend(
        device, threads, args.flag("tf32") ? GpuMatmul::tf32 : GpuMatmul::float32, world ? world->rank_on_node() : 0);
    if (world) backend = std::make_unique<DataParallelBackend>(std::move(backend), *world);
    backend->load(checkpoint.model.config, checkpoint.model.params, checkpoint.adam);
    print_run_summary(checkpoint, *backend, folder, resumed);
    return run_training_loop(*backend, checkpoint, TrainingData{train_split, test_split}, folder, limits, world);
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
