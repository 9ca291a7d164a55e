// The CUDA training backend against the CPU backend (the core's model_forward / model_loss /
// model_backward and adam_update, one thread): from the same parameters and batches, the reported losses,
// the gradients (read as Adam's first moments after one step), the parameters after three steps and the
// capsule lengths; for both presets and for the reconstruct=false, 1-iteration and stop-gradient variants.
// Also: two GPU runs from the same state agree bit for bit, and a resumed Adam state continues correctly.
//
// Tolerances (relative error norms |gpu - cpu| / |cpu| per tensor, tests/cuda_compare.hpp). For scale: the
// core in float against the core in double, on these same inputs (7 seeds tried), differs by < 5e-7 in the
// losses and lengths, < 1.1e-6 in the gradients and < 5e-5 in the parameters after three steps; the GPU's
// float results should differ from the CPU's float results by about as much again.
// - losses 1e-4, capsule lengths 1e-5: each forward value is a float sum (20736 products per primary conv
//   output, 1152 votes per digit capsule) that cuBLAS tiles and tree reductions take in another order.
// - gradients 1e-3 (read as Adam's first moment after one step from zero moments, m = 0.1 g): float sums
//   chained through the whole backward pass, about 10^5 terms deep (256 channels x 25 overlapping windows
//   per conv1 activation gradient, 1600 products per conv1 weight gradient, each over the 20736-term
//   forward values), in different orders, and routing's gradient runs back through every iteration
//   (softmax of agreements with earlier iterations' outputs), which amplifies rounding differences. A wrong
//   index or a missing term gives errors of order 1, far above 1e-3.
// - parameters after three Adam steps: not a plain relative norm. Adam divides each gradient by its own
//   running RMS, so an update is ~lr * sign(g) whatever the size of g: where a gradient element is near
//   zero, a rounding-level difference can flip its sign and move that weight by 2 lr on one side only,
//   an error of the size of the whole update. So the updates (parameters after minus before) are compared
//   in two ways that such a flip cannot break but a real error does:
//   * weighted by |m|, the CPU's first moment after the last step (the gradients' running mean): the
//     relative error norm of sqrt(sum m^2 (du_gpu - du_cpu)^2) / sqrt(sum m^2 du_cpu^2) <= 1e-3. A flip
//     happens only where |g| is at the level of the gradients' rounding noise (< 1e-3 of their RMS, the
//     gradient tolerance above), so it weighs < 1e-6 of the sum; a wrong layer weighs 1.
//   * the share of elements whose updates differ by more than lr / 10 is at most 0.1% (at least 2
//     elements allowed): sign flips are rare; a wrong kernel moves most elements of its tensor.
// - correct counts: equal, except that a sample whose two largest CPU lengths are within 1e-4 of each
//   other (10x the lengths' tolerance) may go either way, so the counts may differ by the number of
//   such near-ties.
// The inputs are fixed, so the outcome is deterministic; a failure prints every tensor's error.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/cpu_backend.hpp"
#include "cuda_backend.hpp"
#include "cuda_compare.hpp"

using namespace capsnet;
using capsnet_test::relative_error_norm;

