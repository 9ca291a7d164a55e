// `capsnet eval`, `capsnet visualize` and `capsnet export`: the subcommands that read a finished model.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <xtensor/xview.hpp>

#include "backend/training_backend.hpp"
#include "cli/backend_choice.hpp"
#include "capsnet/batch.hpp"
#include "capsnet/routing_view.hpp"
#include "capsnet/visualize.hpp"
#include "capsnet/weights.hpp"
#include "cli/args.hpp"
#include "cli/chart.hpp"
#include "cli/commands.hpp"
#include "cli/curves.hpp"
#include "cli/evaluation.hpp"
#include "cli/png.hpp"

namespace capsnet::cli {

namespace {

namespace fs = std::filesystem;

// Scores a model through the backend the user picked (eval and export share this).
Scores score_file_model(const Model& model, const std::string& device, int threads, const MnistSplit& test,
                        std::size_t count, std::size_t batch_size, const std::string& label,
                        std::vector<float>* lengths = nullptr) {
    std::unique_ptr<TrainingBackend> backend = make_training_backend(device, threads);
    backend->load(model.config, model.params, adam_init<float>(model.config));
    return score_model(*backend, test, 0, count, batch_size, label, lengths);
}

// index,label,predicted,length0..length9 per test image: for analysis, and to compare with PyTorch.
void write_scores_csv(const std::string& path, const MnistSplit& test, const std::vector<float>& lengths) {
    std::string text = "index,label,predicted";
    for (int j = 0; j < digit_classes; ++j) text += ",length" + std::to_string(j);
    text += "\n";
    char cell[32];
    for (std::size_t i = 0; i < lengths.size() / digit_classes; ++i) {
        const float* row = &lengths[i * digit_classes];
        text += std::to_string(i) + "," + std::to_string(test.labels[i]) + "," +
                std::to_string(std::max_element(row, row + digit_classes) - row);
        for (int j = 0; j < digit_classes; ++j) {
            std::snprintf(cell, sizeof cell, ",%.9g", row[j]);
            text += cell;
        }
        text += "\n";
    }
    write_whole_file_atomically(path, std::vector<std::uint8_t>(text.begin(), text.end()));
}

std::size_t file_size(const std::string& path) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    return ec ? 0 : static_cast<std::size_t>(size);
}

}  // namespace

int eval_command(const std::vector<std::string>& arguments) {
    ArgParser parser("eval", "Scores a model file on the MNIST test set: accuracy, error, confusion matrix, images/s.");
    parser.option("model", "FILE", "", "model file (.safetensors: F32, F16 or I8; a checkpoint works too)")
        .option("data", "DIR", default_data_dir(), "folder with the MNIST IDX files ($CAPSNET_DATA_DIR)")
        .option("limit", "N", "10000", "score the first N test images")
        .option("batch-size", "N", "100", "images per forward pass")
        .option("device", "DEV", "auto", "cpu, cuda, cuda:N or auto")
        .option("threads", "N", "0", "CPU threads (0: all cores)")
        .option("scores", "FILE", "", "also write every image's label, prediction and 10 capsule lengths as CSV")
        .example("capsnet eval --model web/model/capsnet-seed-i8.safetensors")
        .example("capsnet eval --model saved_model/best.safetensors --limit 1000 --scores scores.csv");
    const ParsedArgs args = parser.parse(arguments);
    if (args.help) {
        std::fputs(parser.help().c_str(), stdout);
        return 0;
    }
    if (!args.given("model")) throw UsageError("--model FILE is required");
    const std::string path = args.text("model");
    const Model model = model_from_safetensors(safetensors_read(path), path);
    const MnistSplit test = load_mnist(args.text("data"), "t10k");
    const std::size_t count = static_cast<std::size_t>(args.integer("limit", 1, test.images.count));
    std::vector<float> lengths;
    const Scores scores = score_file_model(model, args.text("device"), static_cast<int>(args.integer("threads", 0, 1024)),
                                           test, count, static_cast<std::size_t>(args.integer("batch-size", 1, 4096)), "test",
                                           args.given("scores") ? &lengths : nullptr);
    if (args.given("scores")) write_scores_csv(args.text("scores"), test, lengths);
    std::printf("model      %s (preset %s)\n", path.c_str(), preset_name(model.config.preset));
    std::printf("accuracy   %.2f%% (%lld of %lld test images)\n", 100 * scores.accuracy(),
                static_cast<long long>(scores.correct), static_cast<long long>(scores.total));
    std::printf("error      %.2f%% (%lld wrong)\n", 100 * (1 - scores.accuracy()),
                static_cast<long long>(scores.total - scores.correct));
    std::printf("speed      %.1f images/s (%.2f s)\n\n%s", scores.images_per_second(), scores.seconds,
                confusion_table(scores).c_str());
    return 0;
}

