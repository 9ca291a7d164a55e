// `capsnet robustness`: MNIST test accuracy of a model under affine transforms of the test digits
// (affNIST-style: each digit rotated, scaled or translated inside its 28x28 frame, one axis at a time),
// the paper's claim that capsules generalise to poses they were not trained on. The transforms are the
// core's (affine.hpp: the pose lab's code) and the scoring is `capsnet eval`'s (evaluation.hpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include "backend/training_backend.hpp"
#include "cli/backend_choice.hpp"
#include "capsnet/affine.hpp"
#include "capsnet/visualize.hpp"
#include "capsnet/weights.hpp"
#include "cli/args.hpp"
#include "cli/chart.hpp"
#include "cli/commands.hpp"
#include "cli/evaluation.hpp"
#include "cli/numbers.hpp"
#include "cli/png.hpp"
#include "cli/progress.hpp"

namespace capsnet::cli {

namespace {

namespace fs = std::filesystem;

// One swept axis: which option lists its values, their unit, and the transform a value means.
struct RobustnessAxis {
    const char* name;     // the CSV's axis column
    const char* option;   // --rotations, ...
    const char* title;    // the chart's title
    double low, high;     // accepted values, in the axis's unit (AffineTransform's ranges)
    double identity;      // the untransformed value, marked on the chart
    PoseAxis pose_axis;   // the AffineTransform field it sets
    float field_per_unit; // that field's value for 1 unit of the axis (translation: 1 pixel = 1/28 of the width)
    std::vector<float> values;

