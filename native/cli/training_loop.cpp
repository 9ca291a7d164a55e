#include "cli/training_loop.hpp"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "capsnet/batch.hpp"
#include "cli/curves.hpp"
#include "cli/evaluation.hpp"
#include "cli/progress.hpp"

namespace capsnet::cli {

namespace {

volatile std::sig_atomic_t stop_requested = 0;

// The first Ctrl-C asks for a checkpoint and a clean exit; a second one kills as usual.
void request_stop(int signal) {
    stop_requested = 1;
    std::signal(signal, SIG_DFL);
}

// Ctrl-C and SIGTERM request a stop while one of these lives.
class StopOnSignals {
public:
    StopOnSignals() {
        stop_requested = 0;
        std::signal(SIGINT, request_stop);
        std::signal(SIGTERM, request_stop);
    }
    ~StopOnSignals() {
        std::signal(SIGINT, SIG_DFL);
        std::signal(SIGTERM, SIG_DFL);
    }
    StopOnSignals(const StopOnSignals&) = delete;
    StopOnSignals& operator=(const StopOnSignals&) = delete;
};

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
enum Stream : std::uint64_t { shuffle_stream = 2, augment_stream = 3 };

std::string percent(double fraction) {
    if (fraction < 0) return "-";
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "%.2f%%", 100 * fraction);
    return buffer;
}

class TrainingLoop {
public:
    TrainingLoop(TrainingBackend& backend, Checkpoint& checkpoint, const TrainingData& data, const RunFolder& folder,
                 const InvocationLimits& limits, Communicator* world)
        : backend_(backend), checkpoint_(checkpoint), progress_(checkpoint.progress), config_(checkpoint.model.config),
          plan_(checkpoint.data), data_(data), folder_(folder), limits_(limits), world_(world),
          rank0_(!world || world->rank() == 0), batch_size_(static_cast<std::size_t>(config_.batch_size)),
          train_count_(static_cast<std::size_t>(plan_.train_images)),
          steps_per_epoch_(static_cast<std::int64_t>((train_count_ + batch_size_ - 1) / batch_size_)) {}

    int run() {
        const StopOnSignals signals;
        last_checkpoint_ = std::chrono::steady_clock::now();
        while (progress_.epoch < progress_.epochs) {
            if (const std::optional<int> exit_code = train_rest_of_epoch()) return *exit_code;
            finish_epoch();
            const int code = agreed(stop_code());
            if (stop_message(code)) return stopped(code, "after epoch " + std::to_string(progress_.epoch));
        }
        std::printf("capsnet train: done, %d epochs. Latest weights: %s", progress_.epochs, folder_.model.c_str());
        if (progress_.best_epoch >= 0)
            std::printf("; best validation accuracy %s at epoch %d: %s", percent(progress_.best_validation_accuracy).c_str(),
                        progress_.best_epoch + 1, folder_.best.c_str());
        std::printf("\n");
        return 0;
    }

private:
    // The steps of the current epoch from progress_.step_in_epoch on; an exit code when the invocation
    // ends inside the epoch (a stop, with a checkpoint, or a divergence).
    std::optional<int> train_rest_of_epoch() {
        const int epoch = progress_.epoch;
        const double learning_rate = learning_rate_at_epoch(config_, epoch);
        Rng shuffle_rng(derived_seed(plan_.seed, shuffle_stream, static_cast<std::uint64_t>(epoch)));
        const std::vector<std::size_t> order = shuffled_indices(train_count_, shuffle_rng);
        ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(progress_.epochs), plan_.train_images,
                        progress_.seen);
        epoch_clock_ = std::chrono::steady_clock::now();
        std::string details;
        while (progress_.step_in_epoch < steps_per_epoch_) {
            const std::size_t begin = static_cast<std::size_t>(progress_.step_in_epoch) * batch_size_;
            const std::vector<std::size_t> indices(order.begin() + begin,
                                                   order.begin() + std::min(begin + batch_size_, train_count_));
            Rng augment_rng(derived_seed(derived_seed(plan_.seed, augment_stream, static_cast<std::uint64_t>(epoch)),
                                         static_cast<std::uint64_t>(progress_.step_in_epoch)));
            make_batch(data_.train.images.pixels, data_.train.labels, image_side, indices, config_.max_shift, augment_rng,
                       images_, labels_);
            const StepReport report = backend_.train_step(learning_rate, images_, labels_);
            if (!std::isfinite(report.margin_loss) || !std::isfinite(report.reconstruction_loss)) {
                bar.finish();
                return diverged(report, learning_rate);
            }
            account_step(report, indices.size());
            details = running_summary();
            bar.update(progress_.seen, details);

            if (progress_.step_in_epoch == steps_per_epoch_) break;  // the epoch-end checkpoint covers a stop here too
            const bool timer_due = limits_.checkpoint_minutes > 0 &&
                                   std::chrono::steady_clock::now() - last_checkpoint_ >
                                       std::chrono::duration<double>(60 * limits_.checkpoint_minutes);
            // code * 2 + timer: the largest carries the most urgent stop, or else any rank's due timer.
            const int agreement = agreed(stop_code() * 2 + (timer_due ? 1 : 0));
            const int code = agreement / 2;
            if (stop_message(code) || agreement % 2 == 1) {
                account_time();
                save_checkpoint();
            }
            if (stop_message(code)) {
                bar.finish(details);
                return stopped(code, "at epoch " + std::to_string(epoch + 1) + ", step " +
                                         std::to_string(progress_.step_in_epoch) + " of " + std::to_string(steps_per_epoch_));
            }
        }
        account_time();
        bar.finish(details);
        return std::nullopt;
    }

