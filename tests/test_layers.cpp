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

TEST_CASE("conv2d gradients match finite differences", "[layers][gradient]") {
    Rng rng(1);
    for (int stride : {1, 2}) {
        DYNAMIC_SECTION("stride " << stride) {
            Tensor<double, 4> input({3, 2, 9, 8}), weight({4, 2, 3, 3});
            Tensor<double, 1> bias = xt::zeros<double>({4});
            fill_random(input, rng);
            fill_random(weight, rng);
            fill_random(bias, rng);
            Tensor<double, 4> output;
            conv2d_forward(input, weight, bias, stride, output);
            Tensor<double, 4> projection(output.shape());
            fill_random(projection, rng);
            auto loss = [&] {
                Tensor<double, 4> out;
                conv2d_forward(input, weight, bias, stride, out);
                return projected(out, projection);
            };
            Tensor<double, 4> weight_grad = xt::zeros<double>(weight.shape()), input_grad;
            Tensor<double, 1> bias_grad = xt::zeros<double>(bias.shape());
            conv2d_backward(input, weight, stride, projection, weight_grad, bias_grad, &input_grad);
            check_tensor_gradient("input", input, input_grad, loss, 1000, rng);
            check_tensor_gradient("weight", weight, weight_grad, loss, 1000, rng);
            check_tensor_gradient("bias", bias, bias_grad, loss, 1000, rng);
        }
    }
}

TEST_CASE("conv2d forward equals the direct sum", "[layers]") {
    Rng rng(2);
    Tensor<double, 4> input({2, 3, 7, 7}), weight({5, 3, 3, 3});
    Tensor<double, 1> bias = xt::zeros<double>({5});
    fill_random(input, rng);
    fill_random(weight, rng);
    fill_random(bias, rng);
    Tensor<double, 4> output;
    conv2d_forward(input, weight, bias, 2, output);
    REQUIRE(capsnet_test::shape_is(output, {2, 5, 3, 3}));
    double worst = 0;
    for (std::size_t b = 0; b < 2; ++b)
        for (std::size_t o = 0; o < 5; ++o)
            for (std::size_t y = 0; y < 3; ++y)
                for (std::size_t x = 0; x < 3; ++x) {
                    double sum = bias(o);
                    for (std::size_t c = 0; c < 3; ++c)
                        for (std::size_t ky = 0; ky < 3; ++ky)
                            for (std::size_t kx = 0; kx < 3; ++kx) sum += weight(o, c, ky, kx) * input(b, c, 2 * y + ky, 2 * x + kx);
                    worst = std::max(worst, std::abs(sum - output(b, o, y, x)));
                }
    CHECK(worst < 1e-12);  // 27-term sums of O(1) doubles: rounding is ~1e-15
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
