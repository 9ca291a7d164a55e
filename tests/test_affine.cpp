// Affine warps (affine.hpp): exact cases (identity, quarter turns, whole-pixel shifts) compared pixel for
// pixel, round trips and ink within stated tolerances, the units and directions of every field, the
// validation; and the pose sweep against the plain forward pass.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <catch2/catch.hpp>
#include <xtensor/xmath.hpp>

#include "capsnet/affine.hpp"
#include "capsnet/drawing.hpp"
#include "capsnet/random.hpp"
#include "capsnet/visualize.hpp"
#include "capsnet/weights.hpp"

using namespace capsnet;

namespace {

Tensor<float, 2> random_image(std::size_t rows, std::size_t cols, std::uint64_t seed) {
    Rng rng(seed);
    Tensor<float, 2> image = xt::zeros<float>({rows, cols});
    for (float& v : image) v = static_cast<float>(rng.uniform(0.0, 1.0));
    return image;
}

// A smooth blob (Gaussian of the given sigma in pixels) centred at plane point (x, y): bilinear
// resampling of it is accurate, so round trips can be held to tight tolerances.
Tensor<float, 2> blob(std::size_t side, double x, double y, double sigma) {
    Tensor<float, 2> image = xt::zeros<float>({side, side});
    for (std::size_t r = 0; r < side; ++r)
        for (std::size_t c = 0; c < side; ++c) {
            const double dx = c + 0.5 - x, dy = r + 0.5 - y;
            image(r, c) = static_cast<float>(std::exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)));
        }
    return image;
}

// Two blobs of different sizes and heights, off-centre, so a wrong direction or centre cannot pass.
Tensor<float, 2> smooth_scene(std::size_t side) {
    const double s = double(side);
    Tensor<float, 2> image = blob(side, 0.42 * s, 0.38 * s, 0.07 * s) + 0.5f * blob(side, 0.62 * s, 0.6 * s, 0.06 * s);
    return image;
}

// Centre of mass in plane coordinates (x, y).
std::pair<double, double> centre_of_mass(const Tensor<float, 2>& image) {
    double mass = 0, x = 0, y = 0;
    for (std::size_t r = 0; r < image.shape(0); ++r)
        for (std::size_t c = 0; c < image.shape(1); ++c) {
            mass += image(r, c), x += image(r, c) * (c + 0.5), y += image(r, c) * (r + 0.5);
        }
    return {x / mass, y / mass};
}

// Largest |a - b| over the pixels whose centre lies within `radius` of the image centre.
double max_difference_within(const Tensor<float, 2>& a, const Tensor<float, 2>& b, double radius) {
    double worst = 0;
    const double cx = a.shape(1) / 2.0, cy = a.shape(0) / 2.0;
    for (std::size_t r = 0; r < a.shape(0); ++r)
        for (std::size_t c = 0; c < a.shape(1); ++c)
            if (std::hypot(c + 0.5 - cx, r + 0.5 - cy) <= radius)
                worst = std::max(worst, std::abs(double(a(r, c)) - double(b(r, c))));
    return worst;
}

double ink(const Tensor<float, 2>& image) { return xt::sum(image, xt::evaluation_strategy::immediate)(); }

bool identical(const Tensor<float, 2>& a, const Tensor<float, 2>& b) {
    return a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin());
}

// A "1"-ish and a "7"-ish drawing, the kind of input the pose lab warps.
Stroke line(float x0, float y0, float x1, float y1, float width) { return Stroke{{{x0, y0}, {x1, y1}}, width}; }
std::vector<Stroke> seven() {
    return {Stroke{{{0.3f, 0.3f}, {0.7f, 0.3f}, {0.45f, 0.75f}}, 0.08f}};
}

}  // namespace

TEST_CASE("affine: the identity copies every pixel exactly", "[affine]") {
    const Tensor<float, 2> image = random_image(20, 31, 1);
    CHECK(identical(affine_warp(image, {}), image));
    // A transform that is the identity in effect (a full turn) is exact too: the snap absorbs cos/sin's
    // rounding.
    AffineTransform full_turn;
    full_turn.rotation_degrees = 360;
    CHECK(identical(affine_warp(image, full_turn), image));
}

