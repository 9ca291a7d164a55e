// The browser demo's computations (wasm/demo_engine.hpp) on the shipped model and real MNIST digits:
// - one image at a time agrees with the batched model the trainer and `capsnet eval` use;
// - the wasm build's outputs equal the native build's: the native run of this test writes its outputs to
//   a reference file, the wasm run (under node, after the native one in scripts/test.sh) compares.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>
#include <xtensor/xsort.hpp>
#include <xtensor/xview.hpp>

#include "capsnet/idx.hpp"
#include "capsnet/visualize.hpp"
#include "demo_engine.hpp"
#include "mnist_fixture.hpp"
#include "native_reference.hpp"

using namespace capsnet;

namespace {

const std::string shipped_model = std::string(CAPSNET_SOURCE_DIR) + "/web/model/capsnet-seed-i8.safetensors";

std::string reference_path() {
    if (const char* path = std::getenv("CAPSNET_DEMO_REFERENCE")) return path;
    return std::string(CAPSNET_SOURCE_DIR) + "/build/demo-engine-reference.bin";
}

DemoImage test_image(const MnistSplit& split, std::size_t index) {
    DemoImage image;
    std::copy_n(split.images.pixels.begin() + index * demo_image_pixels, demo_image_pixels, image.begin());
    return image;
}

// Everything the demo shows for the first `count` test digits, flattened: lengths, mask grids, the routing
// view's couplings and attribution, and for three digits the interpolation grid of the predicted capsule
// and a pose sweep (5 angles, warped as in the pose lab).
std::vector<float> demo_outputs(DemoEngine& engine, const MnistSplit& split, std::size_t count) {
    const std::vector<float> offsets = sweep_offsets(-0.25f, 0.25f, 0.05f);
    std::vector<float> outputs;
    for (std::size_t i = 0; i < count; ++i) {
        const DemoAnalysis analysis = engine.classify(test_image(split, i));
        outputs.insert(outputs.end(), analysis.lengths.begin(), analysis.lengths.end());
        const RoutingView routing = engine.routing();
        outputs.insert(outputs.end(), routing.trace.coupling.begin(), routing.trace.coupling.end());
        outputs.insert(outputs.end(), routing.attribution_normalized.begin(), routing.attribution_normalized.end());
        const Tensor<float, 2> mask = engine.mask_grid(analysis.capsules);
        outputs.insert(outputs.end(), mask.begin(), mask.end());
        if (i < 3) {  // the sweeps are 176 pictures each: three digits are plenty
            const Tensor<float, 3> sweep = engine.sweep_grid(analysis.capsules, analysis.prediction, offsets);
            outputs.insert(outputs.end(), sweep.begin(), sweep.end());
            const PoseSweep pose = engine.pose_sweep(test_image(split, i), false, AffineTransform{}, PoseAxis::rotation,
                                                     {-60, -30, 0, 30, 60}, analysis.prediction);
            outputs.insert(outputs.end(), pose.lengths.begin(), pose.lengths.end());
            outputs.insert(outputs.end(), pose.capsule.begin(), pose.capsule.end());
        }
    }
    return outputs;
}

}  // namespace

TEST_CASE("one image at a time agrees with the batched model", "[demo][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const MnistSplit test = mnist_load(capsnet_test::mnist_directory(), "t10k");
    DemoEngine engine(model_load(shipped_model));
    const std::size_t count = 32;

    Tensor<float, 4> images = xt::zeros<float>({count, std::size_t{1}, std::size_t{28}, std::size_t{28}});
    std::transform(test.images.pixels.begin(), test.images.pixels.begin() + count * demo_image_pixels, images.begin(),
                   [](std::uint8_t v) { return v / 255.0f; });
    ForwardState<float> batch;
    model_forward(engine.model().config, engine.model().params, images, DecoderMask::predictions, {}, batch);

    int correct = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const DemoAnalysis analysis = engine.classify(test_image(test, i));
        // Same weights and inputs; only the GEMM's blocking over the batch differs, which reorders float
        // sums: lengths in [0,1) agree to ~1e-6, so 1e-5 leaves a margin of 10.
        for (int j = 0; j < 10; ++j) REQUIRE(std::abs(analysis.lengths[j] - batch.lengths(i, j)) <= 1e-5f);
        REQUIRE(analysis.prediction == batch.mask_labels[i]);
        correct += analysis.prediction == test.labels[i];
        // The mask grid's picture for the predicted capsule is the decoder's inference output.
        const Tensor<float, 2> mask = engine.mask_grid(analysis.capsules);
        for (int p = 0; p < demo_image_pixels; ++p)
            REQUIRE(std::abs(mask(analysis.prediction, p) - batch.reconstruction(i, p)) <= 1e-5f);
        // The sliders' view of the unedited capsule is that same picture.
        const float* row = analysis.capsules.data() + analysis.prediction * 16;
        const std::vector<float> slider = engine.reconstruct(std::vector<float>(row, row + 16), analysis.prediction);
        for (int p = 0; p < demo_image_pixels; ++p) REQUIRE(std::abs(slider[p] - mask(analysis.prediction, p)) <= 1e-5f);
    }
    // The shipped model scores 99.07% on the test set; 30 of these 32 is a loose floor that still fails
    // if the input scaling (bytes / 255) or the capsule order were wrong (chance is ~3 of 32).
    CHECK(correct >= 30);

    // A blank input is not classified.
    CHECK(engine.classify(DemoImage{}).prediction == -1);
}