namespace {

constexpr std::size_t test_batch = 4;
constexpr int test_steps = 3;
constexpr double learning_rate = 1e-3;

struct Batch {
    Tensor<float, 4> images;
    std::vector<int> labels;
};

Batch random_batch(std::size_t size, Rng& rng) {
    Batch batch{xt::zeros<float>({size, std::size_t(1), std::size_t(image_side), std::size_t(image_side)}),
                std::vector<int>(size)};
    for (auto& x : batch.images) x = static_cast<float>(rng.uniform01());
    for (int& label : batch.labels) label = static_cast<int>(rng.below(digit_classes));
    return batch;
}

struct Fixture {
    Parameters<float> params;
    std::vector<Batch> batches;
};

Fixture make_fixture(const Config& config) {
    Rng rng(11);
    Fixture fixture{parameters_init<float>(config, rng), {}};
    for (int s = 0; s < test_steps; ++s) fixture.batches.push_back(random_batch(test_batch, rng));
    return fixture;
}

// Calls check(name, error) for every tensor, with error = relative error norm of gpu against cpu.
template <class Check>
void compare_tensors(const Parameters<float>& gpu, const Parameters<float>& cpu, Check check) {
    visit_parameters(
        [&](const char* name, const auto& c, const auto& g) {
            INFO(name);
            REQUIRE(g.shape() == c.shape());
            check(name, relative_error_norm(g.data(), c.data(), c.size()));
        },
        cpu, gpu);
}

void check_tensors_close(const Parameters<float>& gpu, const Parameters<float>& cpu, double tolerance, const char* what) {
    // One line per tensor in the failure message, so a reviewer sees which layer drifted and by how much.
    std::string report;
    compare_tensors(gpu, cpu, [&](const char* name, double error) {
        report += std::string("  ") + what + " " + name + ": " + std::to_string(error) + "\n";
    });
    INFO(report);
    compare_tensors(gpu, cpu, [&](const char* name, double error) {
        INFO(what << " " << name << " relative error " << error);
        CHECK(error <= tolerance);
    });
}

bool relative_close(double gpu, double cpu, double tolerance) { return std::abs(gpu - cpu) <= tolerance * std::abs(cpu); }

// Samples whose two largest lengths are within `margin`: their predicted class may differ by rounding.
int near_ties(const Tensor<float, 2>& lengths, double margin) {
    int ties = 0;
    for (std::size_t b = 0; b < lengths.shape(0); ++b) {
        double first = -1, second = -1;
        for (std::size_t j = 0; j < lengths.shape(1); ++j) {
            const double x = lengths(b, j);
            if (x > first) {
                second = first;
                first = x;
            } else if (x > second) {
                second = x;
            }
        }
        ties += first - second < margin;
    }
    return ties;
}

// The post-Adam comparison described at the top: per tensor, the |m|-weighted relative error of the
// updates and the share of elements whose updates differ by more than lr / 10.
void check_updates_close(const Parameters<float>& start, const Parameters<float>& gpu, const Parameters<float>& cpu,
                         const Parameters<float>& cpu_first_moment, double lr) {
    visit_parameters(
        [&](const char* name, const auto& p0, const auto& pg, const auto& pc, const auto& m) {
            REQUIRE(pg.shape() == pc.shape());
            double diff = 0, norm = 0;
            std::size_t far = 0;
            for (std::size_t i = 0; i < pc.size(); ++i) {
                const double du_gpu = double(pg.data()[i]) - p0.data()[i], du_cpu = double(pc.data()[i]) - p0.data()[i];
                const double w = double(m.data()[i]) * m.data()[i];
                diff += w * (du_gpu - du_cpu) * (du_gpu - du_cpu);
                norm += w * du_cpu * du_cpu;
                far += std::abs(du_gpu - du_cpu) > lr / 10;
            }
            const double weighted = norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
            const std::size_t allowed = std::max<std::size_t>(2, pc.size() / 1000);
            INFO("parameter " << name << ": |m|-weighted update error " << weighted << ", " << far << " of " << pc.size()
                              << " elements differ by more than lr/10 (allowed " << allowed << ")");
            CHECK(weighted <= 1e-3);
            CHECK(far <= allowed);
        },
        start, gpu, cpu, cpu_first_moment);
}

void check_against_cpu(const Config& config) {
    const Fixture fixture = make_fixture(config);
    CpuBackend cpu(1);
    std::unique_ptr<TrainingBackend> gpu = make_cuda_backend(0);
    cpu.load(config, fixture.params, adam_init<float>(config));
    gpu->load(config, fixture.params, adam_init<float>(config));

    // Capsule lengths before any step, on a batch larger than the training batch (the backend grows its
    // buffers) and then on a smaller one.
    Rng rng(5);
    for (std::size_t size : {std::size_t(7), std::size_t(2)}) {
        const Batch batch = random_batch(size, rng);
        const Tensor<float, 2> expected = cpu.capsule_lengths(batch.images);
        const Tensor<float, 2> lengths = gpu->capsule_lengths(batch.images);
        REQUIRE(lengths.shape() == expected.shape());
        const double error = relative_error_norm(lengths.data(), expected.data(), expected.size());
        INFO("capsule lengths of " << size << " images: relative error " << error);
        CHECK(error <= 1e-5);
    }

    for (int s = 0; s < test_steps; ++s) {
        INFO("step " << s + 1);
        const Batch& batch = fixture.batches[static_cast<std::size_t>(s)];
        const int ties = near_ties(cpu.capsule_lengths(batch.images), 1e-4);  // the step's forward, before it
        const StepReport want = cpu.train_step(learning_rate, batch.images, batch.labels);
        const StepReport got = gpu->train_step(learning_rate, batch.images, batch.labels);
        INFO("margin loss gpu " << got.margin_loss << " cpu " << want.margin_loss << "; reconstruction loss gpu "
                                << got.reconstruction_loss << " cpu " << want.reconstruction_loss);
        CHECK(want.margin_loss > 0);
        CHECK(relative_close(got.margin_loss, want.margin_loss, 1e-4));
        CHECK(relative_close(got.reconstruction_loss, want.reconstruction_loss, 1e-4));
        if (!config.reconstruct) CHECK(got.reconstruction_loss == 0);
        INFO("correct gpu " << got.correct << " cpu " << want.correct << ", near-ties " << ties);
        CHECK(std::abs(got.correct - want.correct) <= ties);
        // After the first step from zero moments m = (1 - beta1) g: the gradients, scaled by 0.1.
        if (s == 0) check_tensors_close(gpu->adam_state().first_moment, cpu.adam_state().first_moment, 1e-3, "gradient");
    }
    CHECK(gpu->adam_state().step == test_steps);
    check_updates_close(fixture.params, gpu->parameters(), cpu.parameters(), cpu.adam_state().first_moment,
                        learning_rate);

    // And the lengths of the trained model.
    const Tensor<float, 2> expected = cpu.capsule_lengths(fixture.batches[0].images);
    const Tensor<float, 2> lengths = gpu->capsule_lengths(fixture.batches[0].images);
    const double error = relative_error_norm(lengths.data(), expected.data(), expected.size());
    INFO("capsule lengths after " << test_steps << " steps: relative error " << error);
    CHECK(error <= 1e-5);
}

bool same_bits(const Parameters<float>& a, const Parameters<float>& b) {
    bool same = true;
    visit_parameters(
        [&](const char*, const auto& x, const auto& y) {
            same = same && x.shape() == y.shape() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
        },
        a, b);
    return same;
}

}  // namespace