TEST_CASE("affine: +90 degrees turns a square image counter-clockwise, pixel for pixel", "[affine]") {
    for (std::size_t n : {7u, 8u, 28u}) {
        INFO("side " << n);
        const Tensor<float, 2> image = random_image(n, n, n);
        AffineTransform quarter;
        quarter.rotation_degrees = 90;
        const Tensor<float, 2> turned = affine_warp(image, quarter);
        // Counter-clockwise on screen (numpy's rot90): the top row becomes the left column, read upwards,
        // so the top-right pixel lands top-left.
        bool exact = true;
        for (std::size_t r = 0; r < n; ++r)
            for (std::size_t c = 0; c < n; ++c) exact = exact && turned(r, c) == image(c, n - 1 - r);
        CHECK(exact);
        quarter.rotation_degrees = -90;
        const Tensor<float, 2> back = affine_warp(turned, quarter);
        CHECK(identical(back, image));
        quarter.rotation_degrees = 180;
        const Tensor<float, 2> half = affine_warp(image, quarter);
        for (std::size_t r = 0; r < n; ++r)
            for (std::size_t c = 0; c < n; ++c) exact = exact && half(r, c) == image(n - 1 - r, n - 1 - c);
        CHECK(exact);
    }
    // The matrix says the same: the middle of the right edge goes to the middle of the top edge.
    AffineTransform quarter;
    quarter.rotation_degrees = 90;
    const AffineMatrix m = affine_matrix(quarter, 28, 28);
    CHECK(m[0] * 28 + m[1] * 14 + m[2] == Approx(14).margin(1e-12));
    CHECK(m[3] * 28 + m[4] * 14 + m[5] == Approx(0).margin(1e-12));
}

TEST_CASE("affine: translation by whole pixels is an exact shift, in fractions of the side", "[affine]") {
    const Tensor<float, 2> image = random_image(28, 28, 4);
    AffineTransform shift;
    shift.translate_x = 3.0f / 28;   // 3 pixels right
    shift.translate_y = -2.0f / 28;  // 2 pixels up (y points down)
    const Tensor<float, 2> moved = affine_warp(image, shift);
    bool exact = true;
    for (int r = 0; r < 28; ++r)
        for (int c = 0; c < 28; ++c) {
            const int from_r = r + 2, from_c = c - 3;
            const float expected = from_r < 28 && from_c >= 0 ? image(from_r, from_c) : 0.0f;
            exact = exact && moved(r, c) == expected;
        }
    CHECK(exact);
    // The same fraction means the same share of the side on a large canvas: 0.1 of 28 is 2.8 pixels,
    // of 280 it is 28 (a blob far from the borders, whose centre of mass moves with it; 1e-3 px).
    for (std::size_t side : {28u, 280u}) {
        const Tensor<float, 2> b = blob(side, side * 0.45, side * 0.5, side * 0.08);
        AffineTransform t;
        t.translate_x = 0.1f;
        t.translate_y = 0.05f;
        const auto [x0, y0] = centre_of_mass(b);
        const auto [x1, y1] = centre_of_mass(affine_warp(b, t));
        CHECK(x1 - x0 == Approx(0.1 * side).margin(1e-3 * side));
        CHECK(y1 - y0 == Approx(0.05 * side).margin(1e-3 * side));
    }
}

TEST_CASE("affine: +a then -a degrees returns the image away from the borders", "[affine]") {
    const Tensor<float, 2> image = smooth_scene(64);
    for (float degrees : {5.0f, 30.0f, 60.0f}) {
        INFO(degrees << " degrees");
        AffineTransform there, back;
        there.rotation_degrees = degrees;
        back.rotation_degrees = -degrees;
        const Tensor<float, 2> round_trip = affine_warp(affine_warp(image, there), back);
        // Each bilinear resampling blurs a little: a blob of sigma 3.8-4.5 px (peak 1) sampled half a pixel
        // off on both axes loses ~0.012 at its peak. Measured worst after the two: 0.023 (5 degrees), 0.019
        // (30, 60); tolerance 0.035. The one-way change is larger (0.11 at 5 degrees, 0.9 at 60).
        CHECK(max_difference_within(round_trip, image, 24) < 0.035);
        CHECK(max_difference_within(affine_warp(image, there), image, 24) > 0.08);  // it did move
    }
}

