// Data-parallel training on the CPU cores (see cpu_backend.hpp).
#include "cpu/cpu_backend.hpp"

#include <algorithm>
#include <thread>

#include <cblas.h>

#include "backend/shards.hpp"
#include "capsnet/gemm.hpp"
#include "cpu/gemm_openblas.hpp"

namespace capsnet {

namespace {

int resolved_threads(int threads) {
    return threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

CpuBackend::CpuBackend(int threads) : threads_(resolved_threads(threads)), pool_(threads_) {
    // Our threads split the batch; OpenBLAS threads on top would only contend for the same cores (and
    // with one thread asked for, the user wants one core).
    openblas_set_num_threads(1);
    shards_.resize(static_cast<std::size_t>(threads_));
}

std::string CpuBackend::description() const {
    return "cpu (" + std::to_string(threads_) + (threads_ == 1 ? " thread" : " threads") + ", " + gemm_backend().name + " GEMM)";
}

void CpuBackend::load(const Config& config, const Parameters<float>& params, const AdamState<float>& adam) {
    config_ = config;
    params_ = params;
    adam_ = adam;
    for (Shard& shard : shards_) shard.workspace.grads = parameters_zeros<float>(config_);
}

StepReport CpuBackend::train_step(double learning_rate, const Tensor<float, 4>& images, const std::vector<int>& labels) {
    const std::size_t batch = images.shape(0);
    if (batch == 0 || labels.size() != batch)
        throw Error("cpu backend: " + std::to_string(labels.size()) + " labels for a batch of " + std::to_string(batch));
    const int shards = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads_), batch));
    const DecoderMask mask = config_.reconstruct ? DecoderMask::labels : DecoderMask::none;
    std::vector<Losses<float>> losses(static_cast<std::size_t>(shards));
    std::vector<int> correct(static_cast<std::size_t>(shards), 0);
    for (Shard& shard : shards_) shard.times = StageTimes{};

    pool_.run(shards, [&](int k) {
        Shard& shard = shards_[static_cast<std::size_t>(k)];
        const StageRecording recording(stage_times_ ? &shard.times : nullptr);
        const auto [first, last] = part_range(batch, shards, k);
        shard.labels.assign(labels.begin() + first, labels.begin() + last);
        const Tensor<float, 4>& input = shards == 1 ? images : (copy_batch_images(images, first, last, shard.images), shard.images);
        TrainWorkspace<float>& ws = shard.workspace;
        model_forward(config_, params_, input, mask, shard.labels, ws.state);
        losses[k] = model_loss(config_, ws.state, shard.labels);
        model_backward(config_, params_, ws.state, shard.labels, ws.grads, ws.gradients);
        const std::vector<int> predicted = predicted_classes(ws.state.lengths);
        for (std::size_t i = 0; i < predicted.size(); ++i) correct[k] += predicted[i] == shard.labels[i];
    });

    StepReport report;
    std::vector<float> weights(static_cast<std::size_t>(shards));
    for (int k = 0; k < shards; ++k) {
        const auto [first, last] = part_range(batch, shards, k);
        const double weight = double(last - first) / double(batch);
        weights[k] = shard_weight(last - first, batch);
        report.margin_loss += weight * losses[k].margin;
        report.reconstruction_loss += weight * losses[k].reconstruction;
        report.correct += correct[k];
    }
    update_parameters(learning_rate, weights);

    if (stage_times_) {
        // The shards ran side by side: a stage took the step as long as it took an average shard.
        for (const Shard& shard : shards_)
            for (std::size_t i = 0; i < shard.times.seconds.size(); ++i) stage_times_->seconds[i] += shard.times.seconds[i] / shards;
    }
    return report;
}

