// The CUDA training backend (cuda_backend.hpp): shared/capsnet/model.cpp's model_forward, model_loss and
// model_backward, and adam.cpp's adam_update, op for op, as kernel launches on one stream.
//
// Memory: the parameters live in ONE flat device buffer, in visit_parameters order, each tensor starting
// on a 256-byte boundary (as a buffer of its own would); the gradients and both Adam moments are flat
// buffers with the same layout, so zeroing the gradients is one memset and Adam is one launch over all of
// them (the padding is zero in all four buffers and stays zero under Adam). Activations are sized for the
// largest batch seen so far, so the last short batch of an epoch or an evaluation batch reallocates nothing.
//
// Transfers: every copy is a cudaMemcpyAsync on the context's stream (the stream is non-blocking, so a
// plain cudaMemcpy on the legacy default stream would not be ordered with our kernels); per-step
// traffic goes through page-locked buffers. A training step synchronises exactly once, at its end,
// to read the two loss scalars and the predicted classes. The host mirrors of the parameters and Adam
// state are refreshed only when parameters() / adam_state() ask for them after a step.
#include "cuda_backend.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "capsule_kernels.hpp"
#include "cuda_check.hpp"
#include "device_buffer.hpp"
#include "gpu_context.hpp"
#include "layer_kernels.hpp"

namespace capsnet {

namespace {

using cuda::DeviceBuffer;
using cuda::GpuContext;

// Page-locked host memory, so the per-step copies are truly asynchronous DMA on the stream.
template <class T>
class PinnedBuffer {
public:
    PinnedBuffer() = default;
    ~PinnedBuffer() { release(); }
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;

    // Grows to at least `count` elements (contents undefined after growing). Only called while the
    // stream is idle: no copy can still be reading or writing the old memory.
    void reserve(std::size_t count) {
        if (count <= size_) return;
        release();
        CAPSNET_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&data_), count * sizeof(T)));
        size_ = count;
    }
    T* data() { return data_; }

private:
    void release() {
        if (data_) cudaFreeHost(data_);  // no check: also called from the destructor
        data_ = nullptr;
        size_ = 0;
    }
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

// Where each tensor starts in the flat buffers (in floats). The member names are Parameters' own, so
// visit_parameters walks a Parameters and its offsets side by side.
struct ParameterOffsets {
    std::size_t conv1_weight = 0, conv1_bias = 0, primary_weight = 0, primary_bias = 0, digit_weight = 0,
                digit_bias = 0, decoder0_weight = 0, decoder0_bias = 0, decoder1_weight = 0, decoder1_bias = 0,
                decoder2_weight = 0, decoder2_bias = 0;
};

constexpr std::size_t tensor_alignment = 64;  // floats: 256 bytes, cudaMalloc's own alignment

std::size_t align_up(std::size_t count) { return (count + tensor_alignment - 1) / tensor_alignment * tensor_alignment; }

// Fills `offsets` for the tensors of `shapes` and returns the flat buffers' length.
std::size_t layout_parameters(const Parameters<float>& shapes, ParameterOffsets& offsets) {
    std::size_t total = 0;
    visit_parameters(
        [&](const char*, const auto& tensor, std::size_t& offset) {
            offset = total;
            total += align_up(tensor.size());
        },
        shapes, offsets);
    return total;
}

// Per-sample sizes of the activations (the shapes of docs/model-contract.md).
constexpr std::size_t conv1_out_size = std::size_t(conv1_channels) * conv1_side * conv1_side;  // 256x20x20
constexpr std::size_t primary_out_size = std::size_t(primary_channels) * primary_grid;        // 256x6x6
constexpr std::size_t capsules_size = std::size_t(primary_capsules) * primary_dims;           // 1152x8
constexpr std::size_t u_hat_size = std::size_t(primary_capsules) * digit_classes * digit_dims; // 1152x10x16
constexpr std::size_t digit_size = std::size_t(digit_classes) * digit_dims;                   // 10x16
constexpr std::size_t max_batch = 4096;