namespace {

// A default as --help shows it: -0.25, not -0.250000.
std::string short_number(float value) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", double(value));
    return text;
}

}  // namespace

namespace {

// vis_routing.png: the attribution (routing_view.hpp), normalised per sample and iteration, laid over the
// input with routing_overlay_pixel (the browser's overlay colours).
void blend_attribution(std::uint8_t* pixel, float ink, float attribution) {
    const Rgb colour = routing_overlay_pixel(ink, attribution);
    pixel[0] = colour.r, pixel[1] = colour.g, pixel[2] = colour.b;
}

// One row per sample: its input, then its attribution to each class at `iteration` (0-based). A header
// names the columns; the true class's tile is framed in orange.
RgbImage routing_overlay_picture(const std::vector<RoutingView>& views, const std::vector<Tensor<float, 2>>& inputs,
                                 const std::vector<int>& labels, int iteration, int zoom) {
    const int tile = image_side * zoom, gap = 2 * zoom, pitch = tile + gap, header = 12 * zoom;
    const int columns = 1 + digit_classes, rows = static_cast<int>(views.size());
    RgbImage picture;
    picture.width = columns * pitch - gap;
    picture.height = header + rows * pitch - gap;
    picture.pixels.assign(static_cast<std::size_t>(picture.width) * picture.height * 3, 89);  // the 0.35 grey
    for (int column = 0; column < columns; ++column) {
        const std::string name = column == 0 ? "input" : std::to_string(column - 1);
        chart::text(picture, column * pitch + (tile - chart::text_width(name, zoom)) / 2, 2 * zoom, name, chart::white, zoom);
    }
    for (int row = 0; row < rows; ++row) {
        const int top = header + row * pitch;
        const Tensor<float, 2>& input = inputs[static_cast<std::size_t>(row)];
        const Tensor<float, 4>& attribution = views[static_cast<std::size_t>(row)].attribution_normalized;
        const int framed = 1 + labels[static_cast<std::size_t>(row)];
        picture.fill_rect(framed * pitch - gap, top - gap, tile + 2 * gap, tile + 2 * gap, 255, 140, 0);
        for (int column = 0; column < columns; ++column)
            for (int y = 0; y < tile; ++y)
                for (int x = 0; x < tile; ++x) {
                    std::uint8_t* pixel =
                        &picture.pixels[(static_cast<std::size_t>(top + y) * picture.width + column * pitch + x) * 3];
                    const float ink = input(y / zoom, x / zoom);
                    if (column == 0) {
                        pixel[0] = pixel[1] = pixel[2] = static_cast<std::uint8_t>(std::lround(255 * std::clamp(ink, 0.0f, 1.0f)));
                    } else {
                        blend_attribution(pixel, ink, attribution(iteration, column - 1, y / zoom, x / zoom));
                    }
                }
    }
    return picture;
}

}  // namespace