TEST_CASE("the wasm build's outputs equal the native build's", "[demo][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const MnistSplit test = mnist_load(capsnet_test::mnist_directory(), "t10k");
    DemoEngine engine(model_load(shipped_model));
    const std::vector<float> outputs = demo_outputs(engine, test, 20);
    const std::optional<float> worst =
        capsnet_test::compare_with_native_reference(reference_path(), outputs, "test_demo_engine");
    if (!worst) return;  // the native run (the reference), or no reference to compare with
    // Native uses OpenBLAS with AVX2+FMA, wasm the xsimd GEMM on SIMD128 without FMA: the same float math
    // summed in another order. Lengths and pixels live in [0,1]; the measured worst difference is printed
    // (about 1e-6); 1e-4 is far below anything visible (a pixel is drawn in 1/255 steps) yet fails on
    // any real divergence such as a different routing or a misread weight.
    INFO("worst |wasm - native| over " << outputs.size() << " values: " << *worst);
    WARN("worst |wasm - native| over " << outputs.size() << " values: " << *worst);
    CHECK(*worst <= 1e-4f);
}

TEST_CASE("pose lab: the identity keeps the input, a transform moves it, and the sweep matches the live view",
          "[demo][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const MnistSplit test = mnist_load(capsnet_test::mnist_directory(), "t10k");
    DemoEngine engine(model_load(shipped_model));
    const DemoImage base = test_image(test, 0);

    // Warping the 28x28 input: the identity is an exact copy and a quarter turn moves every pixel exactly
    // (affine.hpp snaps samples onto pixel centres), counter-clockwise: output (r, c) = input (c, 27 - r).
    CHECK(demo_pose_input(base, AffineTransform{}, false) == base);
    AffineTransform quarter;
    quarter.rotation_degrees = 90;
    const DemoImage turned = demo_pose_input(base, quarter, false);
    for (int r = 0; r < demo_image_side; ++r)
        for (int c = 0; c < demo_image_side; ++c)
            REQUIRE(int(turned[r * demo_image_side + c]) == int(base[c * demo_image_side + (demo_image_side - 1 - r)]));
    // Refitting: a blank stays blank; a refitted digit fits the preprocessing's 20-pixel box again, even
    // when the transform made it larger, and keeps most of its ink (the box filter conserves ink; the
    // upscale's blur and the rounding to bytes change it by a few percent, 25% is a loose bound).
    CHECK(demo_pose_input(DemoImage{}, quarter, true) == DemoImage{});
    AffineTransform enlarged;
    enlarged.scale = 1.5f;
    for (const AffineTransform& transform : {AffineTransform{}, enlarged}) {
        const DemoImage refitted = demo_pose_input(base, transform, true);
        long ink_base = 0, ink_refitted = 0;
        int top = demo_image_side, bottom = -1, left = demo_image_side, right = -1;
        for (int p = 0; p < demo_image_pixels; ++p) {
            ink_base += base[p], ink_refitted += refitted[p];
            if (refitted[p] == 0) continue;
            const int r = p / demo_image_side, c = p % demo_image_side;
            top = std::min(top, r), bottom = std::max(bottom, r), left = std::min(left, c), right = std::max(right, c);
        }
        CHECK(bottom - top + 1 <= 20);
        CHECK(right - left + 1 <= 20);
        CHECK(std::max(bottom - top, right - left) + 1 >= 19);  // the longer side is fitted to 20
        if (transform.scale == 1) CHECK(std::abs(double(ink_refitted - ink_base)) <= 0.25 * double(ink_base));
    }

    // The sweep classifies what the live view classifies, value by value: the same inputs, in batches
    // against one at a time, so equal to float rounding (1e-5, as in the batched-model test above).
    AffineTransform pose;
    pose.shear = 0.2f;
    const std::vector<float> angles = {-30, 0, 45};
    for (bool refit : {false, true}) {
        const PoseSweep sweep = engine.pose_sweep(base, refit, pose, PoseAxis::rotation, angles, 7);
        REQUIRE(sweep.lengths.shape(0) == angles.size());
        for (std::size_t k = 0; k < angles.size(); ++k) {
            AffineTransform at = pose;
            at.rotation_degrees = angles[k];
            const DemoAnalysis live = engine.classify(demo_pose_input(base, at, refit));
            for (int j = 0; j < 10; ++j) REQUIRE(std::abs(sweep.lengths(k, j) - live.lengths[j]) <= 1e-5f);
            for (int d = 0; d < 16; ++d) REQUIRE(std::abs(sweep.capsule(k, d) - live.capsules(7, d)) <= 1e-5f);
            REQUIRE(sweep.predictions[k] == live.prediction);
        }
    }
    // Rotation reaches the network: 45 degrees changes the lengths.
    const DemoAnalysis upright = engine.classify(base);
    AffineTransform tilted;
    tilted.rotation_degrees = 45;
    const DemoAnalysis rotated = engine.classify(demo_pose_input(base, tilted, false));
    float change = 0;
    for (int j = 0; j < 10; ++j) change = std::max(change, std::abs(rotated.lengths[j] - upright.lengths[j]));
    CHECK(change > 0.01f);
}