class CudaBackend : public TrainingBackend {
public:
    CudaBackend(int device, bool tf32) : ctx_(device, tf32) {
        cudaDeviceProp props{};
        CAPSNET_CUDA_CHECK(cudaGetDeviceProperties(&props, device));
        description_ = "cuda:" + std::to_string(device) + " (" + props.name + (tf32 ? ", cuBLAS TF32)" : ", cuBLAS)");
    }

    std::string description() const override { return description_; }

    void load(const Config& config, const Parameters<float>& params, const AdamState<float>& adam) override;
    StepReport train_step(double learning_rate, const Tensor<float, 4>& images, const std::vector<int>& labels) override;
    Tensor<float, 2> capsule_lengths(const Tensor<float, 4>& images) override;

    const Config& config() const override { return config_; }
    const Parameters<float>& parameters() override;
    const AdamState<float>& adam_state() override;
    void combine_gradients_with(GradientCombiner combine) override { combine_ = std::move(combine); }

private:
    void select_device() const { CAPSNET_CUDA_CHECK(cudaSetDevice(ctx_.device())); }
    void require_loaded(const char* what) const {
        if (!loaded_) throw Error(std::string("cuda backend: ") + what + " before load()");
    }
    // Checks the batch's shape (and the labels, when given) the way the CPU core does; returns B.
    int check_batch(const Tensor<float, 4>& images, const std::vector<int>* labels) const;
    void reserve_batch(int batch);  // activations for `batch` samples; the stream must be idle
    void upload_batch(const Tensor<float, 4>& images, const std::vector<int>* labels, int batch);
    void forward(int batch, bool decoder);
    void backward(int batch);
    void download_flat(const DeviceBuffer<float>& flat, Parameters<float>& out);
    void combine_gradients();

    const float* param(std::size_t offset) const { return params_.data() + offset; }
    float* grad(std::size_t offset) { return grads_.data() + offset; }

    GpuContext ctx_;  // first member: destroyed last, after every buffer below is freed
    std::string description_;
    Config config_;
    bool loaded_ = false;

    // Flat parameter, gradient and Adam moment buffers, one layout (see the top of the file).
    ParameterOffsets offsets_;
    std::size_t flat_size_ = 0;
    // [offset, size) in floats of each tensor Adam updates: the whole buffer when every layer trains,
    // else the tensors of config.trainable's groups (frozen ones keep their values and moments).
    std::vector<std::pair<std::size_t, std::size_t>> adam_ranges_;
    DeviceBuffer<float> params_, grads_, first_moment_, second_moment_;
    std::int64_t adam_step_ = 0;

    // Host mirrors, refreshed on demand.
    Parameters<float> host_params_;
    AdamState<float> host_adam_;
    bool host_params_current_ = false, host_adam_current_ = false;
    std::vector<float> host_flat_;  // staging for the mirrors' transfers

    // Activations and their gradients, for `capacity_` samples.
    int capacity_ = 0;
    DeviceBuffer<float> images_, conv1_out_, primary_out_, primary_raw_, primary_capsules_, u_hat_, v_, lengths_,
        decoder_input_, hidden1_, hidden2_, reconstruction_;
    DeviceBuffer<float> reconstruction_grad_, hidden2_grad_, hidden1_grad_, decoder_input_grad_, v_grad_, u_hat_grad_,
        capsules_grad_, primary_out_grad_, conv1_out_grad_;
    DeviceBuffer<int> labels_, predicted_;
    DeviceBuffer<float> losses_;  // [margin, reconstruction]
    cuda::RoutingBuffers routing_;   // grow-only, like every buffer here
    DeviceBuffer<double> loss_partials_;  // the losses' per-block sums
    DeviceBuffer<float> conv1_columns_, primary_columns_;  // one per layer, so neither reallocates per call

    // Page-locked staging for the per-step transfers.
    PinnedBuffer<float> pinned_images_, pinned_lengths_, pinned_losses_;
    PinnedBuffer<int> pinned_labels_, pinned_predicted_;

    // A run over several processes: the flat gradient goes through host memory to the combiner.
    GradientCombiner combine_;
    PinnedBuffer<float> pinned_gradient_;
};