int visualize_command(const std::vector<std::string>& arguments) {
    ArgParser parser("visualize",
                     "Draws the seed implementation's pictures from a model file, as PNG:\n"
                     "  vis_all.png        first row: the first two test images of each digit; then one row per digit\n"
                     "                     class j: every input reconstructed through capsule j alone (the mask grid)\n"
                     "  vis_tweaked<d>.png the first test image of digit d, reconstructed through capsule d with an offset\n"
                     "                     added to one of its 16 dimensions (columns); one row per offset, the\n"
                     "                     unperturbed row framed in orange\n"
                     "  vis_routing.png    the first test image of each digit (rows), then the strokes that voted for\n"
                     "                     each class 0..9 (columns) at one routing iteration: every primary capsule's\n"
                     "                     c_ij |u_hat_ij| spread over its receptive field, on the ink, coloured on a\n"
                     "                     scale shared by the row's classes; the true class framed in orange");
    parser.option("model", "FILE", "", "model file (.safetensors)")
        .option("out", "DIR", "", "output folder (created if missing)")
        .option("data", "DIR", default_data_dir(), "folder with the MNIST IDX files ($CAPSNET_DATA_DIR)")
        .option("low", "X", short_number(default_sweep_range.low), "smallest offset added to a dimension")
        .option("high", "X", short_number(default_sweep_range.high), "largest offset")
        .option("step", "X", short_number(default_sweep_range.step), "offset step")
        .option("zoom", "N", "2", "pixels per MNIST pixel in the PNGs")
        .option("routing-iteration", "N", "last", "routing iteration drawn in vis_routing.png, 1 .. the model's iterations")
        .example("capsnet visualize --model saved_model/model.safetensors --out vis")
        .example("capsnet visualize --model m.safetensors --out vis --low -0.5 --high 0.5 --step 0.1");
    const ParsedArgs args = parser.parse(arguments);
    if (args.help) {
        std::fputs(parser.help().c_str(), stdout);
        return 0;
    }
    if (!args.given("model")) throw UsageError("--model FILE is required");
    if (!args.given("out")) throw UsageError("--out DIR is required");
    std::vector<float> offsets;
    try {
        offsets = sweep_offsets(static_cast<float>(args.number("low", -100, 100)),
                                static_cast<float>(args.number("high", -100, 100)),
                                static_cast<float>(args.number("step", 1e-6, 100)));
    } catch (const UsageError&) {
        throw;
    } catch (const Error& error) {
        throw UsageError(std::string("--low/--high/--step: ") + error.what());
    }
    const int zoom = static_cast<int>(args.integer("zoom", 1, 16));
    const std::string path = args.text("model"), out_dir = args.text("out");
    const Model model = model_from_safetensors(safetensors_read(path), path);
    const int routing_iterations = model.config.routing_iterations;
    const int routing_iteration = args.given("routing-iteration")
                                      ? static_cast<int>(args.integer("routing-iteration", 1, routing_iterations))
                                      : routing_iterations;
    const MnistSplit test = load_mnist(args.text("data"), "t10k");
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec || !fs::is_directory(out_dir)) throw Error(out_dir + ": cannot create the output folder");

    const float background = 0.35f;  // mid grey: separates the tiles and shows where a reconstruction is black
    const int gap = 2;

    // vis_all.png: the mask grid.
    const std::vector<std::size_t> pairs = first_samples_per_class(test.labels, digit_classes, 2);
    // Their digit capsules (inference: no augmentation).
    Tensor<float, 4> images;
    std::vector<int> labels;
    Rng unused(0);
    make_batch(test.images.pixels, test.labels, image_side, pairs, 0, unused, images, labels);
    ForwardState<float> state;
    model_forward(model.config, model.params, images, DecoderMask::none, {}, state);
    const Tensor<float, 3>& capsules = state.digit_capsules;
    const Tensor<float, 3> grid = mask_grid_reconstructions(model.params, capsules);  // [N, 10, 784]
    const std::size_t n = pairs.size();
    Tensor<float, 3> tiles = xt::zeros<float>({std::size_t(digit_classes) + 1, n, std::size_t(image_pixels)});
    for (std::size_t i = 0; i < n; ++i) {
        std::copy_n(images.data() + i * image_pixels, image_pixels, &tiles(0, i, 0));
        for (std::size_t j = 0; j < std::size_t(digit_classes); ++j) std::copy_n(&grid(i, j, 0), image_pixels, &tiles(j + 1, i, 0));
    }
    const std::string all_path = (fs::path(out_dir) / "vis_all.png").string();
    png_write(all_path, rgb_from_grey(tile_images(tiles, image_side, gap, background), zoom));
    std::printf("wrote %s (%zu inputs x %d capsules)\n", all_path.c_str(), n, digit_classes);

    // vis_tweaked<d>.png: dimension sweeps of capsule d for the first test image of digit d.
    std::size_t zero_row = offsets.size();
    for (std::size_t r = 0; r < offsets.size(); ++r)
        if (offsets[r] == 0.0f) zero_row = r;
    for (int d = 0; d < digit_classes; ++d) {
        // The first test image of digit d is already in the mask grid's batch, at 2d (two per digit, in order).
        const Tensor<float, 2> capsule = xt::view(capsules, 2 * d, xt::all(), xt::all());
        const Tensor<float, 3> sweep = dimension_sweep_reconstructions(model.params, capsule, d, offsets);
        RgbImage picture = rgb_from_grey(tile_images(sweep, image_side, gap, background), zoom);
        if (zero_row < offsets.size()) {
            // Frame the unperturbed row in the gaps around it (orange).
            const int pitch = (image_side + gap) * zoom, top = static_cast<int>(zero_row) * pitch - gap * zoom;
            const int height = image_side * zoom + 2 * gap * zoom, thickness = gap * zoom;
            picture.fill_rect(0, top, picture.width, thickness, 255, 140, 0);
            picture.fill_rect(0, top + height - thickness, picture.width, thickness, 255, 140, 0);
        }
        const std::string tweak_path = (fs::path(out_dir) / ("vis_tweaked" + std::to_string(d) + ".png")).string();
        png_write(tweak_path, picture);
    }
    std::printf("wrote %s/vis_tweaked0..9.png (%zu offsets from %g to %g x %d dimensions)\n", out_dir.c_str(),
                offsets.size(), offsets.front(), offsets.back(), digit_dims);

    // vis_routing.png: the first test image of each digit (sample 2d of the mask grid's batch again).
    std::vector<RoutingView> views;
    std::vector<Tensor<float, 2>> inputs;
    std::vector<int> row_labels;
    for (int d = 0; d < digit_classes; ++d) {
        views.push_back(routing_view(state, 2 * std::size_t(d)));
        inputs.push_back(xt::view(images, 2 * d, 0, xt::all(), xt::all()));
        row_labels.push_back(labels[2 * std::size_t(d)]);
    }
    const std::string routing_path = (fs::path(out_dir) / "vis_routing.png").string();
    png_write(routing_path, routing_overlay_picture(views, inputs, row_labels, routing_iteration - 1, zoom));
    std::printf("wrote %s (attribution at routing iteration %d of %d)\n", routing_path.c_str(), routing_iteration,
                routing_iterations);
    return 0;
}

