// Primary capsules, predictions, dynamic routing and the losses: gradient checks in double precision
// (tolerance in gradient_check.hpp), routing invariants and known loss values.
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>
#include <xtensor/xview.hpp>

#include "capsnet/capsules.hpp"
#include "capsnet/config.hpp"
#include "capsnet/losses.hpp"
#include "capsnet/routing.hpp"
#include "gradient_check.hpp"

using namespace capsnet;
using capsnet_test::check_tensor_gradient;

using capsnet_test::fill_random;
using capsnet_test::projected;

TEST_CASE("primary capsules: layout and gradients", "[capsules][gradient]") {
    Rng rng(11);
    // 3 types of 4-D capsules on a 2x3 grid.
    Tensor<double, 4> conv_out({2, 12, 2, 3});
    fill_random(conv_out, rng);
    Tensor<double, 3> raw, caps;
    primary_capsules_forward(conv_out, 4, false, raw, caps);
    REQUIRE(capsnet_test::shape_is(caps, {2, 18, 4}));
    // Capsule i = t*6 + y*3 + x holds channels 4t..4t+3 at (y, x).
    CHECK(caps(1, 2 * 6 + 1 * 3 + 2, 3) == conv_out(1, 2 * 4 + 3, 1, 2));
    CHECK(caps(0, 0, 1) == conv_out(0, 1, 0, 0));

    for (bool squash : {false, true}) {
        DYNAMIC_SECTION("squash " << squash) {
            primary_capsules_forward(conv_out, 4, squash, raw, caps);
            Tensor<double, 3> projection(caps.shape());
            fill_random(projection, rng);
            auto loss = [&] {
                Tensor<double, 3> r, c;
                primary_capsules_forward(conv_out, 4, squash, r, c);
                return projected(c, projection);
            };
            Tensor<double, 4> grad;
            primary_capsules_backward(raw, squash, projection, grad, 12, 2, 3);
            check_tensor_gradient("conv_out", conv_out, grad, loss, 1000, rng);
        }
    }
}

TEST_CASE("predictions: values and gradients, shared and unshared W", "[capsules][gradient]") {
    Rng rng(12);
    const std::size_t B = 3, I = 6, classes = 4, out_dims = 5, in_dims = 3;
    for (std::size_t matrices : {I, std::size_t(2)}) {
        DYNAMIC_SECTION("matrices " << matrices) {
            const bool shared = matrices < I;
            Tensor<double, 3> caps({B, I, in_dims});
            Tensor<double, 4> weight({matrices, classes, out_dims, in_dims});
            Tensor<double, 3> bias = shared ? Tensor<double, 3>({matrices, classes, out_dims}) : Tensor<double, 3>({0, 0, 0});
            fill_random(caps, rng);
            fill_random(weight, rng);
            fill_random(bias, rng);
            Tensor<double, 4> u_hat;
            predictions_forward(caps, weight, bias, u_hat);
            // Direct formula for one entry: capsule 4 uses matrix 4 / (6/2) = 1 when shared.
            const std::size_t i = 4, w = shared ? i / (I / matrices) : i;
            double expected = shared ? bias(w, 2, 3) : 0.0;
            for (std::size_t d = 0; d < in_dims; ++d) expected += weight(w, 2, 3, d) * caps(1, i, d);
            CHECK(u_hat(1, i, 2, 3) == Approx(expected).epsilon(1e-13));

            Tensor<double, 4> projection(u_hat.shape());
            fill_random(projection, rng);
            auto loss = [&] {
                Tensor<double, 4> out;
                predictions_forward(caps, weight, bias, out);
                return projected(out, projection);
            };
            Tensor<double, 4> weight_grad = xt::zeros<double>(weight.shape());
            Tensor<double, 3> bias_grad = xt::zeros<double>(bias.shape()), caps_grad;
            predictions_backward(caps, weight, projection, weight_grad, bias_grad, caps_grad);
            check_tensor_gradient("capsules", caps, caps_grad, loss, 1000, rng);
            check_tensor_gradient("weight", weight, weight_grad, loss, 1000, rng);
            if (shared) check_tensor_gradient("bias", bias, bias_grad, loss, 1000, rng);
        }
    }
}