    AffineTransform transform(float value) const { return affine_with({}, pose_axis, value * field_per_unit); }
};

struct RobustnessRow {
    const RobustnessAxis* axis;
    float value;
    Scores scores;
};

// "low:high:step" (both ends included, sweep_offsets' rounding) or "a,b,c"; UsageError naming the option.
std::vector<float> parse_axis_values(const RobustnessAxis& axis, const std::string& text) {
    const std::string option = std::string("--") + axis.option;
    const auto number = [&](const std::string& field) {
        const std::optional<double> value = parse_finite_number(field);
        if (!value) throw UsageError(option + ": '" + field + "' is not a number (give a list a,b,c or a range low:high:step)");
        return *value;
    };
    std::vector<std::string> fields;
    const bool range = text.find(':') != std::string::npos;
    std::stringstream in(text);
    for (std::string field; std::getline(in, field, range ? ':' : ',');) fields.push_back(field);
    std::vector<float> values;
    if (range) {
        if (fields.size() != 3) throw UsageError(option + ": a range is low:high:step, not '" + text + "'");
        try {
            values = sweep_offsets(static_cast<float>(number(fields[0])), static_cast<float>(number(fields[1])),
                                   static_cast<float>(number(fields[2])));
        } catch (const UsageError&) {
            throw;
        } catch (const Error& error) {
            throw UsageError(option + ": " + error.what());
        }
    } else {
        for (const std::string& field : fields) values.push_back(static_cast<float>(number(field)));
    }
    if (values.empty()) throw UsageError(option + ": no values");
    for (const float value : values)
        if (value < axis.low || value > axis.high) {
            char message[160];
            std::snprintf(message, sizeof message, "%s: %g is outside %g..%g", option.c_str(), double(value), axis.low,
                          axis.high);
            throw UsageError(message);
        }
    return values;
}

// The first `count` test digits under `transform`, as the bytes the network sees (pose_input_bytes: the
// pose lab's path for an MNIST digit).
MnistSplit transformed_test_set(const MnistSplit& test, std::size_t count, const AffineTransform& transform) {
    MnistSplit split;
    split.images.count = static_cast<std::int64_t>(count);
    split.images.rows = split.images.cols = image_side;
    split.images.pixels.resize(count * image_pixels);
    split.labels.assign(test.labels.begin(), test.labels.begin() + static_cast<std::ptrdiff_t>(count));
    Tensor<float, 2> digit = xt::zeros<float>({std::size_t(image_side), std::size_t(image_side)});
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint8_t* pixels = test.images.pixels.data() + i * image_pixels;
        std::transform(pixels, pixels + image_pixels, digit.data(), [](std::uint8_t b) { return b / 255.0f; });
        const std::vector<std::uint8_t> bytes = pose_input_bytes(digit, PoseSource::mnist, transform);
        std::copy(bytes.begin(), bytes.end(), split.images.pixels.begin() + static_cast<std::ptrdiff_t>(i * image_pixels));
    }
    return split;
}

void scores_add(Scores& total, const Scores& part) {
    total.correct += part.correct;
    total.total += part.total;
    total.seconds += part.seconds;
    for (std::size_t t = 0; t < total.confusion.size(); ++t)
        for (std::size_t p = 0; p < total.confusion[t].size(); ++p) total.confusion[t][p] += part.confusion[t][p];
}

void write_robustness_csv(const std::string& path, const std::vector<RobustnessRow>& rows) {
    std::string text = "axis,value,accuracy,correct,count\n";
    char line[160];
    for (const RobustnessRow& row : rows) {
        std::snprintf(line, sizeof line, "%s,%g,%.6f,%lld,%lld\n", row.axis->name, double(row.value), row.scores.accuracy(),
                      static_cast<long long>(row.scores.correct), static_cast<long long>(row.scores.total));
        text += line;
    }
    write_whole_file_atomically(path, std::vector<std::uint8_t>(text.begin(), text.end()));
}

constexpr int chart_width = 1260, chart_height = 370;

// Three panels side by side (one per axis), accuracy in % on a shared linear scale so they compare at a
// glance; the untransformed value marked by a dotted line.
RgbImage plot_robustness(const std::vector<RobustnessAxis>& axes, const std::vector<RobustnessRow>& rows,
                         const std::string& heading) {
    using namespace chart;
    RgbImage image;
    image.width = chart_width;
    image.height = chart_height;
    image.pixels.assign(static_cast<std::size_t>(image.width) * image.height * 3, 255);
    text(image, 20, 12, heading, black);

    double lowest = 100;
    for (const RobustnessRow& row : rows) lowest = std::min(lowest, 100 * row.scores.accuracy());
    // The shared y range: 100% down to a round number at least 2 points below the worst accuracy.
    const double y_step = lowest > 80 ? 2 : lowest > 50 ? 10 : 20;
    const double y_low = std::max(0.0, std::floor((lowest - 2) / y_step) * y_step), y_high = 100;

    const int top = 70, height = 260, width = 340, pitch = 420, left0 = 70;
    for (std::size_t a = 0; a < axes.size(); ++a) {
        const RobustnessAxis& axis = axes[a];
        const int left = left0 + static_cast<int>(a) * pitch;
        double x_low = *std::min_element(axis.values.begin(), axis.values.end());
        double x_high = *std::max_element(axis.values.begin(), axis.values.end());
        if (x_high - x_low < 1e-9) x_low -= 1, x_high += 1;
        const double pad = 0.05 * (x_high - x_low);  // keeps the end points off the frame
        x_low -= pad, x_high += pad;
        const auto px = [&](double x) { return left + (x - x_low) / (x_high - x_low) * width; };
        const auto py = [&](double y) { return top + height - (y - y_low) / (y_high - y_low) * height; };

        for (double y = y_low; y <= y_high + 1e-9; y += y_step) {
            const int at = static_cast<int>(std::lround(py(y)));
            image.fill_rect(left, at, width, 1, grid[0], grid[1], grid[2]);
            char label[16];
            std::snprintf(label, sizeof label, "%g%%", y);
            text(image, left - 8 - text_width(label), at - 6, label, black);
        }
        // A tick at every value, labelled; every k-th label only when the labels would touch.
        const auto value_label = [](float value) {
            char label[16];
            std::snprintf(label, sizeof label, "%g", double(value));
            return std::string(label);
        };
        int widest = 0;
        for (const float value : axis.values) widest = std::max(widest, text_width(value_label(value)));
        const double spacing = axis.values.size() > 1 ? double(width) / (axis.values.size() - 1) : width;
        const std::size_t every = static_cast<std::size_t>(std::max(1.0, std::ceil((widest + 10) / spacing)));
        for (std::size_t i = 0; i < axis.values.size(); ++i) {
            const int at = static_cast<int>(std::lround(px(axis.values[i])));
            image.fill_rect(at, top + height, 1, 5, frame[0], frame[1], frame[2]);
            if (i % every) continue;
            const std::string label = value_label(axis.values[i]);
            text(image, at - text_width(label) / 2, top + height + 8, label, black);
        }
        if (axis.identity >= x_low && axis.identity <= x_high) {
            double phase = 0;
            line(image, px(axis.identity), top, px(axis.identity), top + height, frame, Dash::dotted, phase);
        }
        std::vector<std::pair<double, double>> points;
        for (const RobustnessRow& row : rows)
            if (row.axis == &axis) points.push_back({row.value, 100 * row.scores.accuracy()});
        std::sort(points.begin(), points.end());
        double phase = 0;
        for (std::size_t i = 0; i + 1 < points.size(); ++i)
            line(image, px(points[i].first), py(points[i].second), px(points[i + 1].first), py(points[i + 1].second),
                 palette[0], Dash::solid, phase);
        for (const auto& [x, y] : points)
            dot(image, static_cast<int>(std::lround(px(x))), static_cast<int>(std::lround(py(y))), 3, palette[0]);
        outline(image, left, top, width, height, frame);
        text(image, left, top - 22, axis.title, black);
    }
    return image;
}

}  // namespace