int export_command(const std::vector<std::string>& arguments) {
    ArgParser parser("export",
                     "Writes a smaller copy of a model for the web: F16 (half the size) or I8 (a quarter: int8 weights\n"
                     "with one F32 scale per output channel). Scores both models on the test set and reports the change.");
    parser.option("model", "FILE", "", "model file to export (.safetensors)")
        .option("dtype", "TYPE", "i8", "f16 or i8")
        .option("out", "FILE", "", "where to write the exported model")
        .option("data", "DIR", default_data_dir(), "folder with the MNIST IDX files ($CAPSNET_DATA_DIR)")
        .option("limit", "N", "10000", "test images scored for the accuracy comparison (0: skip it)")
        .option("device", "DEV", "auto", "cpu, cuda, cuda:N or auto")
        .option("threads", "N", "0", "CPU threads (0: all cores)")
        .example("capsnet export --model saved_model/best.safetensors --dtype i8 --out web/model/capsnet-seed-i8.safetensors");
    const ParsedArgs args = parser.parse(arguments);
    if (args.help) {
        std::fputs(parser.help().c_str(), stdout);
        return 0;
    }
    if (!args.given("model")) throw UsageError("--model FILE is required");
    if (!args.given("out")) throw UsageError("--out FILE is required");
    const std::string dtype_text = args.text("dtype");
    DType dtype;
    if (dtype_text == "f16") dtype = DType::F16;
    else if (dtype_text == "i8") dtype = DType::I8;
    else throw UsageError("--dtype: '" + dtype_text + "' is not f16 or i8");
    const std::string path = args.text("model"), out_path = args.text("out");
    std::error_code ec;
    if (fs::equivalent(path, out_path, ec)) throw UsageError("--out must differ from --model");
    const Model model = model_from_safetensors(safetensors_read(path), path);
    if (const fs::path parent = fs::path(out_path).parent_path(); !parent.empty()) {
        fs::create_directories(parent, ec);
        if (ec || !fs::is_directory(parent))
            throw Error(out_path + ": cannot create its folder " + parent.string() + " (" +
                        (ec ? ec.message() : std::string("not a directory")) + ")");
    }
    safetensors_write(out_path, model_to_safetensors(model, dtype));
    const Model exported = model_load(out_path);  // read back what a user (or the browser) will load
    std::printf("wrote %s: %s, %.2f MB (the source is %.2f MB)\n", out_path.c_str(), dtype_text.c_str(),
                file_size(out_path) / 1e6, file_size(path) / 1e6);

    const std::size_t limit = static_cast<std::size_t>(args.integer("limit", 0, 10000));
    if (limit == 0) return 0;
    const MnistSplit test = load_mnist(args.text("data"), "t10k");
    const std::string device = args.text("device");
    const int threads = static_cast<int>(args.integer("threads", 0, 1024));
    const Scores before = score_file_model(model, device, threads, test, limit, 100, "source");
    const Scores after = score_file_model(exported, device, threads, test, limit, 100, dtype_text);
    std::printf("test accuracy on %zu images: source %.2f%% (%lld right), %s %.2f%% (%lld right): change %+.2f points\n",
                limit, 100 * before.accuracy(), static_cast<long long>(before.correct), dtype_text.c_str(),
                100 * after.accuracy(), static_cast<long long>(after.correct), 100 * (after.accuracy() - before.accuracy()));
    return 0;
}

}  // namespace capsnet::cli

