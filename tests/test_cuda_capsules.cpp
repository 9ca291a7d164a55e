// The CUDA capsule kernels (native/cuda/capsule_kernels.cu) against the CPU core on random inputs of both
// presets' shapes: seed (shared W [32,10,16,8] + bias, primary capsules not squashed) and paper (W
// [1152,10,16,8], no bias, squashed). Every op also runs twice on the same data and must give the same
// bits, and weight/bias gradients must accumulate into what the buffers held.
//
// Tolerances are relative error norms over a whole tensor (tests/cuda_compare.hpp). Float rounding of a
// correct kernel stays near 1e-7 per op; a wrong index or a dropped term gives errors of order 1e-3 to 1.
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include <catch2/catch.hpp>

#include "capsnet/capsules.hpp"
#include "capsnet/config.hpp"
#include "capsnet/losses.hpp"
#include "capsnet/model.hpp"
#include "capsnet/random.hpp"
#include "capsnet/routing.hpp"
#include "capsule_kernels.hpp"
#include "cuda_compare.hpp"

using namespace capsnet;
using capsnet::cuda::DeviceBuffer;
using capsnet::cuda::GpuContext;
using capsnet_test::relative_error_norm;

namespace {

struct PresetShape {
    const char* name;
    std::size_t batch;
    bool squash;           // primary capsules squashed
    std::size_t matrices;  // digit W matrices: one per type (shared over the grid) or one per capsule
    bool bias;             // digit bias [matrices, 10, 16]
};
const PresetShape presets[] = {{"seed", 3, false, primary_types, true},
                               {"paper", 4, true, primary_capsules, false}};

constexpr std::size_t I = primary_capsules, J = digit_classes, D = digit_dims, K = primary_dims;

template <std::size_t N>
Tensor<float, N> random_tensor(const std::array<std::size_t, N>& shape, Rng& rng, double low, double high) {
    Tensor<float, N> t(shape);
    for (auto& x : t) x = static_cast<float>(rng.uniform(low, high));
    return t;
}

template <class T>
DeviceBuffer<T> to_device(const T* data, std::size_t count) {
    DeviceBuffer<T> buffer;
    buffer.upload(data, count);
    return buffer;
}
template <class E>
DeviceBuffer<typename E::value_type> to_device(const E& host) {
    return to_device(host.data(), host.size());
}

// A pageable cudaMemcpy to the device may still be in flight when it returns, and the context's
// non-blocking stream does not wait for it: wait for the whole device before enqueuing kernels.
void uploads_done() { CAPSNET_CUDA_CHECK(cudaDeviceSynchronize()); }

template <class T>
std::vector<T> download(const GpuContext& ctx, const DeviceBuffer<T>& buffer) {
    ctx.synchronize();
    return buffer.to_host();
}

template <class E>
double error(const std::vector<float>& gpu, const E& cpu) {
    REQUIRE(gpu.size() == cpu.size());
    return relative_error_norm(gpu, cpu.data());
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

}  // namespace

TEST_CASE("cuda primary capsules match the core", "[cuda][capsules]") {
    GpuContext ctx;
    for (const PresetShape& preset : presets) {
        DYNAMIC_SECTION(preset.name) {
            Rng rng(101);
            const std::size_t B = preset.batch, count = B * I * K;
            const Tensor<float, 4> conv_out =
                random_tensor<4>({B, primary_channels, primary_side, primary_side}, rng, -0.5, 0.5);
            Tensor<float, 3> raw, capsules;
            primary_capsules_forward(conv_out, primary_dims, preset.squash, raw, capsules);
            const Tensor<float, 3> capsules_grad = random_tensor<3>({B, I, K}, rng, -1, 1);
            Tensor<float, 4> conv_out_grad;
            primary_capsules_backward(raw, preset.squash, capsules_grad, conv_out_grad, primary_channels, primary_side,
                                      primary_side);

            DeviceBuffer<float> d_conv_out = to_device(conv_out), d_capsules_grad = to_device(capsules_grad);
            DeviceBuffer<float> d_raw(count), d_capsules(count), d_conv_out_grad(conv_out.size());
            uploads_done();
            std::vector<float> first_raw, first_capsules, first_conv_out_grad;
            for (int run = 0; run < 2; ++run) {
                cuda::primary_capsules_forward(ctx, d_conv_out.data(), int(B), primary_types, primary_dims,
                                               primary_grid, preset.squash, d_raw.data(), d_capsules.data());
                cuda::primary_capsules_backward(ctx, d_raw.data(), int(B), primary_types, primary_dims, primary_grid,
                                                preset.squash, d_capsules_grad.data(), d_conv_out_grad.data());
                const std::vector<float> gpu_raw = download(ctx, d_raw), gpu_capsules = download(ctx, d_capsules),
                                         gpu_conv_out_grad = download(ctx, d_conv_out_grad);
                if (run == 0) {
                    // Regrouping is a copy: exact. The squash and its backward are a handful of float operations
                    // per 8-D vector in the core's order (FMA contraction and sqrt rounding at most): 1e-6.
                    CHECK(error(gpu_raw, raw) == 0);
                    CHECK(error(gpu_capsules, capsules) <= (preset.squash ? 1e-6 : 0.0));
                    CHECK(error(gpu_conv_out_grad, conv_out_grad) <= (preset.squash ? 1e-6 : 0.0));
                    first_raw = gpu_raw;
                    first_capsules = gpu_capsules;
                    first_conv_out_grad = gpu_conv_out_grad;
                } else {
                    REQUIRE(same_bits(gpu_raw, first_raw));
                    REQUIRE(same_bits(gpu_capsules, first_capsules));
                    REQUIRE(same_bits(gpu_conv_out_grad, first_conv_out_grad));
                }
            }
        }
    }
}

TEST_CASE("cuda predictions match the core, gradients accumulate", "[cuda][capsules]") {
    GpuContext ctx;
    for (const PresetShape& preset : presets) {
        DYNAMIC_SECTION(preset.name) {
            Rng rng(102);
            const std::size_t B = preset.batch, M = preset.matrices;
            const Tensor<float, 3> capsules = random_tensor<3>({B, I, K}, rng, -0.5, 0.5);
            const Tensor<float, 4> weight = random_tensor<4>({M, J, D, K}, rng, -0.05, 0.05);
            const Tensor<float, 3> bias = preset.bias ? random_tensor<3>({M, J, D}, rng, -0.05, 0.05)
                                                      : Tensor<float, 3>({0, 0, 0});
            const Tensor<float, 4> u_hat_grad = random_tensor<4>({B, I, J, D}, rng, -1, 1);
            // What the gradient buffers hold before the call, of the size of one call's contribution.
            const Tensor<float, 4> weight_prefill = random_tensor<4>({M, J, D, K}, rng, -1, 1);
            const Tensor<float, 3> bias_prefill = random_tensor<3>(bias.shape(), rng, -1, 1);

            Tensor<float, 4> u_hat;
            predictions_forward(capsules, weight, bias, u_hat);
            Tensor<float, 4> weight_grad = xt::zeros<float>(weight.shape()), weight_grad_acc = weight_prefill;
            Tensor<float, 3> bias_grad = xt::zeros<float>(bias.shape()), bias_grad_acc = bias_prefill;
            Tensor<float, 3> capsules_grad, capsules_grad_acc;
            predictions_backward(capsules, weight, u_hat_grad, weight_grad, bias_grad, capsules_grad);
            predictions_backward(capsules, weight, u_hat_grad, weight_grad_acc, bias_grad_acc, capsules_grad_acc);

            DeviceBuffer<float> d_capsules = to_device(capsules), d_weight = to_device(weight),
                                d_bias = to_device(bias), d_u_hat_grad = to_device(u_hat_grad);
            DeviceBuffer<float> d_u_hat(u_hat.size()), d_capsules_grad(capsules.size());
            DeviceBuffer<float> d_weight_grad(weight.size()), d_bias_grad(bias.size());
            const std::vector<float> weight_zeros(weight.size(), 0.f), bias_zeros(bias.size(), 0.f);
            uploads_done();
            float* bias_grad_ptr = preset.bias ? d_bias_grad.data() : nullptr;
            auto backward = [&] {
                cuda::predictions_backward(ctx, d_capsules.data(), int(B), int(I), int(K), d_weight.data(), int(M),
                                           int(J), int(D), d_u_hat_grad.data(), d_weight_grad.data(), bias_grad_ptr,
                                           d_capsules_grad.data());
            };

            std::vector<float> first_u_hat, first_weight_grad, first_bias_grad, first_capsules_grad;
            for (int run = 0; run < 2; ++run) {
                d_weight_grad.upload(weight_zeros);
                d_bias_grad.upload(bias_zeros);
                uploads_done();
                cuda::predictions_forward(ctx, d_capsules.data(), int(B), int(I), int(K), d_weight.data(),
                                          preset.bias ? d_bias.data() : nullptr, int(M), int(J), int(D),
                                          d_u_hat.data());
                backward();
                const std::vector<float> gpu_u_hat = download(ctx, d_u_hat),
                                         gpu_weight_grad = download(ctx, d_weight_grad),
                                         gpu_bias_grad = download(ctx, d_bias_grad),
                                         gpu_capsules_grad = download(ctx, d_capsules_grad);
                if (run == 0) {
                    // u_hat: 8-term dot products (+ bias), summed in another order than the core's GEMM: 1e-6.
                    CHECK(error(gpu_u_hat, u_hat) <= 1e-6);
                    // Sums of 160 terms (capsules) and of batch x 36 or batch terms (weights), in another
                    // order than the core's: a few 1e-7, so 1e-5.
                    CHECK(error(gpu_capsules_grad, capsules_grad) <= 1e-5);
                    CHECK(error(gpu_weight_grad, weight_grad) <= 1e-5);
                    if (preset.bias) CHECK(error(gpu_bias_grad, bias_grad) <= 1e-5);
                    first_u_hat = gpu_u_hat;
                    first_weight_grad = gpu_weight_grad;
                    first_bias_grad = gpu_bias_grad;
                    first_capsules_grad = gpu_capsules_grad;
                } else {
                    REQUIRE(same_bits(gpu_u_hat, first_u_hat));
                    REQUIRE(same_bits(gpu_weight_grad, first_weight_grad));
                    REQUIRE(same_bits(gpu_bias_grad, first_bias_grad));
                    REQUIRE(same_bits(gpu_capsules_grad, first_capsules_grad));
                }
            }

            // Accumulation: weight and bias gradients add to the buffers (the capsules' gradient is written).
            d_weight_grad.upload(weight_prefill.data(), weight_prefill.size());
            d_bias_grad.upload(bias_prefill.data(), bias_prefill.size());
            d_capsules_grad.upload(std::vector<float>(capsules.size(), 7.f));
            uploads_done();
            backward();
            // Same sums as above, each plus one addend of the same size: 1e-5.
            CHECK(error(download(ctx, d_weight_grad), weight_grad_acc) <= 1e-5);
            if (preset.bias) CHECK(error(download(ctx, d_bias_grad), bias_grad_acc) <= 1e-5);
            CHECK(error(download(ctx, d_capsules_grad), capsules_grad_acc) <= 1e-5);
        }
    }
}

TEST_CASE("cuda routing forward and backward match the core", "[cuda][routing]") {
    GpuContext ctx;
    for (const PresetShape& preset : presets) {
        for (int iterations : {1, 3, 5}) {
            DYNAMIC_SECTION(preset.name << ", " << iterations << " iterations") {
                Rng rng(103 + iterations);
                const std::size_t B = preset.batch, R = iterations;
                // Like real predictions: |s| stays near 1, so the squash is not saturated.
                const Tensor<float, 4> u_hat = random_tensor<4>({B, I, J, D}, rng, -0.1, 0.1);
                const Tensor<float, 3> v_grad = random_tensor<3>({B, J, D}, rng, -1, 1);
                RoutingState<float> state;
                Tensor<float, 3> v;
                routing_forward(u_hat, iterations, state, v);

                DeviceBuffer<float> d_u_hat = to_device(u_hat), d_v_grad = to_device(v_grad);
                DeviceBuffer<float> d_v(v.size()), d_u_hat_grad(u_hat.size());
                uploads_done();
                cuda::RoutingBuffers buffers;
                std::vector<float> first_v, first_coupling, first_s, first_state_v;
                for (int run = 0; run < 2; ++run) {
                    cuda::routing_forward(ctx, d_u_hat.data(), int(B), int(I), int(J), int(D), iterations, buffers,
                                          d_v.data());
                    const std::vector<float> gpu_v = download(ctx, d_v), gpu_coupling = download(ctx, buffers.coupling),
                                             gpu_s = download(ctx, buffers.s), gpu_state_v = download(ctx, buffers.v);
                    if (run == 0) {
                        // s sums 1152 terms per (b, j) in a tree instead of in order; later iterations see
                        // couplings computed from those sums: a few 1e-7, so 1e-5.
                        CHECK(error(gpu_v, v) <= 1e-5);
                        CHECK(error(gpu_coupling, state.coupling) <= 1e-5);
                        CHECK(error(gpu_s, state.s) <= 1e-5);
                        CHECK(error(gpu_state_v, state.v) <= 1e-5);
                        first_v = gpu_v;
                        first_coupling = gpu_coupling;
                        first_s = gpu_s;
                        first_state_v = gpu_state_v;
                    } else {
                        REQUIRE(same_bits(gpu_v, first_v));
                        REQUIRE(same_bits(gpu_coupling, first_coupling));
                        REQUIRE(same_bits(gpu_s, first_s));
                        REQUIRE(same_bits(gpu_state_v, first_state_v));
                    }
                }
                // The routing invariants on the GPU's own output: couplings are a distribution over the
                // classes for every (iteration, b, i); output capsules are shorter than 1.
                double worst_sum = 0;
                for (std::size_t row = 0; row < R * B * I; ++row) {
                    double sum = 0;
                    for (std::size_t j = 0; j < J; ++j) sum += first_coupling[row * J + j];
                    worst_sum = std::max(worst_sum, std::abs(sum - 1));
                }
                CHECK(worst_sum <= 1e-5);
                for (std::size_t n = 0; n < B * J; ++n) {
                    double norm2 = 0;
                    for (std::size_t d = 0; d < D; ++d) norm2 += double(first_v[n * D + d]) * first_v[n * D + d];
                    CHECK(std::sqrt(norm2) < 1.0);
                }

                Tensor<float, 4> exact_grad;
                routing_backward(u_hat, state, v_grad, false, exact_grad);
                for (bool stop_gradient : {false, true}) {
                    DYNAMIC_SECTION("stop_gradient " << stop_gradient) {
                        Tensor<float, 4> u_hat_grad;
                        routing_backward(u_hat, state, v_grad, stop_gradient, u_hat_grad);
                        // Tree sums over the 1152 inputs (dL/dv through each agreement) on top of the forward's
                        // own rounding, through up to 5 iterations: a few 1e-7, so 1e-5.
                        const double tolerance = 1e-5;
                        if (iterations > 1 && !stop_gradient) {
                            // The gradient through the couplings (about 30% of it here) must be far above the
                            // tolerance, or a broken path through the softmax and agreements would pass.
                            Tensor<float, 4> stopped;
                            routing_backward(u_hat, state, v_grad, true, stopped);
                            CHECK(relative_error_norm(stopped.data(), exact_grad.data(), stopped.size()) >=
                                  1000 * tolerance);
                        }
                        d_u_hat_grad.upload(std::vector<float>(u_hat.size(), 7.f));  // must be overwritten
                        uploads_done();
                        std::vector<float> first_grad;
                        for (int run = 0; run < 2; ++run) {
                            cuda::routing_backward(ctx, d_u_hat.data(), int(B), int(I), int(J), int(D), iterations,
                                                   buffers, d_v_grad.data(), stop_gradient, d_u_hat_grad.data());
                            const std::vector<float> gpu_grad = download(ctx, d_u_hat_grad);
                            if (run == 0) {
                                CHECK(error(gpu_grad, u_hat_grad) <= tolerance);
                                first_grad = gpu_grad;
                            } else {
                                REQUIRE(same_bits(gpu_grad, first_grad));
                            }
                        }
                    }
                }
            }
        }
    }
}

TEST_CASE("cuda lengths, margin loss, predicted classes and masking match the core", "[cuda][losses]") {
    GpuContext ctx;
    for (const PresetShape& preset : presets) {
        DYNAMIC_SECTION(preset.name) {
            Rng rng(104);
            const std::size_t B = preset.batch;
            // Capsules of lengths from 0 to about 1.2, so both margins are crossed both ways.
            Tensor<float, 3> v = random_tensor<3>({B, J, D}, rng, -1, 1);
            for (std::size_t n = 0; n < B * J; ++n) {
                const float scale = static_cast<float>(rng.uniform(0, 0.3));
                for (std::size_t d = 0; d < D; ++d) v.data()[n * D + d] *= scale;
            }
            std::vector<int> labels(B);
            for (auto& label : labels) label = static_cast<int>(rng.below(J));
            // A zero capsule of the true class: |v| = 0 where the loss has a slope (the core's guard).
            labels[0] = 3;
            for (std::size_t d = 0; d < D; ++d) v(0, 3, d) = 0.f;
            const Config config;

            Tensor<float, 2> lengths;
            capsule_lengths(v, lengths);
            // A tie for the longest capsule: the first one wins, as std::max_element.
            lengths(1, 7) = lengths(1, 2) = 2.f;
            const float cpu_loss = margin_loss_forward(lengths, labels, config);
            Tensor<float, 3> v_grad;
            margin_loss_backward(v, lengths, labels, config, v_grad);
            const std::vector<int> cpu_predicted = predicted_classes(lengths);
            REQUIRE(cpu_predicted[1] == 2);

            DeviceBuffer<float> d_v = to_device(v), d_lengths(B * J), d_tied_lengths = to_device(lengths);
            DeviceBuffer<int> d_labels = to_device(labels.data(), labels.size()), d_predicted(B);
            DeviceBuffer<float> d_loss(1), d_v_grad(v.size());
            DeviceBuffer<double> partials;
            const float start = 0.25f;  // margin_loss adds to the scalar
            uploads_done();
            std::vector<float> first_lengths, first_loss, first_v_grad;
            std::vector<int> first_predicted;
            for (int run = 0; run < 2; ++run) {
                d_loss.upload(&start, 1);
                d_v_grad.upload(std::vector<float>(v.size(), 7.f));  // must be overwritten
                uploads_done();
                cuda::capsule_lengths(ctx, d_v.data(), int(B), int(J), int(D), d_lengths.data());
                // The loss and the predictions read the core's lengths (with the tie), so each op is checked alone.
                cuda::margin_loss(ctx, d_v.data(), d_tied_lengths.data(), d_labels.data(), int(B), int(J), int(D),
                                  config.margin_positive, config.margin_negative, config.margin_lambda, d_loss.data(),
                                  d_v_grad.data(), partials);
                cuda::predicted_classes(ctx, d_tied_lengths.data(), int(B), int(J), d_predicted.data());
                const std::vector<float> gpu_lengths = download(ctx, d_lengths), gpu_loss = download(ctx, d_loss),
                                         gpu_v_grad = download(ctx, d_v_grad);
                const std::vector<int> gpu_predicted = download(ctx, d_predicted);
                if (run == 0) {
                    Tensor<float, 2> cpu_lengths;
                    capsule_lengths(v, cpu_lengths);
                    // 16-term sums of squares and a sqrt: rounding only, 1e-6.
                    CHECK(error(gpu_lengths, cpu_lengths) <= 1e-6);
                    // The loss is summed in double on both sides (another order here): one float rounding, 1e-6.
                    CHECK(gpu_loss[0] == Approx(start + cpu_loss).epsilon(1e-6));
                    // The same float expressions per entry: 1e-6.
                    CHECK(error(gpu_v_grad, v_grad) <= 1e-6);
                    CHECK(gpu_predicted == cpu_predicted);
                    first_lengths = gpu_lengths;
                    first_loss = gpu_loss;
                    first_v_grad = gpu_v_grad;
                    first_predicted = gpu_predicted;
                } else {
                    REQUIRE(same_bits(gpu_lengths, first_lengths));
                    REQUIRE(same_bits(gpu_loss, first_loss));
                    REQUIRE(same_bits(gpu_v_grad, first_v_grad));
                    REQUIRE(gpu_predicted == first_predicted);
                }
            }

            // Masking, written out as model_forward / model_backward do it: copies and one addition each, exact.
            Tensor<float, 2> decoder_input = xt::zeros<float>({B, J * D});
            for (std::size_t b = 0; b < B; ++b)
                for (std::size_t d = 0; d < D; ++d) decoder_input(b, labels[b] * D + d) = v(b, labels[b], d);
            const Tensor<float, 2> decoder_input_grad = random_tensor<2>({B, J * D}, rng, -1, 1);
            const Tensor<float, 3> v_grad_prefill = random_tensor<3>({B, J, D}, rng, -1, 1);
            Tensor<float, 3> v_grad_masked = v_grad_prefill;
            for (std::size_t b = 0; b < B; ++b)
                for (std::size_t d = 0; d < D; ++d)
                    v_grad_masked(b, labels[b], d) += decoder_input_grad(b, labels[b] * D + d);

            DeviceBuffer<float> d_decoder_input(B * J * D), d_decoder_input_grad = to_device(decoder_input_grad);
            std::vector<float> first_decoder_input, first_masked;
            for (int run = 0; run < 2; ++run) {
                d_decoder_input.upload(std::vector<float>(B * J * D, 7.f));  // must be overwritten
                d_v_grad.upload(v_grad_prefill.data(), v_grad_prefill.size());
                uploads_done();
                cuda::mask_capsules(ctx, d_v.data(), d_labels.data(), int(B), int(J), int(D), d_decoder_input.data());
                cuda::mask_capsules_backward(ctx, d_decoder_input_grad.data(), d_labels.data(), int(B), int(J), int(D),
                                             d_v_grad.data());
                const std::vector<float> gpu_decoder_input = download(ctx, d_decoder_input),
                                         gpu_masked = download(ctx, d_v_grad);
                if (run == 0) {
                    CHECK(error(gpu_decoder_input, decoder_input) == 0);
                    CHECK(error(gpu_masked, v_grad_masked) == 0);
                    first_decoder_input = gpu_decoder_input;
                    first_masked = gpu_masked;
                } else {
                    REQUIRE(same_bits(gpu_decoder_input, first_decoder_input));
                    REQUIRE(same_bits(gpu_masked, first_masked));
                }
            }
        }
    }
}

TEST_CASE("cuda margin loss over several reduction blocks matches the core", "[cuda][losses]") {
    GpuContext ctx;
    // 5000 samples: three blocks of the first pass (2048 samples each), then the one-block second pass.
    const std::size_t B = 5000;
    Rng rng(106);
    Tensor<float, 3> v = random_tensor<3>({B, J, D}, rng, -0.3, 0.3);
    std::vector<int> labels(B);
    for (auto& label : labels) label = static_cast<int>(rng.below(J));
    const Config config;
    Tensor<float, 2> lengths;
    capsule_lengths(v, lengths);
    const float cpu_loss = margin_loss_forward(lengths, labels, config);
    Tensor<float, 3> v_grad;
    margin_loss_backward(v, lengths, labels, config, v_grad);

    DeviceBuffer<float> d_v = to_device(v), d_lengths = to_device(lengths), d_v_grad(v.size());
    DeviceBuffer<int> d_labels = to_device(labels.data(), labels.size());
    DeviceBuffer<double> partials;
    std::vector<float> first_loss;
    for (int run = 0; run < 2; ++run) {
        const float start = 0.25f;
        DeviceBuffer<float> d_loss(1);
        d_loss.upload(&start, 1);
        uploads_done();
        cuda::margin_loss(ctx, d_v.data(), d_lengths.data(), d_labels.data(), int(B), int(J), int(D),
                          config.margin_positive, config.margin_negative, config.margin_lambda, d_loss.data(),
                          d_v_grad.data(), partials);
        const std::vector<float> gpu_loss = download(ctx, d_loss), gpu_v_grad = download(ctx, d_v_grad);
        // As above: double sums in another order, one float rounding; the gradient the same expressions.
        CHECK(gpu_loss[0] == Approx(start + cpu_loss).epsilon(1e-6));
        CHECK(error(gpu_v_grad, v_grad) <= 1e-6);
        if (run == 0) first_loss = gpu_loss;
        else REQUIRE(same_bits(gpu_loss, first_loss));
    }
}