TEST_CASE("cuda backend: describes its device", "[cuda][backend]") {
    const std::string description = make_cuda_backend(0)->description();
    INFO(description);
    CHECK(description.rfind("cuda:0 (", 0) == 0);
    CHECK(description.size() > std::string("cuda:0 (, cuBLAS)").size());
    CHECK(description.substr(description.size() - 9) == ", cuBLAS)");
}

// TF32 rounds every product's inputs to 10 mantissa bits (relative 2^-11, about 5e-4 per input) and
// accumulates in float32: a long dot product's relative error then stays near 5e-4 (the rounding errors
// are independent and partly cancel), and the network's outputs (lengths, losses) inherit a few of those
// through conv1, conv2 and the routing: 1e-2 leaves a margin of about 10x over that, and a TF32 path
// that computed something else (a transposed operand, the wrong leading dimension) would be off by O(1).
TEST_CASE("cuda backend: TF32 products stay within TF32 rounding of the float32 CPU", "[cuda][backend]") {
    for (Preset preset : {Preset::seed, Preset::paper}) {
        INFO(preset_name(preset));
        const Config config = config_for_preset(preset);
        const Fixture fixture = make_fixture(config);
        CpuBackend cpu(1);
        std::unique_ptr<TrainingBackend> gpu = make_cuda_backend(0, true);
        CHECK(gpu->description().find("TF32") != std::string::npos);
        cpu.load(config, fixture.params, adam_init<float>(config));
        gpu->load(config, fixture.params, adam_init<float>(config));
        const Batch& batch = fixture.batches[0];
        const Tensor<float, 2> expected = cpu.capsule_lengths(batch.images);
        const Tensor<float, 2> lengths = gpu->capsule_lengths(batch.images);
        const double error = relative_error_norm(lengths.data(), expected.data(), expected.size());
        INFO("capsule lengths, TF32: relative error " << error);
        CHECK(error <= 1e-2);
        const StepReport want = cpu.train_step(learning_rate, batch.images, batch.labels);
        const StepReport got = gpu->train_step(learning_rate, batch.images, batch.labels);
        INFO("margin loss gpu " << got.margin_loss << " cpu " << want.margin_loss);
        CHECK(relative_close(got.margin_loss, want.margin_loss, 1e-2));
        CHECK(relative_close(got.reconstruction_loss, want.reconstruction_loss, 1e-2));
    }
}

