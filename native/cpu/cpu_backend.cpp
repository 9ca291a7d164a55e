// Data-parallel training on the CPU cores (see cpu_backend.hpp).
#include "cpu/cpu_backend.hpp"

#include <algorithm>
#include <exception>
#include <thread>

#include <cblas.h>

#include "capsnet/gemm.hpp"
#include "cpu/gemm_openblas.hpp"

namespace capsnet {

void run_in_parallel(int count, const std::function<void(int)>& job) {
    if (count <= 1) {
        job(0);
        return;
    }
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(count));
    std::vector<std::thread> workers;
    for (int k = 1; k < count; ++k)
        workers.emplace_back([&, k] {
            try {
                job(k);
            } catch (...) {
                errors[k] = std::current_exception();
            }
        });
    try {
        job(0);
    } catch (...) {
        errors[0] = std::current_exception();
    }
    for (auto& worker : workers) worker.join();
    for (const auto& error : errors)
        if (error) std::rethrow_exception(error);
}

namespace {

// [first, last) of shard k when `total` samples are split into `shards` nearly equal contiguous parts.
std::pair<std::size_t, std::size_t> shard_range(std::size_t total, int shards, int k) {
    const std::size_t n = static_cast<std::size_t>(shards);
    return {total * static_cast<std::size_t>(k) / n, total * static_cast<std::size_t>(k + 1) / n};
}

Tensor<float, 4> slice_batch(const Tensor<float, 4>& images, std::size_t first, std::size_t last) {
    const std::size_t per_image = images.size() / images.shape(0);
    Tensor<float, 4> shard = xt::zeros<float>({last - first, images.shape(1), images.shape(2), images.shape(3)});
    std::copy_n(images.data() + first * per_image, (last - first) * per_image, shard.data());
    return shard;
}

}  // namespace

CpuBackend::CpuBackend(int threads) : threads_(threads) {
    if (threads_ <= 0) threads_ = std::max(1u, std::thread::hardware_concurrency());
    gemm_use_openblas();
    // Our threads split the batch; OpenBLAS threads on top would only contend for the same cores (and
    // with one thread asked for, the user wants one core).
    openblas_set_num_threads(1);
    workspaces_.resize(static_cast<std::size_t>(threads_));
}

std::string CpuBackend::description() const {
    return "cpu (" + std::to_string(threads_) + (threads_ == 1 ? " thread" : " threads") + ", " + gemm_backend().name + " GEMM)";
}

void CpuBackend::load(const Config& config, const Parameters<float>& params, const AdamState<float>& adam) {
    config_ = config;
    params_ = params;
    adam_ = adam;
    summed_grads_ = parameters_zeros<float>(config_);
}

StepReport CpuBackend::train_step(double learning_rate, const Tensor<float, 4>& images, const std::vector<int>& labels) {
    const std::size_t batch = images.shape(0);
    if (batch == 0 || labels.size() != batch)
        throw Error("cpu backend: " + std::to_string(labels.size()) + " labels for a batch of " + std::to_string(batch));
    const int shards = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads_), batch));
    const DecoderMask mask = config_.reconstruct ? DecoderMask::labels : DecoderMask::none;
    std::vector<Losses<float>> losses(static_cast<std::size_t>(shards));
    std::vector<int> correct(static_cast<std::size_t>(shards), 0);

    run_in_parallel(shards, [&](int k) {
        const auto [first, last] = shard_range(batch, shards, k);
        TrainWorkspace<float>& ws = workspaces_[static_cast<std::size_t>(k)];
        const std::vector<int> shard_labels(labels.begin() + first, labels.begin() + last);
        const Tensor<float, 4> shard = shards == 1 ? images : slice_batch(images, first, last);
        model_forward(config_, params_, shard, mask, shard_labels, ws.state);
        losses[k] = model_loss(config_, ws.state, shard_labels);
        model_backward(config_, params_, ws.state, shard_labels, ws.grads);
        const std::vector<int> predicted = predicted_classes(ws.state.lengths);
        for (std::size_t i = 0; i < predicted.size(); ++i) correct[k] += predicted[i] == shard_labels[i];
    });

    // Each shard's gradient is of its own mean loss; the batch mean weights them by shard size. Summed
    // in shard order (never in completion order), so the result does not depend on thread timing.
    StepReport report;
    const Parameters<float>* grads = &workspaces_[0].grads;
    if (shards > 1) {
        for (int k = 0; k < shards; ++k) {
            const auto [first, last] = shard_range(batch, shards, k);
            const float weight = static_cast<float>(last - first) / static_cast<float>(batch);
            visit_parameters(
                [&](const char*, auto& sum, const auto& part) {
                    if (k == 0) sum = weight * part;
                    else sum += weight * part;
                },
                summed_grads_, workspaces_[static_cast<std::size_t>(k)].grads);
        }
        grads = &summed_grads_;
    }
    for (int k = 0; k < shards; ++k) {
        const auto [first, last] = shard_range(batch, shards, k);
        const double weight = double(last - first) / double(batch);
        report.margin_loss += weight * losses[k].margin;
        report.reconstruction_loss += weight * losses[k].reconstruction;
        report.correct += correct[k];
    }
    adam_update(config_, learning_rate, *grads, params_, adam_);
    return report;
}

Tensor<float, 2> CpuBackend::capsule_lengths(const Tensor<float, 4>& images) {
    const std::size_t batch = images.shape(0);
    Tensor<float, 2> lengths = xt::zeros<float>({batch, std::size_t(digit_classes)});
    if (batch == 0) return lengths;
    const int shards = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads_), batch));
    run_in_parallel(shards, [&](int k) {
        const auto [first, last] = shard_range(batch, shards, k);
        ForwardState<float>& state = workspaces_[static_cast<std::size_t>(k)].state;
        model_forward(config_, params_, shards == 1 ? images : slice_batch(images, first, last), DecoderMask::none, {}, state);
        std::copy(state.lengths.begin(), state.lengths.end(), lengths.data() + first * digit_classes);
    });
    return lengths;
}

}  // namespace capsnet
