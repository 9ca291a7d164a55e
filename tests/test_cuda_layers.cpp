// The kernels of native/cuda/layer_kernels.hpp against the CPU core, on random inputs at the model's
// real shapes (plus small non-square ones, which catch height/width mix-ups the square model hides).
//
// Ground truth: GEMM-based ops (conv2d, linear) are compared with the core run in double on the same
// float data, so the tolerance measures the GPU's float rounding alone. For a sum of k random-sign terms
// accumulated in float, the rounding errors of the partial sums add up like a random walk, giving a
// relative error of about 2^-24 * sqrt(k / 6) (3.5e-6 for the primary capsules' k = 20736); the tolerance
// is 2 * 2^-24 * sqrt(k), about 5x that, and never below 1e-6. A wrong index or a missing term gives errors
// of order 1e-2 to 1. Element-wise ops, the reconstruction loss and Adam are compared with the core in
// float: the GPU evaluates the same float expressions, so they agree to an ulp or two (tolerance 1e-6).
//
// Every GPU op also runs twice on the same inputs and must give identical bits: no kernel may depend on
// timing (a moving error between runs is a bug).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "capsnet/adam.hpp"
#include "capsnet/config.hpp"
#include "capsnet/layers.hpp"
#include "capsnet/losses.hpp"
#include "capsnet/parameters.hpp"
#include "capsnet/random.hpp"
#include "cuda_compare.hpp"
#include "layer_kernels.hpp"

using namespace capsnet;
using capsnet::cuda::DeviceBuffer;
using capsnet::cuda::GpuContext;
using capsnet_test::relative_error_norm;