    void account_step(const StepReport& report, std::size_t images) {
        const double n = static_cast<double>(images);
        progress_.margin_loss_sum += report.margin_loss * n;
        progress_.reconstruction_loss_sum += report.reconstruction_loss * n;
        progress_.correct += report.correct;
        progress_.seen += static_cast<std::int64_t>(images);
        ++progress_.step_in_epoch;
        ++steps_this_run_;
    }

    // The epoch so far, for the progress bar.
    std::string running_summary() const {
        char details[96];
        std::snprintf(details, sizeof details, "loss %.4f acc %s",
                      (progress_.margin_loss_sum + progress_.reconstruction_loss_sum) / double(progress_.seen),
                      percent(double(progress_.correct) / double(progress_.seen)).c_str());
        return details;
    }

    // End of epoch: score, log, keep the best, checkpoint.
    void finish_epoch() {
        const int epoch = progress_.epoch;
        const double learning_rate = learning_rate_at_epoch(config_, epoch);
        const double seen = static_cast<double>(progress_.seen);
        const double margin = progress_.margin_loss_sum / seen, reconstruction = progress_.reconstruction_loss_sum / seen;
        const double train_accuracy = double(progress_.correct) / seen;
        const double epoch_seconds = progress_.seconds;
        const double rate = epoch_seconds > 0 ? seen / epoch_seconds : 0.0;
        const std::size_t eval_batch = 100;
        double validation_accuracy = -1, test_accuracy = -1;
        if (plan_.validation_images > 0)
            validation_accuracy = score_model(backend_, data_.train, train_count_,
                                              static_cast<std::size_t>(plan_.validation_images), eval_batch, "  validation")
                                      .accuracy();
        if (plan_.test_images > 0)
            test_accuracy = score_model(backend_, data_.test, 0, static_cast<std::size_t>(plan_.test_images), eval_batch,
                                        "  test")
                                .accuracy();

        const bool best = validation_accuracy > progress_.best_validation_accuracy;
        Model latest;
        if (rank0_) latest = Model{config_, backend_.parameters()};
        if (best) {
            if (rank0_) model_save(folder_.best, latest);
            progress_.best_validation_accuracy = validation_accuracy;
            progress_.best_epoch = epoch;
        }
        char row[512];
        std::snprintf(row, sizeof row, "%d,%.9g,%.9g,%.9g,%.9g,%.6f,%.6f,%.6f,%.3f,%.2f", epoch + 1, learning_rate, margin,
                      reconstruction, margin + reconstruction, train_accuracy, validation_accuracy, test_accuracy,
                      epoch_seconds, rate);
        if (rank0_) {
            append_training_log(folder_.log, row);
            write_run_curves(folder_.dir);
            model_save(folder_.model, latest);
        }
        progress_.epoch = epoch + 1;
        progress_.step_in_epoch = 0;
        progress_.margin_loss_sum = progress_.reconstruction_loss_sum = 0;
        progress_.correct = progress_.seen = 0;
        progress_.seconds = 0;
        save_checkpoint();
        std::printf("epoch %d/%d  loss %.5f (margin %.5f + reconstruction %.5f)  train %s  validation %s  test %s  lr %.3g  "
                    "%.0f img/s%s\n",
                    epoch + 1, progress_.epochs, margin + reconstruction, margin, reconstruction,
                    percent(train_accuracy).c_str(), percent(validation_accuracy).c_str(), percent(test_accuracy).c_str(),
                    learning_rate, rate, best ? "  [best so far]" : "");
        std::fflush(stdout);
    }

