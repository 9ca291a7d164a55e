// Data-parallel training over processes (see data_parallel_backend.hpp).
#include "distributed/data_parallel_backend.hpp"

#include <algorithm>

#include "backend/shards.hpp"

namespace capsnet {

DataParallelBackend::DataParallelBackend(std::unique_ptr<TrainingBackend> local, Communicator& world)
    : local_(std::move(local)), world_(world) {}

std::string DataParallelBackend::description() const {
    return world_.description() + ", each on " + local_->description();
}

void DataParallelBackend::load(const Config& config, const Parameters<float>& params, const AdamState<float>& adam) {
    local_->load(config, params, adam);
    local_->combine_gradients_with([this](float* gradient, std::size_t count) { world_.weighted_sum(gradient, count, share_weight_); });
}

StepReport DataParallelBackend::train_step(double learning_rate, const Tensor<float, 4>& images, const std::vector<int>& labels) {
    const std::size_t batch = images.shape(0);
    const int ranks = world_.ranks();
    if (batch < static_cast<std::size_t>(ranks) || labels.size() != batch)
        throw Error("data-parallel training: a batch of " + std::to_string(batch) + " images (" + std::to_string(labels.size()) +
                    " labels) cannot give each of the " + std::to_string(ranks) + " processes a share");
    const auto [first, last] = part_range(batch, ranks, world_.rank());
    share_weight_ = shard_weight(last - first, batch);
    copy_batch_images(images, first, last, share_images_);
    share_labels_.assign(labels.begin() + static_cast<std::ptrdiff_t>(first), labels.begin() + static_cast<std::ptrdiff_t>(last));
    const StepReport mine = local_->train_step(learning_rate, share_images_, share_labels_);

    // The batch's report from the shares', weighted like the CPU backend's threads (in rank order).
    const double values[3] = {mine.margin_loss, mine.reconstruction_loss, static_cast<double>(mine.correct)};
    const std::vector<double> all = world_.gather(values, 3);
    StepReport report;
    for (int r = 0; r < ranks; ++r) {
        const auto [rank_first, rank_last] = part_range(batch, ranks, r);
        const double weight = double(rank_last - rank_first) / double(batch);
        report.margin_loss += weight * all[3 * r];
        report.reconstruction_loss += weight * all[3 * r + 1];
        report.correct += static_cast<int>(all[3 * r + 2]);
    }
    return report;
}

Tensor<float, 2> DataParallelBackend::capsule_lengths(const Tensor<float, 4>& images) {
    const std::size_t batch = images.shape(0);
    Tensor<float, 2> lengths = xt::zeros<float>({batch, std::size_t(digit_classes)});
    const auto [first, last] = part_range(batch, world_.ranks(), world_.rank());
    if (last > first) {  // a small last batch may leave a rank nothing to score; it still shares
        copy_batch_images(images, first, last, share_images_);
        const Tensor<float, 2> mine = local_->capsule_lengths(share_images_);
        std::copy(mine.begin(), mine.end(), lengths.data() + first * digit_classes);
    }
    world_.share_rows(lengths.data(), batch, digit_classes);
    return lengths;
}

void DataParallelBackend::combine_gradients_with(GradientCombiner) {
    throw Error("data-parallel training: the backend of a run over processes cannot be nested in another");
}

}  // namespace capsnet