TEST_CASE("affine: scale 2 then 0.5 returns the image; scale grows about the centre", "[affine]") {
    // Content within the central half, so enlarging by 2 keeps it all.
    const Tensor<float, 2> image = blob(64, 28, 34, 3.0) + 0.5f * blob(64, 36, 30, 2.5);
    AffineTransform grow, shrink;
    grow.scale = 2;
    shrink.scale = 0.5f;
    const Tensor<float, 2> round_trip = affine_warp(affine_warp(image, grow), shrink);
    // The shrink samples the enlarged image halfway between its pixel centres, which blurs blobs of sigma
    // 2.5-3 px: measured worst 0.025; tolerance 0.035.
    CHECK(max_difference_within(round_trip, image, 30) < 0.035);
    // Enlarging moves the centre of mass away from the image centre (32, 32) by the factor, and the ink
    // grows with the area (4x; measured 3.9999, tolerance 1%: the blobs are smooth and stay inside).
    const Tensor<float, 2> grown = affine_warp(image, grow);
    const auto [x0, y0] = centre_of_mass(image);
    const auto [x1, y1] = centre_of_mass(grown);
    CHECK(x1 - 32 == Approx(2 * (x0 - 32)).margin(0.01));
    CHECK(y1 - 32 == Approx(2 * (y0 - 32)).margin(0.01));
    CHECK(ink(grown) == Approx(4 * ink(image)).epsilon(0.01));
}

TEST_CASE("affine: small rotations conserve the ink of a drawing far from the border", "[affine]") {
    // A sharp-edged, antialiased drawing (the pose lab's input), ink well inside the canvas.
    const Tensor<float, 2> drawing = drawing_rasterize(seven(), 96);
    const double before = ink(drawing);
    for (float degrees : {-15.0f, -5.0f, 2.5f, 10.0f}) {
        INFO(degrees << " degrees");
        AffineTransform t;
        t.rotation_degrees = degrees;
        // Bilinear weights sum to 1 and a rotation keeps areas, so only the edges' sampling changes the
        // sum: measured within 1e-4 (relative); tolerance 1e-3.
        CHECK(ink(affine_warp(drawing, t)) == Approx(before).epsilon(1e-3));
    }
}

TEST_CASE("affine: positive shear leans the top to the right", "[affine]") {
    // A vertical bar through the centre of a 40x40 image.
    const Tensor<float, 2> bar = drawing_rasterize({line(0.5f, 0.2f, 0.5f, 0.8f, 0.05f)}, 40);
    AffineTransform t;
    t.shear = 0.5f;
    const Tensor<float, 2> leaning = affine_warp(bar, t);
    const auto row_centre = [&](std::size_t r) {
        double mass = 0, x = 0;
        for (std::size_t c = 0; c < 40; ++c) mass += leaning(r, c), x += leaning(r, c) * (c + 0.5);
        return x / mass;
    };
    // Row 10's centre is 9.5 px above the image centre (y = 20): it moves right by 0.5 * 9.5 (exact for
    // a bar symmetric about its column, up to the bilinear blur; 0.05 px).
    CHECK(row_centre(10) - 20 == Approx(0.5 * 9.5).margin(0.05));
    CHECK(row_centre(29) - 20 == Approx(-0.5 * 9.5).margin(0.05));
    // The inverse matrix undoes the forward one.
    t.rotation_degrees = 33;
    t.scale = 1.3f;
    t.translate_x = 0.1f;
    const AffineMatrix m = affine_matrix(t, 30, 50), inverse = affine_matrix_inverse(m);
    const double x = 7.25, y = 19.5;
    const double fx = m[0] * x + m[1] * y + m[2], fy = m[3] * x + m[4] * y + m[5];
    CHECK(inverse[0] * fx + inverse[1] * fy + inverse[2] == Approx(x).margin(1e-12));
    CHECK(inverse[3] * fx + inverse[4] * fy + inverse[5] == Approx(y).margin(1e-12));
}

TEST_CASE("affine: invalid fields and images are errors that name the problem", "[affine]") {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const Tensor<float, 2> image = random_image(8, 8, 2);
    struct Case {
        AffineTransform transform;
        const char* field;
    };
    const Case cases[] = {
        {{nan, 1, 0, 0, 0}, "rotation_degrees"}, {{400, 1, 0, 0, 0}, "rotation_degrees"},
        {{0, 0, 0, 0, 0}, "scale"},              {{0, -1, 0, 0, 0}, "scale"},
        {{0, inf, 0, 0, 0}, "scale"},            {{0, 1, 3, 0, 0}, "shear"},
        {{0, 1, 0, 1.5f, 0}, "translate_x"},     {{0, 1, 0, 0, -inf}, "translate_y"},
    };
    for (const Case& c : cases) {
        INFO(c.field);
        CHECK_THROWS_WITH(affine_warp(image, c.transform), Catch::Contains(c.field));
        CHECK_THROWS_AS(affine_validate(c.transform), Error);
    }
    CHECK_NOTHROW(affine_validate({-360, 0.1f, -2, -1, 1}));
    CHECK_THROWS_WITH(affine_warp(Tensor<float, 2>(xt::zeros<float>({0, 5})), {}), Catch::Contains("1..4096"));
    Tensor<float, 2> dirty = image;
    dirty(3, 3) = nan;
    CHECK_THROWS_WITH(affine_warp(dirty, {}), Catch::Contains("non-finite"));
    CHECK_THROWS_WITH(pose_input_bytes(image, PoseSource::mnist, {}), Catch::Contains("28x28"));
}