void CudaBackend::load(const Config& config, const Parameters<float>& params, const AdamState<float>& adam) {
    if (config.routing_iterations < 1) throw Error("cuda backend: routing_iterations must be at least 1");
    // Every tensor must have its preset's shape: the flat layout and the kernels' sizes come from it.
    const Parameters<float> shapes = parameters_zeros<float>(config);
    visit_parameters(
        [](const char* name, const auto& expected, const auto& p, const auto& m, const auto& v) {
            if (p.shape() != expected.shape() || m.shape() != expected.shape() || v.shape() != expected.shape())
                throw Error(std::string("cuda backend: ") + name + " (or its Adam moments) does not have the preset's shape");
        },
        shapes, params, adam.first_moment, adam.second_moment);

    select_device();
    ctx_.synchronize();  // nothing of an earlier model may still be running on these buffers
    loaded_ = false;     // until every buffer below holds the new state
    config_ = config;
    flat_size_ = layout_parameters(shapes, offsets_);
    adam_ranges_.clear();
    if (config.trainable.all()) {
        adam_ranges_.emplace_back(0, flat_size_);
    } else {
        visit_parameters(
            [&](const char* name, const auto& tensor, const std::size_t& offset) {
                if (config.trainable.trains(name)) adam_ranges_.emplace_back(offset, tensor.size());
            },
            shapes, offsets_);
    }
    params_.resize(flat_size_);
    grads_.resize(flat_size_);
    first_moment_.resize(flat_size_);
    second_moment_.resize(flat_size_);

    // The staging vector is zero-filled, so the padding between tensors is uploaded as zeros. (A stray
    // digit.bias handed in with the paper preset was refused by the shape check above.)
    auto upload_flat = [&](const Parameters<float>& source, DeviceBuffer<float>& flat) {
        host_flat_.assign(flat_size_, 0.0f);
        visit_parameters(
            [&](const char*, const auto&, const auto& tensor, const std::size_t& offset) {
                std::copy(tensor.begin(), tensor.end(), host_flat_.begin() + static_cast<std::ptrdiff_t>(offset));
            },
            shapes, source, offsets_);
        CAPSNET_CUDA_CHECK(cudaMemcpyAsync(flat.data(), host_flat_.data(), flat_size_ * sizeof(float),
                                           cudaMemcpyHostToDevice, ctx_.stream()));
        ctx_.synchronize();  // host_flat_ is reused for the next buffer
    };
    upload_flat(params, params_);
    upload_flat(adam.first_moment, first_moment_);
    upload_flat(adam.second_moment, second_moment_);
    grads_.zero(ctx_.stream());
    adam_step_ = adam.step;

    // The mirrors (download_flat writes values only) have the preset's shapes: checked above.
    host_params_ = params;
    host_adam_.first_moment = adam.first_moment;
    host_adam_.second_moment = adam.second_moment;
    host_adam_.step = adam.step;
    host_params_current_ = host_adam_current_ = true;
    loaded_ = true;
    ctx_.synchronize();
}

int CudaBackend::check_batch(const Tensor<float, 4>& images, const std::vector<int>* labels) const {
    const std::size_t batch = images.shape(0);
    if (images.shape(1) != 1 || images.shape(2) != std::size_t(image_side) || images.shape(3) != std::size_t(image_side))
        throw Error("cuda backend: images must be [batch, 1, 28, 28]");
    // Some kernels count a batch's elements in 32-bit ints (u_hat alone is 184320 floats a sample), and 4096
    // samples already take ~25 GB of activations: a larger batch is refused rather than overflowed.
    if (batch > max_batch)
        throw Error("cuda backend: a batch of " + std::to_string(batch) + " exceeds the " + std::to_string(max_batch) +
                    " samples one GPU step takes");
    if (labels) {
        if (batch == 0 || labels->size() != batch)
            throw Error("cuda backend: " + std::to_string(labels->size()) + " labels for a batch of " + std::to_string(batch));
        // The kernels index with the labels, so they are checked here (the core throws the same way).
        for (int label : *labels)
            if (label < 0 || label >= digit_classes) throw Error("cuda backend: label " + std::to_string(label) + " out of range");
    }
    return static_cast<int>(batch);
}