TEST_CASE("routing gradients match finite differences through every iteration", "[routing][gradient]") {
    Rng rng(13);
    for (int iterations : {1, 2, 3, 5}) {
        DYNAMIC_SECTION(iterations << " iterations") {
            Tensor<double, 4> u_hat({2, 12, 4, 6});
            fill_random(u_hat, rng, -0.5, 0.5);
            Tensor<double, 3> v, projection({2, 4, 6});
            fill_random(projection, rng);
            RoutingState<double> state;
            routing_forward(u_hat, iterations, state, v);
            auto loss = [&] {
                RoutingState<double> s;
                Tensor<double, 3> out;
                routing_forward(u_hat, iterations, s, out);
                return projected(out, projection);
            };
            Tensor<double, 4> grad;
            routing_backward(u_hat, state, projection, false, grad);
            check_tensor_gradient("u_hat", u_hat, grad, loss, 1000, rng);
        }
    }
}

TEST_CASE("fused routing computes the reference routing's values and gradients", "[routing]") {
    // The fused loops add the same terms in the same order as the reference; only the softmax's exp is
    // vectorised (xsimd's exp is within an ulp or two of std::exp). Double then agrees to ~1e-15
    // relative (1e-12 allowed), float to ~1e-7 (1e-5 allowed, over 1152-term sums of O(1) votes).
    // 37 inputs: two whole tiles of 16 rows and a partial one; 1152 is the model's size.
    auto compare = [](auto zero, std::size_t inputs, int iterations, bool stop, double tolerance) {
        using T = decltype(zero);
        Rng rng(16 + inputs + iterations);
        Tensor<T, 4> u_hat({std::size_t(3), inputs, std::size_t(10), std::size_t(16)});
        fill_random(u_hat, rng, -0.3, 0.3);
        Tensor<T, 3> projection({3, 10, 16});
        fill_random(projection, rng);
        RoutingState<T> fused_state, reference_state;
        Tensor<T, 3> fused_v, reference_v;
        routing_forward(u_hat, iterations, fused_state, fused_v);
        routing_forward_reference(u_hat, iterations, reference_state, reference_v);
        Tensor<T, 4> fused_grad, reference_grad;
        routing_backward(u_hat, fused_state, projection, stop, fused_grad);
        routing_backward_reference(u_hat, reference_state, projection, stop, reference_grad);
        auto relative = [](const auto& a, const auto& b) {
            return double(xt::amax(xt::abs(a - b))()) / double(xt::amax(xt::abs(b))());
        };
        INFO("inputs " << inputs << ", " << iterations << " iterations, stop " << stop);
        CHECK(relative(fused_v, reference_v) < tolerance);
        CHECK(relative(fused_state.coupling, reference_state.coupling) < tolerance);
        CHECK(relative(fused_grad, reference_grad) < tolerance);
    };
    for (int iterations : {1, 2, 3})
        for (bool stop : {false, true}) {
            compare(0.0, 37, iterations, stop, 1e-12);
            compare(0.0f, 1152, iterations, stop, 1e-5);
        }
}

TEST_CASE("routing stop-gradient drops exactly the coupling path", "[routing]") {
    Rng rng(14);
    Tensor<double, 4> u_hat({2, 12, 4, 6});
    fill_random(u_hat, rng, -0.5, 0.5);
    Tensor<double, 3> v, projection({2, 4, 6});
    fill_random(projection, rng);
    RoutingState<double> state;
    Tensor<double, 4> exact, stopped;
    // With one iteration the couplings are the constant 1/classes, so both gradients are the same.
    routing_forward(u_hat, 1, state, v);
    routing_backward(u_hat, state, projection, false, exact);
    routing_backward(u_hat, state, projection, true, stopped);
    CHECK(xt::amax(xt::abs(exact - stopped))() < 1e-15);
    // With three they differ, and the stopped one equals c(last) * squash'(s) applied to each u_hat.
    routing_forward(u_hat, 3, state, v);
    routing_backward(u_hat, state, projection, false, exact);
    routing_backward(u_hat, state, projection, true, stopped);
    CHECK(xt::amax(xt::abs(exact - stopped))() > 1e-6);
    std::vector<double> s_grad(4 * 6);
    squash_backward(&state.s(2, 1, 0, 0), &projection(1, 0, 0), s_grad.data(), 4, 6);
    CHECK(stopped(1, 7, 3, 5) == Approx(state.coupling(2, 1, 7, 3) * s_grad[3 * 6 + 5]).epsilon(1e-12));
}