namespace capsnet::cli {

int plot_command(const std::vector<std::string>& arguments) {
    ArgParser parser("plot",
                     "Draws the learning curves of training runs from their log.csv: training loss, train / validation /\n"
                     "test error and learning rate per epoch, the best validation epoch marked. capsnet train redraws\n"
                     "DIR/curves.png after every epoch; this redraws it, or overlays several runs in one picture.");
    parser.option("run", "DIR[,DIR...]", "", "run folders (capsnet train --save); several, separated by commas, are overlaid")
        .option("out", "FILE", "", "PNG to write [default: DIR/curves.png for one run, curves.png for several]")
        .example("capsnet plot --run runs/seed")
        .example("capsnet plot --run runs/b64,runs/b128,runs/b256 --out study.png");
    const ParsedArgs args = parser.parse(arguments);
    if (args.help) {
        std::fputs(parser.help().c_str(), stdout);
        return 0;
    }
    if (!args.given("run")) throw UsageError("--run DIR is required");
    std::vector<RunLog> runs;
    std::stringstream list(args.text("run"));
    for (std::string dir; std::getline(list, dir, ',');)
        if (!dir.empty()) runs.push_back(read_run_log(dir));
    if (runs.empty()) throw UsageError("--run names no folder");
    const std::string out = args.given("out") ? args.text("out")
                            : runs.size() == 1 ? (fs::path(args.text("run")) / "curves.png").string()
                                               : std::string("curves.png");
    png_write(out, plot_curves(runs));
    std::printf("wrote %s (%zu run%s)\n", out.c_str(), runs.size(), runs.size() == 1 ? "" : "s");
    return 0;
}

}  // namespace capsnet::cli