// ---------------------------------------------------------------------------------------------------
// The pose sweep

namespace {

struct TestModel {
    Config config;
    Parameters<float> params;
};

TestModel random_model() {
    TestModel m{config_for_preset(Preset::seed), {}};
    Rng rng(11);
    m.params = parameters_init<float>(m.config, rng);
    return m;
}

// The plain forward pass on one byte-valued image, as the demo's classify runs it.
ForwardState<float> plain_forward(const TestModel& model, const std::vector<std::uint8_t>& bytes) {
    Tensor<float, 4> input = xt::zeros<float>({std::size_t{1}, std::size_t{1}, std::size_t{28}, std::size_t{28}});
    std::transform(bytes.begin(), bytes.end(), input.data(), [](std::uint8_t b) { return b / 255.0f; });
    ForwardState<float> state;
    model_forward(model.config, model.params, input, DecoderMask::none, {}, state);
    return state;
}

}  // namespace

TEST_CASE("pose sweep: rotation 0 gives the plain forward's lengths, other angles differ, batches line up", "[affine][pose]") {
    const TestModel model = random_model();
    const Tensor<float, 2> digit = drawing_to_mnist(drawing_rasterize(seven(), 28));
    const std::vector<float> angles = sweep_offsets(-60, 60, 15);  // the pose lab's kind of axis
    REQUIRE(angles.size() == 9);
    REQUIRE(angles[4] == 0.0f);
    ForwardState<float> scratch;
    const int chosen = 7;
    const PoseSweep sweep = pose_sweep(model.config, model.params, digit, PoseSource::mnist, {}, PoseAxis::rotation,
                                       angles, chosen, scratch);
    REQUIRE(sweep.values == angles);
    REQUIRE(sweep.lengths.shape(0) == 9);
    REQUIRE(sweep.lengths.shape(1) == 10);
    REQUIRE(sweep.capsule.shape(1) == 16);
    REQUIRE(sweep.predictions.size() == 9);

    // The sweep runs batches of pose_sweep_batch, the plain forward one image: the same float math
    // blocked differently by the GEMM, so lengths and capsule values (below 1) agree to ~1e-6; 1e-5
    // leaves a margin of 10 and is far below the 1e-4 by which other angles differ.
    const ForwardState<float> plain = plain_forward(model, drawing_to_bytes(digit));
    float worst = 0;
    for (int j = 0; j < 10; ++j) worst = std::max(worst, std::abs(sweep.lengths(4, j) - plain.lengths(0, j)));
    for (int d = 0; d < 16; ++d) worst = std::max(worst, std::abs(sweep.capsule(4, d) - plain.digit_capsules(0, chosen, d)));
    CHECK(worst <= 1e-5f);
    CHECK(sweep.predictions[4] == predicted_classes(plain.lengths)[0]);
    // Every other angle is another input, so other lengths (a random model's respond by ~1e-2; 1e-4 is
    // far above float noise, which is 0 here: the same input gives bit-identical outputs).
    for (std::size_t i = 0; i < angles.size(); ++i) {
        if (i == 4) continue;
        double change = 0;
        for (int j = 0; j < 10; ++j) change = std::max(change, std::abs(double(sweep.lengths(i, j)) - sweep.lengths(4, j)));
        INFO(angles[i] << " degrees");
        CHECK(change > 1e-4);
    }
    // The sweep at a value is the live view at that pose: pose_input_bytes then the forward.
    const ForwardState<float> at_30 = plain_forward(model, pose_input_bytes(digit, PoseSource::mnist, affine_with({}, PoseAxis::rotation, 30)));
    CHECK(std::abs(sweep.lengths(6, 3) - at_30.lengths(0, 3)) <= 1e-5f);
    // More values than one batch: the values after the first batch line up with their inputs too.
    const std::vector<float> many = sweep_offsets(-60, 60, 5);
    REQUIRE(many.size() > pose_sweep_batch);
    const PoseSweep long_sweep = pose_sweep(model.config, model.params, digit, PoseSource::mnist, {}, PoseAxis::rotation,
                                            many, chosen, scratch);
    for (std::size_t i : {std::size_t{0}, pose_sweep_batch, many.size() - 1}) {
        const ForwardState<float> at = plain_forward(model, pose_input_bytes(digit, PoseSource::mnist,
                                                                             affine_with({}, PoseAxis::rotation, many[i])));
        INFO(many[i] << " degrees");
        for (int j = 0; j < 10; ++j) REQUIRE(std::abs(long_sweep.lengths(i, j) - at.lengths(0, j)) <= 1e-5f);
        for (int d = 0; d < 16; ++d)
            REQUIRE(std::abs(long_sweep.capsule(i, d) - at.digit_capsules(0, chosen, d)) <= 1e-5f);
    }
}

