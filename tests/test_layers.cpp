// Gradient checks and known values for each layer, in double precision (see gradient_check.hpp for the
// tolerance). Each backward pass is fed the gradient of L = sum(output * R) for a fixed random R, so the
// numerical derivative of L checks every path of the backward pass at once.
#include <cmath>
#include <numeric>
#include <vector>

#include <catch2/catch.hpp>

#include "capsnet/capsules.hpp"
#include "capsnet/layers.hpp"
#include "capsnet/losses.hpp"
#include "capsnet/routing.hpp"
#include "gradient_check.hpp"

using namespace capsnet;
using capsnet_test::check_tensor_gradient;

using capsnet_test::fill_random;
using capsnet_test::projected;

// Both lowerings (layers.cpp) on the same inputs; `automatic` picks one of them, so it needs no case.
const ConvLowering lowerings[] = {ConvLowering::columns, ConvLowering::patch_rows};
const char* lowering_name(ConvLowering lowering) { return lowering == ConvLowering::columns ? "columns" : "patch rows"; }
Tensor<double, 2>* const no_rows = nullptr;  // patch rows neither kept nor given

TEST_CASE("conv2d gradients match finite differences", "[layers][gradient]") {
    Rng rng(1);
    for (ConvLowering lowering : lowerings)
        for (int stride : {1, 2}) {
            DYNAMIC_SECTION(lowering_name(lowering) << ", stride " << stride) {
                Tensor<double, 4> input({3, 2, 9, 8}), weight({4, 2, 3, 3});
                Tensor<double, 1> bias = xt::zeros<double>({4});
                fill_random(input, rng);
                fill_random(weight, rng);
                fill_random(bias, rng);
                Tensor<double, 4> output;
                Tensor<double, 2> patch_rows;
                conv2d_forward(input, weight, bias, stride, output, &patch_rows, lowering);
                Tensor<double, 4> projection(output.shape());
                fill_random(projection, rng);
                auto loss = [&] {
                    Tensor<double, 4> out;
                    conv2d_forward(input, weight, bias, stride, out, no_rows, lowering);
                    return projected(out, projection);
                };
                Tensor<double, 4> weight_grad = xt::zeros<double>(weight.shape()), input_grad;
                Tensor<double, 1> bias_grad = xt::zeros<double>(bias.shape());
                // The patch-rows lowering reuses what the forward kept (the columns one ignores it).
                conv2d_backward(input, weight, stride, projection, weight_grad, bias_grad, &input_grad, &patch_rows, lowering);
                check_tensor_gradient("input", input, input_grad, loss, 1000, rng);
                check_tensor_gradient("weight", weight, weight_grad, loss, 1000, rng);
                check_tensor_gradient("bias", bias, bias_grad, loss, 1000, rng);
                // Recomputing the patches instead gives the same gradients.
                Tensor<double, 4> weight_grad2 = xt::zeros<double>(weight.shape()), input_grad2;
                Tensor<double, 1> bias_grad2 = xt::zeros<double>(bias.shape());
                conv2d_backward(input, weight, stride, projection, weight_grad2, bias_grad2, &input_grad2, no_rows, lowering);
                CHECK((weight_grad2 == weight_grad));
                CHECK((input_grad2 == input_grad));
            }
        }
}

TEST_CASE("conv2d forward equals the direct sum", "[layers]") {
    Rng rng(2);
    // 40 images: more than one scratch group of the patch-rows lowering (layers.cpp: ~256 rows, so 29
    // images of 9 positions), the last one partial.
    for (std::size_t batch : {std::size_t(2), std::size_t(40)})
        for (ConvLowering lowering : lowerings) {
            INFO(lowering_name(lowering) << ", batch " << batch);
            Tensor<double, 4> input({batch, 3, 7, 7}), weight({5, 3, 3, 3});
            Tensor<double, 1> bias = xt::zeros<double>({5});
            fill_random(input, rng);
            fill_random(weight, rng);
            fill_random(bias, rng);
            Tensor<double, 4> output;
            conv2d_forward(input, weight, bias, 2, output, no_rows, lowering);
            REQUIRE(capsnet_test::shape_is(output, {batch, 5, 3, 3}));
            double worst = 0;
            for (std::size_t b = 0; b < batch; ++b)
                for (std::size_t o = 0; o < 5; ++o)
                    for (std::size_t y = 0; y < 3; ++y)
                        for (std::size_t x = 0; x < 3; ++x) {
                            double sum = bias(o);
                            for (std::size_t c = 0; c < 3; ++c)
                                for (std::size_t ky = 0; ky < 3; ++ky)
                                    for (std::size_t kx = 0; kx < 3; ++kx)
                                        sum += weight(o, c, ky, kx) * input(b, c, 2 * y + ky, 2 * x + kx);
                            worst = std::max(worst, std::abs(sum - output(b, o, y, x)));
                        }
            CHECK(worst < 1e-12);  // 27-term sums of O(1) doubles: rounding is ~1e-15
        }
}