TEST_CASE("cuda backend: seed preset matches the CPU backend", "[cuda][backend]") {
    check_against_cpu(config_for_preset(Preset::seed));
}

TEST_CASE("cuda backend: paper preset matches the CPU backend", "[cuda][backend]") {
    check_against_cpu(config_for_preset(Preset::paper));
}

TEST_CASE("cuda backend: without the decoder (reconstruct = false) matches the CPU backend", "[cuda][backend]") {
    for (Preset preset : {Preset::seed, Preset::paper}) {
        INFO(preset_name(preset));
        Config config = config_for_preset(preset);
        config.reconstruct = false;
        check_against_cpu(config);
    }
}

TEST_CASE("cuda backend: one routing iteration matches the CPU backend", "[cuda][backend]") {
    for (Preset preset : {Preset::seed, Preset::paper}) {
        INFO(preset_name(preset));
        Config config = config_for_preset(preset);
        config.routing_iterations = 1;
        check_against_cpu(config);
    }
}

TEST_CASE("cuda backend: routing with stop-gradient matches the CPU backend", "[cuda][backend]") {
    Config config = config_for_preset(Preset::seed);
    config.routing_stop_gradient = true;
    check_against_cpu(config);
}

TEST_CASE("cuda backend: continues from a loaded Adam state (resume) like the CPU backend", "[cuda][backend]") {
    const Config config = config_for_preset(Preset::paper);
    const Fixture fixture = make_fixture(config);
    // A mid-training optimiser state: step 5, moments of a plausible size.
    Rng rng(3);
    AdamState<float> adam = adam_init<float>(config);
    visit_parameters(
        [&](const char*, auto& m, auto& v) {
            for (auto& x : m) x = static_cast<float>(rng.uniform(-1e-3, 1e-3));
            for (auto& x : v) x = static_cast<float>(rng.uniform(0.0, 1e-6));
        },
        adam.first_moment, adam.second_moment);
    adam.step = 5;

    CpuBackend cpu(1);
    std::unique_ptr<TrainingBackend> gpu = make_cuda_backend(0);
    cpu.load(config, fixture.params, adam);
    gpu->load(config, fixture.params, adam);
    // Before any step the state reads back as it was loaded.
    CHECK(same_bits(gpu->parameters(), fixture.params));
    CHECK(same_bits(gpu->adam_state().second_moment, adam.second_moment));
    CHECK(gpu->adam_state().step == 5);

    const Batch& batch = fixture.batches[0];
    cpu.train_step(learning_rate, batch.images, batch.labels);
    gpu->train_step(learning_rate, batch.images, batch.labels);
    CHECK(gpu->adam_state().step == 6);
    check_tensors_close(gpu->adam_state().first_moment, cpu.adam_state().first_moment, 1e-4, "first moment");
    check_tensors_close(gpu->adam_state().second_moment, cpu.adam_state().second_moment, 1e-4, "second moment");
    check_tensors_close(gpu->parameters(), cpu.parameters(), 1e-4, "parameter");
}