TEST_CASE("routing view of the demo: the last classify's routing, couplings summing to 1", "[demo][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const MnistSplit test = mnist_load(capsnet_test::mnist_directory(), "t10k");
    DemoEngine engine(model_load(shipped_model));
    const DemoAnalysis analysis = engine.classify(test_image(test, 1));
    const RoutingView view = engine.routing();
    const int R = engine.model().config.routing_iterations;
    REQUIRE(view.trace.iterations() == R);
    // The last iteration's lengths are the class scores classify returned, from the same v: routing_view
    // recomputes |v| with a plain loop where capsule_lengths uses xtensor's (vectorised) sum, so they
    // agree to the float rounding of values below 1: 1e-6.
    for (int j = 0; j < 10; ++j) REQUIRE(std::abs(view.trace.lengths(R - 1, j) - analysis.lengths[j]) <= 1e-6f);
    for (int r = 0; r < R; ++r)
        for (int i = 0; i < 1152; ++i) {
            float total = 0;
            for (int j = 0; j < 10; ++j) total += view.trace.coupling(r, i, j);
            REQUIRE(std::abs(total - 1.0f) <= 1e-5f);  // a float softmax over 10 values: ~1e-7 off
        }
    // A blank input votes nowhere.
    engine.classify(DemoImage{});
    const RoutingView blank = engine.routing();
    CHECK(xt::amax(blank.attribution)() == 0.0f);
}

TEST_CASE("the gallery file is parsed and checked", "[demo]") {
    std::vector<std::uint8_t> file = {'C', 'N', 'G', '1', 2, 0, 0, 0};
    for (int digit = 0; digit < 2; ++digit) {
        file.push_back(static_cast<std::uint8_t>(7 + digit));
        for (int p = 0; p < demo_image_pixels; ++p) file.push_back(static_cast<std::uint8_t>((p + digit) % 256));
    }
    const std::vector<GalleryDigit> digits = gallery_parse(file);
    REQUIRE(digits.size() == 2);
    CHECK(digits[1].label == 8);
    CHECK(digits[1].pixels[0] == 1);
    CHECK(digits[1].pixels[783] == (783 + 1) % 256);

    std::vector<std::uint8_t> truncated(file.begin(), file.end() - 1);
    CHECK_THROWS_WITH(gallery_parse(truncated), Catch::Contains("do not hold 2 digits"));
    std::vector<std::uint8_t> bad_label = file;
    bad_label[8] = 10;
    CHECK_THROWS_WITH(gallery_parse(bad_label), Catch::Contains("label 10"));
    CHECK_THROWS_WITH(gallery_parse({'P', 'N', 'G'}), Catch::Contains("not a CNG1"));

    // gallery_serialize writes exactly this file back (the Teach panel's storage), and refuses a non-digit.
    CHECK(gallery_serialize(digits) == file);
    CHECK(gallery_serialize({}) == std::vector<std::uint8_t>{'C', 'N', 'G', '1', 0, 0, 0, 0});
    CHECK_THROWS_WITH(gallery_serialize({GalleryDigit{12, {}}}), Catch::Contains("label 12"));
}