TEST_CASE("routing invariants: couplings sum to 1 over classes, |v| < 1", "[routing]") {
    Rng rng(15);
    Tensor<float, 4> u_hat({4, 1152, 10, 16});
    fill_random(u_hat, rng, -2, 2);  // large votes drive |s| far above 1 and the softmax towards one-hot
    Tensor<float, 3> v;
    RoutingState<float> state;
    routing_forward(u_hat, 3, state, v);
    auto sums = xt::eval(xt::sum(state.coupling, {3}));
    CHECK(xt::amax(xt::abs(sums - 1.0f))() < 1e-5f);  // 10 float terms: rounding ~1e-7 each
    CHECK(xt::amin(state.coupling)() >= 0.0f);
    Tensor<float, 2> lengths;
    capsule_lengths(v, lengths);
    CHECK(xt::amax(lengths)() < 1.0f);
    CHECK(xt::amin(lengths)() >= 0.0f);
    CHECK(xt::all(xt::isfinite(v)));
    // The routing must actually route: after 3 iterations the couplings are no longer uniform.
    CHECK(xt::amax(xt::abs(xt::view(state.coupling, 2) - 0.1f))() > 1e-3f);
}

TEST_CASE("margin loss: known values", "[losses]") {
    Config config;  // m+ = 0.9, m- = 0.1, lambda = 0.5
    Tensor<double, 2> lengths = {{0.5, 0.3, 0.05}, {0.95, 0.0, 0.2}};
    // sample 0, label 0: (0.9-0.5)^2 + 0.5*(0.3-0.1)^2 + 0 = 0.16 + 0.02 = 0.18
    // sample 1, label 2: 0.5*(0.95-0.1)^2 + 0 + (0.9-0.2)^2 = 0.36125 + 0.49 = 0.85125
    const double loss = margin_loss_forward(lengths, {0, 2}, config);
    // The margins are stored as float (0.9f = 0.899999976...), so agreement is to float precision.
    CHECK(loss == Approx((0.18 + 0.85125) / 2).epsilon(1e-6));
    CHECK_THROWS_AS(margin_loss_forward(lengths, {0, 3}, config), Error);
    CHECK_THROWS_AS(margin_loss_forward(lengths, {0}, config), Error);
}

TEST_CASE("margin and reconstruction losses: gradients", "[losses][gradient]") {
    Rng rng(16);
    Config config;
    Tensor<double, 3> v({3, 10, 16});
    fill_random(v, rng, -0.3, 0.3);
    const std::vector<int> labels = {2, 7, 0};
    auto loss = [&] {
        Tensor<double, 2> lengths;
        capsule_lengths(v, lengths);
        return margin_loss_forward(lengths, labels, config);
    };
    Tensor<double, 2> lengths;
    capsule_lengths(v, lengths);
    Tensor<double, 3> grad;
    margin_loss_backward(v, lengths, labels, config, grad);
    check_tensor_gradient("v", v, grad, loss, 1000, rng);

    Tensor<double, 2> reconstruction({3, 784});
    Tensor<double, 4> images({3, 1, 28, 28});
    fill_random(reconstruction, rng, 0, 1);
    fill_random(images, rng, 0, 1);
    auto recon_loss = [&] { return reconstruction_loss_forward(reconstruction, images, 0.0005); };
    // Known value: all errors 0.5 -> 0.0005 * 784 * 0.25 (the batch mean of identical samples).
    Tensor<double, 2> half = xt::zeros<double>({3, 784}) + 0.5;
    Tensor<double, 4> zeros = xt::zeros<double>({3, 1, 28, 28});
    CHECK(reconstruction_loss_forward(half, zeros, 0.0005) == Approx(0.0005 * 784 * 0.25).epsilon(1e-12));
    Tensor<double, 2> recon_grad;
    reconstruction_loss_backward(reconstruction, images, 0.0005, recon_grad);
    // The loss is quadratic in the reconstruction, so central differences are exact for any step: a large
    // one makes the rounding noise (~sqrt(2352) ulps of |L| / h) negligible against gradients of ~1e-6.
    capsnet_test::FdOptions quadratic;
    quadratic.step = 1e-2;
    check_tensor_gradient("reconstruction", reconstruction, recon_grad, recon_loss, 300, rng, quadratic);
}