void CudaBackend::reserve_batch(int batch) {
    if (batch > capacity_) {
        const std::size_t n = static_cast<std::size_t>(batch);
        for (auto* buffer : {&images_, &reconstruction_, &reconstruction_grad_}) buffer->resize(n * image_pixels);
        for (auto* buffer : {&conv1_out_, &conv1_out_grad_}) buffer->resize(n * conv1_out_size);
        for (auto* buffer : {&primary_out_, &primary_out_grad_}) buffer->resize(n * primary_out_size);
        for (auto* buffer : {&primary_raw_, &primary_capsules_, &capsules_grad_}) buffer->resize(n * capsules_size);
        for (auto* buffer : {&u_hat_, &u_hat_grad_}) buffer->resize(n * u_hat_size);
        for (auto* buffer : {&v_, &v_grad_, &decoder_input_, &decoder_input_grad_}) buffer->resize(n * digit_size);
        lengths_.resize(n * digit_classes);
        for (auto* buffer : {&hidden1_, &hidden1_grad_}) buffer->resize(n * decoder_hidden1);
        for (auto* buffer : {&hidden2_, &hidden2_grad_}) buffer->resize(n * decoder_hidden2);
        labels_.resize(n);
        predicted_.resize(n);
        losses_.resize(2);
        pinned_images_.reserve(n * image_pixels);
        pinned_labels_.reserve(n);
        pinned_predicted_.reserve(n);
        pinned_lengths_.reserve(n * digit_classes);
        pinned_losses_.reserve(2);
        capacity_ = batch;
    }
    // The routing state ([iterations, batch, ...]) grows here too, while the stream is idle, so the
    // launchers' own grow-only reserve never has to drain a stream with queued kernels.
    const std::size_t per_iteration = static_cast<std::size_t>(config_.routing_iterations) * static_cast<std::size_t>(batch);
    routing_.coupling.reserve(per_iteration * primary_capsules * digit_classes, ctx_.stream());
    routing_.s.reserve(per_iteration * digit_size, ctx_.stream());
    routing_.v.reserve(per_iteration * digit_size, ctx_.stream());
}

void CudaBackend::upload_batch(const Tensor<float, 4>& images, const std::vector<int>* labels, int batch) {
    const std::size_t n = static_cast<std::size_t>(batch);
    // The pinned buffers are free: the previous call ended with a synchronisation.
    std::memcpy(pinned_images_.data(), images.data(), n * image_pixels * sizeof(float));
    CAPSNET_CUDA_CHECK(cudaMemcpyAsync(images_.data(), pinned_images_.data(), n * image_pixels * sizeof(float),
                                       cudaMemcpyHostToDevice, ctx_.stream()));
    if (labels) {
        std::copy(labels->begin(), labels->end(), pinned_labels_.data());
        CAPSNET_CUDA_CHECK(cudaMemcpyAsync(labels_.data(), pinned_labels_.data(), n * sizeof(int),
                                           cudaMemcpyHostToDevice, ctx_.stream()));
    }
}