namespace {

GpuContext& context() {
    static GpuContext ctx;
    return ctx;
}

// The tolerance for a float sum of `terms` products (see the top of the file).
double sum_tolerance(std::size_t terms) {
    return std::max(1e-6, 2.0 * std::ldexp(1.0, -24) * std::sqrt(static_cast<double>(terms)));
}
constexpr double elementwise_tolerance = 1e-6;  // same float expressions on both sides: an ulp or two

std::vector<float> random_floats(std::size_t count, Rng& rng, double low = -1, double high = 1) {
    std::vector<float> values(count);
    for (float& x : values) x = static_cast<float>(rng.uniform(low, high));
    return values;
}

std::vector<float> nans(std::size_t count) {
    return std::vector<float>(count, std::numeric_limits<float>::quiet_NaN());
}

// DeviceBuffer's copies run on the legacy default stream, which the context's non-blocking stream does
// not wait for (nor it for them): finish the stream's work before a copy, and the copy before new work.
void upload(DeviceBuffer<float>& buffer, const std::vector<float>& host) {
    context().synchronize();
    buffer.upload(host);
    CAPSNET_CUDA_CHECK(cudaDeviceSynchronize());
}
DeviceBuffer<float> to_device(const std::vector<float>& host) {
    DeviceBuffer<float> buffer;
    upload(buffer, host);
    return buffer;
}
std::vector<float> to_host(const DeviceBuffer<float>& buffer) {
    context().synchronize();
    return buffer.to_host();
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

template <class T, std::size_t Rank>
Tensor<T, Rank> to_tensor(const std::vector<float>& values, const std::array<std::size_t, Rank>& shape) {
    Tensor<T, Rank> tensor(shape);
    REQUIRE(tensor.size() == values.size());
    for (std::size_t i = 0; i < values.size(); ++i) tensor.data()[i] = static_cast<T>(values[i]);
    return tensor;
}

template <class E>
std::vector<float> to_floats(const E& tensor) {
    std::vector<float> values(tensor.size());
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(tensor.data()[i]);
    return values;
}

using Shape4 = std::array<std::size_t, 4>;

struct ConvCase {
    const char* name;
    int batch, in_channels, height, width, out_channels, kernel, stride;
};

struct LayerGrads {
    std::vector<float> weight_grad, bias_grad, input_grad;
};

}  // namespace

TEST_CASE("cuda conv2d matches the core", "[cuda][layers]") {
    const ConvCase cases[] = {
        {"conv1", 4, 1, 28, 28, 256, 9, 1},
        {"primary", 4, 256, 20, 20, 256, 9, 2},
        {"non-square, stride 2", 3, 3, 11, 8, 5, 3, 2},
        {"non-square, stride 1", 2, 2, 7, 10, 3, 4, 1},
        {"stride above kernel", 2, 3, 10, 13, 4, 2, 3},  // some input pixels feed no output: zero gradient
    };
    GpuContext& ctx = context();
    Rng rng(101);
    for (const ConvCase& c : cases) {
        DYNAMIC_SECTION(c.name) {
            const int out_h = (c.height - c.kernel) / c.stride + 1, out_w = (c.width - c.kernel) / c.stride + 1;
            const Shape4 input_shape{std::size_t(c.batch), std::size_t(c.in_channels), std::size_t(c.height),
                                     std::size_t(c.width)};
            const Shape4 weight_shape{std::size_t(c.out_channels), std::size_t(c.in_channels), std::size_t(c.kernel),
                                      std::size_t(c.kernel)};
            const Shape4 output_shape{std::size_t(c.batch), std::size_t(c.out_channels), std::size_t(out_h),
                                      std::size_t(out_w)};
            const std::array<std::size_t, 1> bias_shape{std::size_t(c.out_channels)};
            const std::size_t input_count = input_shape[0] * input_shape[1] * input_shape[2] * input_shape[3];
            const std::size_t weight_count = weight_shape[0] * weight_shape[1] * weight_shape[2] * weight_shape[3];
            const std::size_t output_count = output_shape[0] * output_shape[1] * output_shape[2] * output_shape[3];
            const std::vector<float> input = random_floats(input_count, rng);
            const std::vector<float> weight = random_floats(weight_count, rng);
            const std::vector<float> bias = random_floats(bias_shape[0], rng);
            const std::vector<float> output_grad = random_floats(output_count, rng);
            // Nonzero starting gradients: the weight and bias gradients must be added to.
            const std::vector<float> weight_grad_start = random_floats(weight_count, rng);
            const std::vector<float> bias_grad_start = random_floats(bias_shape[0], rng);

            // The core, in double.
            const auto input_d = to_tensor<double>(input, input_shape);
            const auto weight_d = to_tensor<double>(weight, weight_shape);
            Tensor<double, 4> output_d;
            conv2d_forward(input_d, weight_d, to_tensor<double>(bias, bias_shape), c.stride, output_d);
            REQUIRE(output_d.size() == output_count);
            auto weight_grad_d = to_tensor<double>(weight_grad_start, weight_shape);
            auto bias_grad_d = to_tensor<double>(bias_grad_start, bias_shape);
            Tensor<double, 4> input_grad_d;
            conv2d_backward(input_d, weight_d, c.stride, to_tensor<double>(output_grad, output_shape), weight_grad_d,
                            bias_grad_d, &input_grad_d);

            // The GPU. One `columns` buffer for every call, as a layer would keep it: the backward pass grows
            // it, and a forward pass after that must still be right with the larger buffer.
            DeviceBuffer<float> d_input = to_device(input), d_weight = to_device(weight), d_bias = to_device(bias),
                                d_output_grad = to_device(output_grad), columns;
            auto forward = [&] {
                DeviceBuffer<float> d_output = to_device(nans(output_count));  // must be overwritten
                cuda::conv2d_forward(ctx, d_input.data(), c.batch, c.in_channels, c.height, c.width, d_weight.data(),
                                     d_bias.data(), c.out_channels, c.kernel, c.stride, d_output.data(), columns);
                return to_host(d_output);
            };
            auto backward = [&](bool with_input_grad) {
                DeviceBuffer<float> d_weight_grad = to_device(weight_grad_start);
                DeviceBuffer<float> d_bias_grad = to_device(bias_grad_start);
                DeviceBuffer<float> d_input_grad = to_device(nans(with_input_grad ? input_count : 0));
                cuda::conv2d_backward(ctx, d_input.data(), c.batch, c.in_channels, c.height, c.width, d_weight.data(),
                                      c.out_channels, c.kernel, c.stride, d_output_grad.data(), d_weight_grad.data(),
                                      d_bias_grad.data(), with_input_grad ? d_input_grad.data() : nullptr, columns);
                return LayerGrads{to_host(d_weight_grad), to_host(d_bias_grad), to_host(d_input_grad)};
            };

            const std::vector<float> output = forward();
            // Each output sums in_channels * kernel^2 products.
            CHECK(relative_error_norm(output, to_floats(output_d).data()) <
                  sum_tolerance(std::size_t(c.in_channels) * c.kernel * c.kernel));

            const LayerGrads grads = backward(true);
            // Weight and bias gradients sum over the batch and the output positions.
            const std::size_t batch_positions = std::size_t(c.batch) * out_h * out_w;
            CHECK(relative_error_norm(grads.weight_grad, to_floats(weight_grad_d).data()) <
                  sum_tolerance(batch_positions));
            CHECK(relative_error_norm(grads.bias_grad, to_floats(bias_grad_d).data()) < sum_tolerance(batch_positions));
            // An input pixel sums out_channels products for each of up to ceil(kernel / stride)^2 taps.
            const std::size_t taps = std::size_t((c.kernel + c.stride - 1) / c.stride);
            REQUIRE(grads.input_grad.size() == input_count);
            CHECK(relative_error_norm(grads.input_grad, to_floats(input_grad_d).data()) <
                  sum_tolerance(std::size_t(c.out_channels) * taps * taps));

            // Deterministic: the same inputs give the same bits, also after the buffer has grown.
            const LayerGrads again = backward(true);
            REQUIRE(same_bits(grads.weight_grad, again.weight_grad));
            REQUIRE(same_bits(grads.bias_grad, again.bias_grad));
            REQUIRE(same_bits(grads.input_grad, again.input_grad));
            REQUIRE(same_bits(output, forward()));

            // input_grad == nullptr (the first layer): the same weight and bias gradients, nothing else.
            const LayerGrads without = backward(false);
            REQUIRE(same_bits(grads.weight_grad, without.weight_grad));
            REQUIRE(same_bits(grads.bias_grad, without.bias_grad));
        }
    }
}

TEST_CASE("cuda linear matches the core", "[cuda][layers]") {
    struct LinearCase {
        const char* name;
        int batch, in_features, out_features;
    };
    const LinearCase cases[] = {
        {"decoder.0", 4, 160, 512},
        {"decoder.1", 4, 512, 1024},
        {"decoder.2", 4, 1024, 784},
        {"odd sizes", 3, 7, 5},
    };
    GpuContext& ctx = context();
    Rng rng(202);
    for (const LinearCase& c : cases) {
        DYNAMIC_SECTION(c.name) {
            const std::array<std::size_t, 2> input_shape{std::size_t(c.batch), std::size_t(c.in_features)};
            const std::array<std::size_t, 2> weight_shape{std::size_t(c.out_features), std::size_t(c.in_features)};
            const std::array<std::size_t, 2> output_shape{std::size_t(c.batch), std::size_t(c.out_features)};
            const std::array<std::size_t, 1> bias_shape{std::size_t(c.out_features)};
            const std::size_t input_count = input_shape[0] * input_shape[1];
            const std::size_t weight_count = weight_shape[0] * weight_shape[1];
            const std::size_t output_count = output_shape[0] * output_shape[1];
            const std::vector<float> input = random_floats(input_count, rng);
            const std::vector<float> weight = random_floats(weight_count, rng);
            const std::vector<float> bias = random_floats(bias_shape[0], rng);
            const std::vector<float> output_grad = random_floats(output_count, rng);
            const std::vector<float> weight_grad_start = random_floats(weight_count, rng);
            const std::vector<float> bias_grad_start = random_floats(bias_shape[0], rng);

            const auto input_d = to_tensor<double>(input, input_shape);
            const auto weight_d = to_tensor<double>(weight, weight_shape);
            Tensor<double, 2> output_d;
            linear_forward(input_d, weight_d, to_tensor<double>(bias, bias_shape), output_d);
            auto weight_grad_d = to_tensor<double>(weight_grad_start, weight_shape);
            auto bias_grad_d = to_tensor<double>(bias_grad_start, bias_shape);
            Tensor<double, 2> input_grad_d;
            linear_backward(input_d, weight_d, to_tensor<double>(output_grad, output_shape), weight_grad_d, bias_grad_d,
                            &input_grad_d);

            DeviceBuffer<float> d_input = to_device(input), d_weight = to_device(weight), d_bias = to_device(bias),
                                d_output_grad = to_device(output_grad);
            auto forward = [&] {
                DeviceBuffer<float> d_output = to_device(nans(output_count));
                cuda::linear_forward(ctx, d_input.data(), c.batch, c.in_features, d_weight.data(), d_bias.data(),
                                     c.out_features, d_output.data());
                return to_host(d_output);
            };
            auto backward = [&](bool with_input_grad) {
                DeviceBuffer<float> d_weight_grad = to_device(weight_grad_start);
                DeviceBuffer<float> d_bias_grad = to_device(bias_grad_start);
                DeviceBuffer<float> d_input_grad = to_device(nans(with_input_grad ? input_count : 0));
                cuda::linear_backward(ctx, d_input.data(), c.batch, c.in_features, d_weight.data(), c.out_features,
                                      d_output_grad.data(), d_weight_grad.data(), d_bias_grad.data(),
                                      with_input_grad ? d_input_grad.data() : nullptr);
                return LayerGrads{to_host(d_weight_grad), to_host(d_bias_grad), to_host(d_input_grad)};
            };

            const std::vector<float> output = forward();
            CHECK(relative_error_norm(output, to_floats(output_d).data()) < sum_tolerance(std::size_t(c.in_features)));
            const LayerGrads grads = backward(true);
            // Weight and bias gradients sum over the batch; the input gradient over the output features.
            CHECK(relative_error_norm(grads.weight_grad, to_floats(weight_grad_d).data()) <
                  sum_tolerance(std::size_t(c.batch)));
            CHECK(relative_error_norm(grads.bias_grad, to_floats(bias_grad_d).data()) <
                  sum_tolerance(std::size_t(c.batch)));
            REQUIRE(grads.input_grad.size() == input_count);
            CHECK(relative_error_norm(grads.input_grad, to_floats(input_grad_d).data()) <
                  sum_tolerance(std::size_t(c.out_features)));

            REQUIRE(same_bits(output, forward()));
            const LayerGrads again = backward(true);
            REQUIRE(same_bits(grads.weight_grad, again.weight_grad));
            REQUIRE(same_bits(grads.bias_grad, again.bias_grad));
            REQUIRE(same_bits(grads.input_grad, again.input_grad));
            const LayerGrads without = backward(false);
            REQUIRE(same_bits(grads.weight_grad, without.weight_grad));
            REQUIRE(same_bits(grads.bias_grad, without.bias_grad));
        }
    }
}

TEST_CASE("cuda leaky relu matches the core", "[cuda][layers]") {
    GpuContext& ctx = context();
    Rng rng(303);
    const std::size_t count = std::size_t(4) * conv1_channels * conv1_side * conv1_side;  // conv1's output
    const std::array<std::size_t, 1> shape{count};
    for (float slope : {0.05f, 0.0f}) {
        DYNAMIC_SECTION("slope " << slope) {
            const std::vector<float> x = random_floats(count, rng);
            const std::vector<float> grad = random_floats(count, rng);
            Tensor<float, 1> output = to_tensor<float>(x, shape);
            leaky_relu_inplace(output, slope);
            Tensor<float, 1> input_grad = to_tensor<float>(grad, shape);
            leaky_relu_backward_inplace(output, input_grad, slope);

            auto forward = [&] {
                DeviceBuffer<float> d_x = to_device(x);
                cuda::leaky_relu_forward(ctx, d_x.data(), count, slope);
                return to_host(d_x);
            };
            auto backward = [&] {
                DeviceBuffer<float> d_output = to_device(to_floats(output)), d_grad = to_device(grad);
                cuda::leaky_relu_backward(ctx, d_output.data(), d_grad.data(), count, slope);
                return to_host(d_grad);
            };
            const std::vector<float> gpu_output = forward(), gpu_grad = backward();
            CHECK(relative_error_norm(gpu_output, output.data()) < elementwise_tolerance);
            CHECK(relative_error_norm(gpu_grad, input_grad.data()) < elementwise_tolerance);
            REQUIRE(same_bits(gpu_output, forward()));
            REQUIRE(same_bits(gpu_grad, backward()));
        }
    }
}

TEST_CASE("cuda sigmoid matches the core", "[cuda][layers]") {
    GpuContext& ctx = context();
    Rng rng(404);
    const std::size_t count = std::size_t(4) * image_pixels;  // the decoder's output
    const std::array<std::size_t, 1> shape{count};
    const std::vector<float> x = random_floats(count, rng, -12, 12);  // into both saturated tails
    const std::vector<float> grad = random_floats(count, rng);
    Tensor<float, 1> output = to_tensor<float>(x, shape);
    sigmoid_inplace(output);
    Tensor<float, 1> input_grad = to_tensor<float>(grad, shape);
    sigmoid_backward_inplace(output, input_grad);

    auto forward = [&] {
        DeviceBuffer<float> d_x = to_device(x);
        cuda::sigmoid_forward(ctx, d_x.data(), count);
        return to_host(d_x);
    };
    auto backward = [&] {
        DeviceBuffer<float> d_output = to_device(to_floats(output)), d_grad = to_device(grad);
        cuda::sigmoid_backward(ctx, d_output.data(), d_grad.data(), count);
        return to_host(d_grad);
    };
    const std::vector<float> gpu_output = forward(), gpu_grad = backward();
    // expf and xsimd's exp may differ by an ulp or two; the backward pass is the same three float ops.
    CHECK(relative_error_norm(gpu_output, output.data()) < elementwise_tolerance);
    CHECK(relative_error_norm(gpu_grad, input_grad.data()) < elementwise_tolerance);
    REQUIRE(same_bits(gpu_output, forward()));
    REQUIRE(same_bits(gpu_grad, backward()));
}

TEST_CASE("cuda reconstruction loss matches the core", "[cuda][losses]") {
    GpuContext& ctx = context();
    // 4 images: one block of the reduction; 300 (235,200 terms): 115 blocks and the second pass.
    for (const int batch : {4, 300}) {
        DYNAMIC_SECTION("batch " << batch) {
            Rng rng(505 + batch);
            const int pixels = image_pixels;
            const float weight = 0.0005f;
            const std::size_t count = std::size_t(batch) * pixels;
            const std::vector<float> reconstruction = random_floats(count, rng, 0, 1);  // sigmoid outputs
            const std::vector<float> images = random_floats(count, rng, 0, 1);
            const auto reconstruction_t = to_tensor<float>(
                reconstruction, std::array<std::size_t, 2>{std::size_t(batch), std::size_t(pixels)});
            const auto images_t = to_tensor<float>(
                images, std::array<std::size_t, 4>{std::size_t(batch), 1, std::size_t(image_side), std::size_t(image_side)});
            const float cpu_loss = reconstruction_loss_forward(reconstruction_t, images_t, weight);
            Tensor<float, 2> cpu_grad;
            reconstruction_loss_backward(reconstruction_t, images_t, weight, cpu_grad);

            // The loss is added to: start from a nonzero value (the caller's margin loss, say).
            const float start = 0.25f;
            DeviceBuffer<float> d_reconstruction = to_device(reconstruction), d_images = to_device(images);
            DeviceBuffer<double> partials;
            auto run = [&] {
                DeviceBuffer<float> d_loss = to_device({start}), d_grad = to_device(nans(count));
                cuda::reconstruction_loss(ctx, d_reconstruction.data(), d_images.data(), batch, pixels, weight,
                                          d_loss.data(), d_grad.data(), partials);
                return std::make_pair(to_host(d_loss), to_host(d_grad));
            };
            const auto [gpu_loss, gpu_grad] = run();
            REQUIRE(gpu_loss.size() == 1);
            // Both sides sum the squares in double (in other orders); what is left is the float rounding
            // of the result.
            const float expected = start + cpu_loss;
            CHECK(std::abs(double(gpu_loss[0]) - double(expected)) <= elementwise_tolerance * std::abs(double(expected)));
            // The gradient is the same float expression on both sides.
            CHECK(relative_error_norm(gpu_grad, cpu_grad.data()) < elementwise_tolerance);
            const auto [loss_again, grad_again] = run();
            REQUIRE(same_bits(gpu_loss, loss_again));
            REQUIRE(same_bits(gpu_grad, grad_again));
        }
    }
}

TEST_CASE("cuda adam matches the core's adam_update", "[cuda][adam]") {
    // Every tensor of the seed preset's parameters, updated by the core's adam_update and by the GPU
    // launcher tensor by tensor; two GPU copies check determinism.
    const Config config = config_for_preset(Preset::seed);
    const float learning_rate = 1e-3f;  // a float, so both sides see exactly the same value
    GpuContext& ctx = context();
    Rng rng(606);

    Parameters<float> params = parameters_zeros<float>(config);
    // Parameters of the size of a few updates: a wrong update cannot hide below the parameters' rounding.
    visit_parameters(
        [&](const char*, auto& tensor) {
            for (auto& x : tensor) x = static_cast<float>(rng.uniform(-0.01, 0.01));
        },
        params);
    Parameters<float> grads = parameters_zeros<float>(config);
    AdamState<float> state = adam_init<float>(config);

    struct DeviceTensor {
        std::string name;
        std::size_t count;
        DeviceBuffer<float> params, grads, first_moment, second_moment;
    };
    std::vector<DeviceTensor> gpu[2];
    visit_parameters(
        [&](const char* name, const auto& tensor) {
            const std::vector<float> values(tensor.data(), tensor.data() + tensor.size());
            for (auto& copy : gpu) {
                DeviceTensor t{name, values.size(), to_device(values), DeviceBuffer<float>(), DeviceBuffer<float>(),
                               DeviceBuffer<float>()};
                upload(t.first_moment, std::vector<float>(values.size(), 0.0f));
                upload(t.second_moment, std::vector<float>(values.size(), 0.0f));
                copy.push_back(std::move(t));
            }
        },
        params);

    for (int step = 1; step <= 3; ++step) {
        visit_parameters(
            [&](const char*, auto& tensor) {
                for (auto& x : tensor) x = static_cast<float>(rng.uniform(-1, 1));
            },
            grads);
        adam_update(config, double(learning_rate), grads, params, state);
        REQUIRE(state.step == step);

        std::size_t index = 0;
        visit_parameters(
            [&](const char*, const auto& tensor) {
                const std::vector<float> values(tensor.data(), tensor.data() + tensor.size());
                for (auto& copy : gpu) {
                    DeviceTensor& t = copy[index];
                    upload(t.grads, values);
                    cuda::adam_update(ctx, t.params.data(), t.grads.data(), t.first_moment.data(),
                                      t.second_moment.data(), t.count, learning_rate, config.adam_beta1,
                                      config.adam_beta2, config.adam_epsilon, state.step);
                }
                ++index;
            },
            grads);
    }

    std::vector<std::vector<float>> cpu_params, cpu_first, cpu_second;
    auto flatten = [](std::vector<std::vector<float>>& out) {
        return [&out](const char*, const auto& tensor) {
            out.emplace_back(tensor.data(), tensor.data() + tensor.size());
        };
    };
    visit_parameters(flatten(cpu_params), params);
    visit_parameters(flatten(cpu_first), state.first_moment);
    visit_parameters(flatten(cpu_second), state.second_moment);
    REQUIRE(cpu_params.size() == gpu[0].size());
    for (std::size_t i = 0; i < gpu[0].size(); ++i) {
        const DeviceTensor& t = gpu[0][i];
        INFO(t.name);
        const std::vector<float> p = to_host(t.params), m = to_host(t.first_moment), v = to_host(t.second_moment);
        REQUIRE(p.size() == cpu_params[i].size());
        // The same float expressions in the same order; contraction into FMAs may move the last ulp.
        CHECK(relative_error_norm(p, cpu_params[i].data()) < elementwise_tolerance);
        CHECK(relative_error_norm(m, cpu_first[i].data()) < elementwise_tolerance);
        CHECK(relative_error_norm(v, cpu_second[i].data()) < elementwise_tolerance);
        const DeviceTensor& twin = gpu[1][i];
        REQUIRE(same_bits(p, to_host(twin.params)));
        REQUIRE(same_bits(m, to_host(twin.first_moment)));
        REQUIRE(same_bits(v, to_host(twin.second_moment)));
    }
}