TEST_CASE("conv2d picks patch rows for few positions, columns for many", "[layers]") {
    // The two CapsNet convolutions: conv1 (400 positions, 256 channels) and the primary capsules (36).
    // Identical results either way, so the choice is observable only through the kept patch rows.
    Rng rng(3);
    Tensor<float, 4> weight({8, 2, 3, 3});
    Tensor<float, 1> bias = xt::zeros<float>({8});
    fill_random(weight, rng);
    Tensor<float, 4> few({2, 2, 4, 4}), many({2, 2, 6, 6}), out;  // 4 and 16 positions per image, 8 channels
    fill_random(few, rng);
    fill_random(many, rng);
    Tensor<float, 2> rows;
    conv2d_forward(few, weight, bias, 1, out, &rows);
    CHECK(capsnet_test::shape_is(rows, {8, 18}));  // 2 images x 4 positions, 2 channels x 3 x 3
    rows = Tensor<float, 2>();
    conv2d_forward(many, weight, bias, 1, out, &rows);
    CHECK(rows.size() == 0);
}

TEST_CASE("linear gradients match finite differences", "[layers][gradient]") {
    Rng rng(3);
    Tensor<double, 2> input({3, 7}), weight({5, 7});
    Tensor<double, 1> bias = xt::zeros<double>({5});
    fill_random(input, rng);
    fill_random(weight, rng);
    fill_random(bias, rng);
    Tensor<double, 2> projection({3, 5});
    fill_random(projection, rng);
    auto loss = [&] {
        Tensor<double, 2> out;
        linear_forward(input, weight, bias, out);
        return projected(out, projection);
    };
    Tensor<double, 2> weight_grad = xt::zeros<double>(weight.shape()), input_grad;
    Tensor<double, 1> bias_grad = xt::zeros<double>(bias.shape());
    linear_backward(input, weight, projection, weight_grad, bias_grad, &input_grad);
    check_tensor_gradient("input", input, input_grad, loss, 1000, rng);
    check_tensor_gradient("weight", weight, weight_grad, loss, 1000, rng);
    check_tensor_gradient("bias", bias, bias_grad, loss, 1000, rng);
}

TEST_CASE("activations: leaky ReLU and sigmoid gradients", "[layers][gradient]") {
    Rng rng(4);
    for (double slope : {0.0, 0.05}) {
        Tensor<double, 1> x = xt::zeros<double>({50}), projection = xt::zeros<double>({50});
        fill_random(x, rng);
        fill_random(projection, rng);
        auto loss = [&] {
            Tensor<double, 1> y = x;
            leaky_relu_inplace(y, slope);
            return projected(y, projection);
        };
        Tensor<double, 1> y = x, grad = projection;
        leaky_relu_inplace(y, slope);
        leaky_relu_backward_inplace(y, grad, slope);
        check_tensor_gradient("leaky_relu", x, grad, loss, 1000, rng);
    }
    Tensor<double, 1> x = xt::zeros<double>({50}), projection = xt::zeros<double>({50});
    fill_random(x, rng, -4, 4);
    fill_random(projection, rng);
    auto loss = [&] {
        Tensor<double, 1> y = x;
        sigmoid_inplace(y);
        return projected(y, projection);
    };
    Tensor<double, 1> y = x, grad = projection;
    sigmoid_inplace(y);
    sigmoid_backward_inplace(y, grad);
    check_tensor_gradient("sigmoid", x, grad, loss, 1000, rng);
}

TEST_CASE("squash: known values", "[layers][squash]") {
    // |s|^2 = 25: v = 25/26 * s/5 = (3, 4) * 5/26.
    double s[2] = {3, 4}, v[2];
    squash_forward(s, v, 1, 2);
    CHECK(v[0] == Approx(15.0 / 26).epsilon(1e-15));
    CHECK(v[1] == Approx(20.0 / 26).epsilon(1e-15));
    // A unit vector is halved: |v| = 1/(1+1).
    double e[3] = {0, 1, 0}, ve[3];
    squash_forward(e, ve, 1, 3);
    CHECK(ve[1] == Approx(0.5).epsilon(1e-15));
    // The zero vector maps to zero, with zero gradient, and no NaN.
    double z[4] = {0, 0, 0, 0}, vz[4], g[4] = {1, 2, 3, 4}, gz[4];
    squash_forward(z, vz, 1, 4);
    squash_backward(z, g, gz, 1, 4);
    for (int d = 0; d < 4; ++d) {
        CHECK(vz[d] == 0.0);
        CHECK(gz[d] == 0.0);
    }
    // In float, a huge vector still has |v| < 1 and no overflow to NaN.
    float big[2] = {3e18f, 4e18f}, vbig[2];
    squash_forward(big, vbig, 1, 2);
    CHECK(std::isfinite(vbig[0]));
    CHECK(std::sqrt(vbig[0] * vbig[0] + vbig[1] * vbig[1]) <= 1.0f);
}

TEST_CASE("squash gradients match finite differences", "[layers][gradient][squash]") {
    Rng rng(5);
    for (double magnitude : {0.1, 1.0, 5.0}) {
        Tensor<double, 2> s({6, 8}), projection({6, 8});
        fill_random(s, rng, -magnitude, magnitude);
        fill_random(projection, rng);
        auto loss = [&] {
            Tensor<double, 2> v(s.shape());
            squash_forward(s.data(), v.data(), 6, 8);
            return projected(v, projection);
        };
        Tensor<double, 2> grad(s.shape());
        squash_backward(s.data(), projection.data(), grad.data(), 6, 8);
        check_tensor_gradient("squash", s, grad, loss, 1000, rng);
    }
}