// model_forward: conv1 + leaky ReLU, primary conv, primary capsules, predictions, routing, lengths, and
// with `decoder` the label-masked decoder (the training step's DecoderMask::labels).
void CudaBackend::forward(int batch, bool decoder) {
    const GpuContext& ctx = ctx_;
    const ParameterOffsets& o = offsets_;
    const int matrices = config_.shared_digit_weights ? primary_types : primary_capsules;
    const bool digit_bias = has_digit_bias(config_);
    const std::size_t n = static_cast<std::size_t>(batch);

    cuda::conv2d_forward(ctx, images_.data(), batch, 1, image_side, image_side, param(o.conv1_weight),
                         param(o.conv1_bias), conv1_channels, conv_kernel, 1, conv1_out_.data(), conv1_columns_);
    cuda::leaky_relu_forward(ctx, conv1_out_.data(), n * conv1_out_size, config_.conv1_leaky_slope);
    cuda::conv2d_forward(ctx, conv1_out_.data(), batch, conv1_channels, conv1_side, conv1_side, param(o.primary_weight),
                         param(o.primary_bias), primary_channels, conv_kernel, primary_stride, primary_out_.data(),
                         primary_columns_);
    cuda::primary_capsules_forward(ctx, primary_out_.data(), batch, primary_types, primary_dims, primary_grid,
                                   config_.squash_primary, primary_raw_.data(), primary_capsules_.data());
    cuda::predictions_forward(ctx, primary_capsules_.data(), batch, primary_capsules, primary_dims,
                              param(o.digit_weight), digit_bias ? param(o.digit_bias) : nullptr, matrices, digit_classes,
                              digit_dims, u_hat_.data());
    cuda::routing_forward(ctx, u_hat_.data(), batch, primary_capsules, digit_classes, digit_dims,
                          config_.routing_iterations, routing_, v_.data());
    cuda::capsule_lengths(ctx, v_.data(), batch, digit_classes, digit_dims, lengths_.data());
    if (!decoder) return;

    cuda::mask_capsules(ctx, v_.data(), labels_.data(), batch, digit_classes, digit_dims, decoder_input_.data());
    cuda::linear_forward(ctx, decoder_input_.data(), batch, decoder_input, param(o.decoder0_weight),
                         param(o.decoder0_bias), decoder_hidden1, hidden1_.data());
    cuda::leaky_relu_forward(ctx, hidden1_.data(), n * decoder_hidden1, 0.0f);
    cuda::linear_forward(ctx, hidden1_.data(), batch, decoder_hidden1, param(o.decoder1_weight), param(o.decoder1_bias),
                         decoder_hidden2, hidden2_.data());
    cuda::leaky_relu_forward(ctx, hidden2_.data(), n * decoder_hidden2, 0.0f);
    cuda::linear_forward(ctx, hidden2_.data(), batch, decoder_hidden2, param(o.decoder2_weight), param(o.decoder2_bias),
                         image_pixels, reconstruction_.data());
    cuda::sigmoid_forward(ctx, reconstruction_.data(), n * image_pixels);
}

// model_backward after the losses have written v_grad (margin) and reconstruction_grad (decoder): the
// decoder back to the mask, routing, predictions, primary capsules, the two convolutions. The weight and
// bias gradients accumulate into grads_, zeroed by the caller.
void CudaBackend::backward(int batch) {
    const GpuContext& ctx = ctx_;
    const ParameterOffsets& o = offsets_;
    const int matrices = config_.shared_digit_weights ? primary_types : primary_capsules;
    const bool digit_bias = has_digit_bias(config_);
    const std::size_t n = static_cast<std::size_t>(batch);

    if (config_.reconstruct) {
        cuda::sigmoid_backward(ctx, reconstruction_.data(), reconstruction_grad_.data(), n * image_pixels);
        cuda::linear_backward(ctx, hidden2_.data(), batch, decoder_hidden2, param(o.decoder2_weight), image_pixels,
                              reconstruction_grad_.data(), grad(o.decoder2_weight), grad(o.decoder2_bias),
                              hidden2_grad_.data());
        cuda::leaky_relu_backward(ctx, hidden2_.data(), hidden2_grad_.data(), n * decoder_hidden2, 0.0f);
        cuda::linear_backward(ctx, hidden1_.data(), batch, decoder_hidden1, param(o.decoder1_weight), decoder_hidden2,
                              hidden2_grad_.data(), grad(o.decoder1_weight), grad(o.decoder1_bias), hidden1_grad_.data());
        cuda::leaky_relu_backward(ctx, hidden1_.data(), hidden1_grad_.data(), n * decoder_hidden1, 0.0f);
        cuda::linear_backward(ctx, decoder_input_.data(), batch, decoder_input, param(o.decoder0_weight), decoder_hidden1,
                              hidden1_grad_.data(), grad(o.decoder0_weight), grad(o.decoder0_bias),
                              decoder_input_grad_.data());
        // The mask passes the gradient of the kept capsule only, added to the margin loss's.
        cuda::mask_capsules_backward(ctx, decoder_input_grad_.data(), labels_.data(), batch, digit_classes, digit_dims,
                                     v_grad_.data());
    }

    // Down only as far as the lowest trainable layer (config.trainable), as the core's model_backward; the
    // frozen groups' gradients computed on the way are never read (Adam skips them).
    const TrainableLayers& trains = config_.trainable;
    if (!(trains.conv1 || trains.primary || trains.digit)) return;
    cuda::routing_backward(ctx, u_hat_.data(), batch, primary_capsules, digit_classes, digit_dims,
                           config_.routing_iterations, routing_, v_grad_.data(), config_.routing_stop_gradient,
                           u_hat_grad_.data());
    cuda::predictions_backward(ctx, primary_capsules_.data(), batch, primary_capsules, primary_dims,
                               param(o.digit_weight), matrices, digit_classes, digit_dims, u_hat_grad_.data(),
                               grad(o.digit_weight), digit_bias ? grad(o.digit_bias) : nullptr, capsules_grad_.data());
    if (!(trains.conv1 || trains.primary)) return;
    cuda::primary_capsules_backward(ctx, primary_raw_.data(), batch, primary_types, primary_dims, primary_grid,
                                    config_.squash_primary, capsules_grad_.data(), primary_out_grad_.data());
    cuda::conv2d_backward(ctx, conv1_out_.data(), batch, conv1_channels, conv1_side, conv1_side, param(o.primary_weight),
                          primary_channels, conv_kernel, primary_stride, primary_out_grad_.data(),
                          grad(o.primary_weight), grad(o.primary_bias), trains.conv1 ? conv1_out_grad_.data() : nullptr,
                          primary_columns_);
    if (!trains.conv1) return;
    cuda::leaky_relu_backward(ctx, conv1_out_.data(), conv1_out_grad_.data(), n * conv1_out_size,
                              config_.conv1_leaky_slope);
    cuda::conv2d_backward(ctx, images_.data(), batch, 1, image_side, image_side, param(o.conv1_weight), conv1_channels,
                          conv_kernel, 1, conv1_out_grad_.data(), grad(o.conv1_weight), grad(o.conv1_bias), nullptr,
                          conv1_columns_);
}