    // Rank 0 writes the backend's state with the progress; every rank restarts its timer.
    void save_checkpoint() {
        if (rank0_) {
            checkpoint_.model.params = backend_.parameters();
            checkpoint_.adam = backend_.adam_state();
            checkpoint_save(folder_.checkpoint, checkpoint_);
        }
        last_checkpoint_ = std::chrono::steady_clock::now();
    }

    void account_time() {
        const auto now = std::chrono::steady_clock::now();
        progress_.seconds += std::chrono::duration<double>(now - epoch_clock_).count();
        epoch_clock_ = now;
    }

    // Why this invocation ends now (a signal, or one of the --stop-after limits), or keep_going.
    int stop_code() const {
        if (stop_requested) return interrupted;
        if (limits_.stop_after_steps > 0 && steps_this_run_ >= limits_.stop_after_steps) return stop_after_steps_reached;
        if (limits_.stop_after_minutes > 0 &&
            std::chrono::steady_clock::now() - limits_.start >= std::chrono::duration<double>(60 * limits_.stop_after_minutes))
            return stop_after_minutes_reached;
        return keep_going;
    }

    // The ranks of a run over processes act on the same stop and checkpoint together: the largest code
    // of any rank (a signal may reach one rank only, and their clocks differ).
    int agreed(int code) const { return world_ ? world_->max(code) : code; }

    // The message of a stop `where` (after the checkpoint was saved) and its exit code.
    int stopped(int code, const std::string& where) const {
        std::printf("capsnet train: %s %s; checkpoint saved to %s.\n  Continue with: capsnet train --save %s --resume\n",
                    stop_message(code), where.c_str(), folder_.checkpoint.c_str(), folder_.dir.c_str());
        return code == interrupted ? 130 : 0;
    }

    int diverged(const StepReport& report, double learning_rate) const {
        if (rank0_)  // every rank sees the same report, and stops here with it
            std::fprintf(stderr,
                         "capsnet train: training diverged: the loss became %s at epoch %d, step %lld (learning rate "
                         "%g).\n  Nothing since the last checkpoint was saved; %s holds the last good state%s.\n  Try a "
                         "lower --lr, then --resume, or start over.\n",
                         std::isnan(report.margin_loss + report.reconstruction_loss) ? "NaN" : "infinite",
                         progress_.epoch + 1, static_cast<long long>(progress_.step_in_epoch + 1), learning_rate,
                         folder_.checkpoint.c_str(),
                         std::filesystem::exists(folder_.checkpoint) ? "" : " (none was written yet)");
        return 1;
    }

    TrainingBackend& backend_;
    Checkpoint& checkpoint_;
    TrainingProgress& progress_;
    const Config config_;
    const DataPlan plan_;
    const TrainingData& data_;
    const RunFolder& folder_;
    const InvocationLimits limits_;
    Communicator* const world_;
    const bool rank0_;  // writes the --save folder
    const std::size_t batch_size_, train_count_;
    const std::int64_t steps_per_epoch_;

    std::int64_t steps_this_run_ = 0;
    std::chrono::steady_clock::time_point last_checkpoint_, epoch_clock_;
    Tensor<float, 4> images_;
    std::vector<int> labels_;
};

}  // namespace

int run_training_loop(TrainingBackend& backend, Checkpoint& checkpoint, const TrainingData& data,
                      const RunFolder& folder, const InvocationLimits& limits, Communicator* world) {
    return TrainingLoop(backend, checkpoint, data, folder, limits, world).run();
}

}  // namespace capsnet::cli