void CpuBackend::update_parameters(double learning_rate, const std::vector<float>& shard_weights) {
    const int shards = static_cast<int>(shard_weights.size());
    std::vector<ParameterSlot> slots;
    // Only the trainable tensors get a slot: frozen ones keep their values and moments.
    visit_parameters(
        [&](const char* name, auto& value, auto& m, auto& v) {
            if (config_.trainable.trains(name)) slots.push_back({value.data(), m.data(), v.data(), {}, value.size()});
        },
        params_, adam_.first_moment, adam_.second_moment);
    for (int k = 0; k < shards; ++k) {
        std::size_t index = 0;
        visit_parameters(
            [&](const char* name, const auto& grad) {
                if (config_.trainable.trains(name)) slots[index++].shard_grads.push_back(grad.data());
            },
            shards_[static_cast<std::size_t>(k)].workspace.grads);
    }
    std::size_t total = 0;
    for (const ParameterSlot& slot : slots) total += slot.size;

    adam_.step += 1;
    const AdamStep<float> step = adam_step<float>(config_, learning_rate, adam_.step);
    // Every thread works on its own slice of all the parameters, a chunk at a time so that a summed
    // chunk is still in L1 when Adam reads it. fn(slot, at, global, n): n floats at offset `at` of
    // `slot`, which are floats [global, global + n) of all the trainable parameters.
    constexpr std::size_t chunk = 2048;
    auto for_each_chunk_of_slice = [&](int k, auto&& fn) {
        const auto [first, last] = part_range(total, threads_, k);
        std::size_t offset = 0;
        for (const ParameterSlot& slot : slots) {
            const std::size_t begin = std::max(first, offset), end = std::min(last, offset + slot.size);
            for (std::size_t i = begin; i < end; i += chunk) fn(slot, i - offset, i, std::min(chunk, end - i));
            offset += slot.size;
        }
    };
    // Each element is summed in shard order whatever the timing: the same thread count gives the same bits.
    auto sum_shards = [&](const ParameterSlot& slot, std::size_t at, float* sum, std::size_t n) {
        weighted_gradient_start(sum, shard_weights[0], slot.shard_grads[0] + at, n);
        for (int s = 1; s < shards; ++s) weighted_gradient_add(sum, shard_weights[s], slot.shard_grads[s] + at, n);
    };

    if (!combine_) {
        pool_.run(threads_, [&](int k) {
            const StageRecording recording(k == 0 ? stage_times_ : nullptr);  // the calling thread
            StageTimer timer(Stage::adam);
            float summed[chunk];
            for_each_chunk_of_slice(k, [&](const ParameterSlot& slot, std::size_t at, std::size_t, std::size_t n) {
                const float* grad = slot.shard_grads[0] + at;
                if (shards > 1) {
                    sum_shards(slot, at, summed, n);
                    grad = summed;
                }
                adam_update_slice(step, grad, slot.value + at, slot.first_moment + at, slot.second_moment + at, n);
            });
        });
        return;
    }
    // Over several processes: this process's gradient, flat, goes to the combiner, which returns the
    // whole batch's; then Adam, over the same slices.
    combined_gradient_.resize(total);
    float* flat = combined_gradient_.data();
    pool_.run(threads_, [&](int k) {
        for_each_chunk_of_slice(k, [&](const ParameterSlot& slot, std::size_t at, std::size_t global, std::size_t n) {
            if (shards > 1) sum_shards(slot, at, flat + global, n);
            else std::copy_n(slot.shard_grads[0] + at, n, flat + global);
        });
    });
    combine_(flat, total);
    pool_.run(threads_, [&](int k) {
        const StageRecording recording(k == 0 ? stage_times_ : nullptr);
        StageTimer timer(Stage::adam);
        for_each_chunk_of_slice(k, [&](const ParameterSlot& slot, std::size_t at, std::size_t global, std::size_t n) {
            adam_update_slice(step, flat + global, slot.value + at, slot.first_moment + at, slot.second_moment + at, n);
        });
    });
}

Tensor<float, 2> CpuBackend::capsule_lengths(const Tensor<float, 4>& images) {
    const std::size_t batch = images.shape(0);
    Tensor<float, 2> lengths = xt::zeros<float>({batch, std::size_t(digit_classes)});
    if (batch == 0) return lengths;
    const int shards = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads_), batch));
    pool_.run(shards, [&](int k) {
        Shard& shard = shards_[static_cast<std::size_t>(k)];
        const auto [first, last] = part_range(batch, shards, k);
        ForwardState<float>& state = shard.workspace.state;
        const Tensor<float, 4>& input = shards == 1 ? images : (copy_batch_images(images, first, last, shard.images), shard.images);
        model_forward(config_, params_, input, DecoderMask::none, {}, state);
        std::copy(state.lengths.begin(), state.lengths.end(), lengths.data() + first * digit_classes);
    });
    return lengths;
}

}  // namespace capsnet