StepReport CudaBackend::train_step(double learning_rate, const Tensor<float, 4>& images, const std::vector<int>& labels) {
    require_loaded("train_step");
    const int batch = check_batch(images, &labels);
    select_device();
    // From here on the device state moves on: the mirrors are stale even if a launch below throws.
    host_params_current_ = host_adam_current_ = false;
    reserve_batch(batch);
    upload_batch(images, &labels, batch);
    const cudaStream_t stream = ctx_.stream();

    forward(batch, config_.reconstruct);

    // model_loss, and the losses' gradients, which start the backward pass: margin_loss writes v_grad,
    // reconstruction_loss writes reconstruction_grad.
    CAPSNET_CUDA_CHECK(cudaMemsetAsync(losses_.data(), 0, 2 * sizeof(float), stream));
    cuda::margin_loss(ctx_, v_.data(), lengths_.data(), labels_.data(), batch, digit_classes, digit_dims,
                      config_.margin_positive, config_.margin_negative, config_.margin_lambda, losses_.data(),
                      v_grad_.data(), loss_partials_);
    if (config_.reconstruct)
        cuda::reconstruction_loss(ctx_, reconstruction_.data(), images_.data(), batch, image_pixels,
                                  config_.reconstruction_weight, losses_.data() + 1, reconstruction_grad_.data(),
                                  loss_partials_);
    cuda::predicted_classes(ctx_, lengths_.data(), batch, digit_classes, predicted_.data());

    grads_.zero(stream);
    backward(batch);
    if (combine_) combine_gradients();

    const std::int64_t step = adam_step_ + 1;  // adam.cpp increments before the update
    for (const auto& [offset, size] : adam_ranges_)
        cuda::adam_update(ctx_, params_.data() + offset, grads_.data() + offset, first_moment_.data() + offset,
                          second_moment_.data() + offset, size, static_cast<float>(learning_rate), config_.adam_beta1,
                          config_.adam_beta2, config_.adam_epsilon, step);

    CAPSNET_CUDA_CHECK(cudaMemcpyAsync(pinned_losses_.data(), losses_.data(), 2 * sizeof(float), cudaMemcpyDeviceToHost,
                                       stream));
    CAPSNET_CUDA_CHECK(cudaMemcpyAsync(pinned_predicted_.data(), predicted_.data(), std::size_t(batch) * sizeof(int),
                                       cudaMemcpyDeviceToHost, stream));
    ctx_.synchronize();  // the step's only synchronisation (a run over several processes adds combine_gradients')
    adam_step_ = step;

    StepReport report;
    report.margin_loss = pinned_losses_.data()[0];
    report.reconstruction_loss = pinned_losses_.data()[1];
    for (int b = 0; b < batch; ++b) report.correct += pinned_predicted_.data()[b] == labels[static_cast<std::size_t>(b)];
    return report;
}