int robustness_command(const std::vector<std::string>& arguments) {
    ArgParser parser("robustness",
                     "Scores a model on affine transforms of the MNIST test digits (affNIST-style), one axis at a time with\n"
                     "the others at identity, the digit transformed inside its 28x28 frame about the centre (bilinear,\n"
                     "zeros outside, rounded to bytes):\n"
                     "  rotation     degrees, positive counter-clockwise\n"
                     "  scale        factor, > 1 enlarges\n"
                     "  translation  pixels along x, positive to the right\n"
                     "Writes OUT/robustness.csv (axis,value,accuracy,correct,count; accuracy a fraction) and\n"
                     "OUT/robustness.png (accuracy against each axis). The scoring is capsnet eval's: the identity\n"
                     "rows equal its accuracy on the same images. Values: a list a,b,c or a range low:high:step.");
    parser.option("model", "FILE", "", "model file (.safetensors: F32, F16 or I8)")
        .option("data", "DIR", default_data_dir(), "folder with the MNIST IDX files ($CAPSNET_DATA_DIR)")
        .option("limit", "N", "10000", "use the first N test images")
        .option("out", "DIR", ".", "output folder (created if missing)")
        .option("rotations", "LIST", "-60:60:15", "rotation angles in degrees (-360..360)")
        .option("scales", "LIST", "0.6:1.4:0.1", "scale factors (0.1..10)")
        .option("translations", "LIST", "-6:6:2", "x translations in pixels (-28..28)")
        .option("batch-size", "N", "100", "images per forward pass")
        .option("device", "DEV", "auto", "cpu, cuda, cuda:N or auto")
        .option("threads", "N", "0", "CPU threads (0: all cores)")
        .example("capsnet robustness --model web/model/capsnet-seed-i8.safetensors --out robustness")
        .example("capsnet robustness --model m.safetensors --limit 2000 --rotations -30,0,30 --scales 0.8,1,1.2");
    const ParsedArgs args = parser.parse(arguments);
    if (args.help) {
        std::fputs(parser.help().c_str(), stdout);
        return 0;
    }
    if (!args.given("model")) throw UsageError("--model FILE is required");
    std::vector<RobustnessAxis> axes = {
        {"rotation", "rotations", "rotation (degrees, ccw)", -360, 360, 0, PoseAxis::rotation, 1, {}},
        {"scale", "scales", "scale (factor)", 0.1, 10, 1, PoseAxis::scale, 1, {}},
        {"translation", "translations", "translation x (pixels)", -image_side, image_side, 0, PoseAxis::translate_x,
         1.0f / image_side, {}},
    };
    for (RobustnessAxis& axis : axes) axis.values = parse_axis_values(axis, args.text(axis.option));
    const std::size_t batch_size = static_cast<std::size_t>(args.integer("batch-size", 1, 4096));
    const int threads = static_cast<int>(args.integer("threads", 0, 1024));
    const std::string path = args.text("model"), out_dir = args.text("out");

    const Model model = model_from_safetensors(safetensors_read(path), path);
    const MnistSplit test = load_mnist(args.text("data"), "t10k");
    const std::size_t count = static_cast<std::size_t>(args.integer("limit", 1, test.images.count));
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec || !fs::is_directory(out_dir)) throw Error(out_dir + ": cannot create the output folder");
    std::unique_ptr<TrainingBackend> backend = make_training_backend(args.text("device"), threads);
    backend->load(model.config, model.params, adam_init<float>(model.config));

    // The identity appears once per axis but is scored once: rows share the scores of equal transforms.
    using Key = std::array<float, 5>;
    const auto key_of = [](const AffineTransform& t) {
        return Key{t.rotation_degrees, t.scale, t.shear, t.translate_x, t.translate_y};
    };
    std::map<Key, Scores> scored;
    for (const RobustnessAxis& axis : axes)
        for (const float value : axis.values) scored.emplace(key_of(axis.transform(value)), Scores{});
    std::printf("model %s (preset %s): %zu test images x %zu transforms (%s)\n", path.c_str(),
                preset_name(model.config.preset), count, scored.size(), backend->description().c_str());

    // One progress bar over everything; chunks of whole batches keep score_model's batches those of a
    // single call (so the identity's scores equal capsnet eval's) while the bar moves every few seconds.
    ProgressBar bar("robustness", static_cast<std::int64_t>(count * scored.size()));
    const std::size_t chunk = std::max<std::size_t>(1, 500 / batch_size) * batch_size;
    std::int64_t done = 0;
    for (const RobustnessAxis& axis : axes)
        for (const float value : axis.values) {
            Scores& scores = scored[key_of(axis.transform(value))];
            if (scores.total > 0) continue;  // the identity, already scored on another axis
            const MnistSplit split = transformed_test_set(test, count, axis.transform(value));
            char details[64];
            std::snprintf(details, sizeof details, "%s %g", axis.name, double(value));
            for (std::size_t first = 0; first < count; first += chunk) {
                scores_add(scores, score_model(*backend, split, first, std::min(chunk, count - first), batch_size, ""));
                done += static_cast<std::int64_t>(std::min(chunk, count - first));
                bar.update(done, details);
            }
        }
    bar.finish();

    std::vector<RobustnessRow> rows;
    for (const RobustnessAxis& axis : axes) {
        std::printf("%-12s", axis.name);
        for (const float value : axis.values) {
            rows.push_back({&axis, value, scored[key_of(axis.transform(value))]});
            std::printf(" %g: %.2f%%", double(value), 100 * rows.back().scores.accuracy());
        }
        std::printf("\n");
    }
    const std::string csv_path = (fs::path(out_dir) / "robustness.csv").string();
    const std::string png_path = (fs::path(out_dir) / "robustness.png").string();
    write_robustness_csv(csv_path, rows);
    const std::string heading = "MNIST test accuracy under affine transforms: " + fs::path(path).filename().string() +
                                ", " + std::to_string(count) + " test images";
    png_write(png_path, plot_robustness(axes, rows, heading));
    std::printf("wrote %s and %s\n", csv_path.c_str(), png_path.c_str());
    return 0;
}

}  // namespace capsnet::cli