TEST_CASE("pose sweep: a canvas goes through the MNIST preprocessing after the warp", "[affine][pose]") {
    const Tensor<float, 2> canvas = drawing_rasterize(seven(), 280);
    CHECK(pose_input_bytes(canvas, PoseSource::canvas, {}) == drawing_to_bytes(drawing_to_mnist(canvas)));
    AffineTransform turn;
    turn.rotation_degrees = 20;
    CHECK(pose_input_bytes(canvas, PoseSource::canvas, turn) ==
          drawing_to_bytes(drawing_to_mnist(affine_warp(canvas, turn))));
    CHECK(pose_input_bytes(canvas, PoseSource::canvas, turn) != pose_input_bytes(canvas, PoseSource::canvas, {}));
    // affine_with keeps the base pose's other fields.
    const AffineTransform both = affine_with(turn, PoseAxis::scale, 1.2f);
    CHECK(both.rotation_degrees == 20);
    CHECK(both.scale == 1.2f);

    const TestModel model = random_model();
    ForwardState<float> scratch;
    // A drawing moved a whole side off the canvas leaves it blank: nothing is predicted (-1), as in the
    // demo's classify.
    AffineTransform out;
    out.translate_x = 1;
    const PoseSweep away = pose_sweep(model.config, model.params, canvas, PoseSource::canvas, out, PoseAxis::rotation,
                                      {0}, 0, scratch);
    CHECK(away.predictions == std::vector<int>{-1});
    CHECK_THROWS_WITH(pose_sweep(model.config, model.params, canvas, PoseSource::canvas, {}, PoseAxis::scale, {1}, 10,
                                 scratch), Catch::Contains("capsule 10"));
    CHECK_THROWS_WITH(pose_sweep(model.config, model.params, canvas, PoseSource::canvas, {}, PoseAxis::scale, {}, 0,
                                 scratch), Catch::Contains("no values"));
    CHECK_THROWS_WITH(pose_sweep(model.config, model.params, canvas, PoseSource::canvas, {}, PoseAxis::scale, {0}, 0,
                                 scratch), Catch::Contains("scale"));
}

TEST_CASE("pose sweep: the shipped model reads a tilted 1 as a 1 and its lengths follow the angle", "[affine][pose]") {
    const Model model = model_load(std::string(CAPSNET_SOURCE_DIR) + "/web/model/capsnet-seed-i8.safetensors");
    const Tensor<float, 2> one = drawing_rasterize({line(0.5f, 0.2f, 0.5f, 0.8f, 0.08f)}, 280);
    ForwardState<float> scratch;
    const PoseSweep sweep = pose_sweep(model.config, model.params, one, PoseSource::canvas, {}, PoseAxis::rotation,
                                       {-20, -10, 0, 10, 20}, 1, scratch);
    for (std::size_t i = 0; i < sweep.values.size(); ++i) {
        INFO(sweep.values[i] << " degrees");
        CHECK(sweep.predictions[i] == 1);
    }
    // The lengths change with the angle (by far more than the 1e-6 of rounding), and the chosen capsule's
    // length is its vector's norm.
    CHECK(std::abs(sweep.lengths(0, 1) - sweep.lengths(2, 1)) + std::abs(sweep.lengths(0, 7) - sweep.lengths(2, 7)) > 1e-3);
    for (std::size_t i = 0; i < sweep.values.size(); ++i) {
        double norm = 0;
        for (int d = 0; d < 16; ++d) norm += double(sweep.capsule(i, d)) * sweep.capsule(i, d);
        CHECK(std::sqrt(norm) == Approx(sweep.lengths(i, 1)).epsilon(1e-5));
    }
}