// Through host buffers, which any MPI takes (a CUDA-aware one could read grads_ in place). The whole flat
// buffer travels, padding and frozen tensors too: one contiguous copy each way, and every process of the
// run has the same layout.
void CudaBackend::combine_gradients() {
    const cudaStream_t stream = ctx_.stream();
    ctx_.synchronize();  // the stream is idle: pinned_gradient_ may grow
    pinned_gradient_.reserve(flat_size_);
    CAPSNET_CUDA_CHECK(cudaMemcpyAsync(pinned_gradient_.data(), grads_.data(), flat_size_ * sizeof(float),
                                       cudaMemcpyDeviceToHost, stream));
    ctx_.synchronize();
    combine_(pinned_gradient_.data(), flat_size_);
    CAPSNET_CUDA_CHECK(cudaMemcpyAsync(grads_.data(), pinned_gradient_.data(), flat_size_ * sizeof(float),
                                       cudaMemcpyHostToDevice, stream));
}

Tensor<float, 2> CudaBackend::capsule_lengths(const Tensor<float, 4>& images) {
    require_loaded("capsule_lengths");
    const int batch = check_batch(images, nullptr);
    Tensor<float, 2> lengths = xt::zeros<float>({std::size_t(batch), std::size_t(digit_classes)});
    if (batch == 0) return lengths;
    select_device();
    reserve_batch(batch);
    upload_batch(images, nullptr, batch);
    forward(batch, false);
    const std::size_t count = std::size_t(batch) * digit_classes;
    CAPSNET_CUDA_CHECK(cudaMemcpyAsync(pinned_lengths_.data(), lengths_.data(), count * sizeof(float),
                                       cudaMemcpyDeviceToHost, ctx_.stream()));
    ctx_.synchronize();
    std::copy_n(pinned_lengths_.data(), count, lengths.data());
    return lengths;
}

void CudaBackend::download_flat(const DeviceBuffer<float>& flat, Parameters<float>& out) {
    host_flat_.resize(flat_size_);
    CAPSNET_CUDA_CHECK(cudaMemcpyAsync(host_flat_.data(), flat.data(), flat_size_ * sizeof(float),
                                       cudaMemcpyDeviceToHost, ctx_.stream()));
    ctx_.synchronize();
    // `out` already has the preset's shapes (load() copied them in), so only the values are written.
    visit_parameters(
        [&](const char*, auto& tensor, const std::size_t& offset) {
            std::copy_n(host_flat_.begin() + static_cast<std::ptrdiff_t>(offset), tensor.size(), tensor.begin());
        },
        out, offsets_);
}

const Parameters<float>& CudaBackend::parameters() {
    if (loaded_ && !host_params_current_) {
        select_device();
        download_flat(params_, host_params_);
        host_params_current_ = true;
    }
    return host_params_;
}

const AdamState<float>& CudaBackend::adam_state() {
    if (loaded_ && !host_adam_current_) {
        select_device();
        download_flat(first_moment_, host_adam_.first_moment);
        download_flat(second_moment_, host_adam_.second_moment);
        host_adam_.step = adam_step_;
        host_adam_current_ = true;
    }
    return host_adam_;
}

}  // namespace

std::unique_ptr<TrainingBackend> make_cuda_backend(int device, bool tf32) {
    return std::make_unique<CudaBackend>(device, tf32);
}

}  // namespace capsnet