TEST_CASE("cuda backend: two runs from the same state give identical bits", "[cuda][backend]") {
    for (Preset preset : {Preset::seed, Preset::paper}) {
        INFO(preset_name(preset));
        const Config config = config_for_preset(preset);
        const Fixture fixture = make_fixture(config);
        std::unique_ptr<TrainingBackend> first = make_cuda_backend(0), second = make_cuda_backend(0);
        first->load(config, fixture.params, adam_init<float>(config));
        second->load(config, fixture.params, adam_init<float>(config));
        for (const Batch& batch : fixture.batches) {
            const StepReport a = first->train_step(learning_rate, batch.images, batch.labels);
            const StepReport b = second->train_step(learning_rate, batch.images, batch.labels);
            CHECK(a.margin_loss == b.margin_loss);
            CHECK(a.reconstruction_loss == b.reconstruction_loss);
            CHECK(a.correct == b.correct);
        }
        CHECK(same_bits(first->parameters(), second->parameters()));
        CHECK(same_bits(first->adam_state().first_moment, second->adam_state().first_moment));
        CHECK(same_bits(first->adam_state().second_moment, second->adam_state().second_moment));
        const Tensor<float, 2> a = first->capsule_lengths(fixture.batches[0].images);
        const Tensor<float, 2> b = second->capsule_lengths(fixture.batches[0].images);
        CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);

        // Reloading the same backend restarts the run exactly.
        first->load(config, fixture.params, adam_init<float>(config));
        for (const Batch& batch : fixture.batches) first->train_step(learning_rate, batch.images, batch.labels);
        CHECK(same_bits(first->parameters(), second->parameters()));
    }
}

TEST_CASE("cuda backend: rejects bad batches as the CPU backend does", "[cuda][backend]") {
    const Config config = config_for_preset(Preset::seed);
    Rng rng(1);
    std::unique_ptr<TrainingBackend> gpu = make_cuda_backend(0);
    const Batch batch = random_batch(2, rng);
    CHECK_THROWS_AS(gpu->train_step(learning_rate, batch.images, batch.labels), Error);  // before load()
    gpu->load(config, parameters_init<float>(config, rng), adam_init<float>(config));
    CHECK_THROWS_WITH(gpu->train_step(learning_rate, batch.images, {1}), Catch::Contains("1 labels for a batch of 2"));
    CHECK_THROWS_WITH(gpu->train_step(learning_rate, batch.images, {1, 10}), Catch::Contains("label 10 out of range"));
    CHECK_THROWS_WITH(gpu->train_step(learning_rate, batch.images, {-1, 0}), Catch::Contains("label -1 out of range"));
    const Tensor<float, 4> wrong = xt::zeros<float>({std::size_t(2), std::size_t(1), std::size_t(20), std::size_t(20)});
    CHECK_THROWS_AS(gpu->capsule_lengths(wrong), Error);
    // Nothing was run, so the state is still the loaded one and a good step works.
    CHECK(gpu->adam_state().step == 0);
    const StepReport report = gpu->train_step(learning_rate, batch.images, batch.labels);
    CHECK(std::isfinite(report.margin_loss));
    CHECK(gpu->capsule_lengths(xt::zeros<float>({std::size_t(0), std::size_t(1), std::size_t(28), std::size_t(28)})).shape(0) == 0);
}
