// Learning curves (curves.hpp): log.csv parsing and a small plotter (log axes over chart.hpp's lines and
// text) drawing into an RgbImage.
#include "cli/curves.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "cli/chart.hpp"
#include "cli/numbers.hpp"

namespace capsnet::cli {

namespace fs = std::filesystem;

int RunLog::best_epoch() const {
    int best = 0;
    double best_accuracy = -1;
    for (const EpochRow& row : rows)
        if (row.validation_accuracy > best_accuracy) best_accuracy = row.validation_accuracy, best = row.epoch;
    return best;
}

RunLog read_run_log(const std::string& run_dir) {
    const std::string path = (fs::path(run_dir) / "log.csv").string();
    std::ifstream in(path);
    if (!in) throw Error(path + ": cannot read the training log (is " + run_dir + " a capsnet train --save folder?)");
    RunLog run;
    run.name = fs::path(run_dir).lexically_normal().filename().string();
    if (run.name.empty() || run.name == ".") run.name = fs::absolute(run_dir).lexically_normal().parent_path().filename().string();
    std::string line;
    std::getline(in, line);
    std::map<std::string, int> column;
    {
        std::stringstream header(line);
        std::string name;
        for (int i = 0; std::getline(header, name, ','); ++i) column[name] = i;
    }
    for (const char* needed : {"epoch", "learning_rate", "train_loss", "train_accuracy", "validation_accuracy", "test_accuracy"})
        if (!column.count(needed)) throw Error(path + ": the header has no column '" + needed + "'");
    for (int number = 2; std::getline(in, line); ++number) {
        if (line.empty()) continue;
        std::vector<double> values;
        std::stringstream fields(line);
        std::string field;
        while (std::getline(fields, field, ',')) {
            const std::optional<double> value = parse_finite_number(field);
            if (!value) throw Error(path + ": line " + std::to_string(number) + ": '" + field + "' is not a finite number");
            values.push_back(*value);
        }
        auto get = [&](const char* name) {
            const int i = column.count(name) ? column[name] : -1;
            if (i < 0) return 0.0;
            if (i >= static_cast<int>(values.size()))
                throw Error(path + ": line " + std::to_string(number) + " has " + std::to_string(values.size()) + " fields");
            return values[static_cast<std::size_t>(i)];
        };
        EpochRow row;
        row.epoch = static_cast<int>(get("epoch"));
        row.learning_rate = get("learning_rate");
        row.train_loss = get("train_loss");
        row.train_accuracy = get("train_accuracy");
        row.validation_accuracy = get("validation_accuracy");
        row.test_accuracy = get("test_accuracy");
        row.epoch_seconds = get("epoch_seconds");
        run.rows.push_back(row);
    }
    return run;
}

namespace {

using namespace chart;

struct Series {
    std::vector<std::pair<double, double>> points;  // (epoch, value > 0)
    Color color;
    Dash dash;
};

struct Panel {
    int left, top, width, height;
    double x_low, x_high;
};

// One panel: frame, log-scale y ticks at 1-2-5 x 10^k, x ticks at round epochs, the series, a title.
void draw_panel(RgbImage& image, const Panel& p, const std::string& title, const std::string& unit,
                const std::vector<Series>& series, const std::vector<std::pair<double, Color>>& marks) {
    double low = 1e300, high = 0;
    for (const Series& s : series)
        for (const auto& [x, y] : s.points) low = std::min(low, y), high = std::max(high, y);
    if (!(high > 0)) low = 0.1, high = 1;
    double log_low = std::floor(std::log10(low) * 4) / 4, log_high = std::ceil(std::log10(high) * 4) / 4;
    if (log_high - log_low < 0.5) log_low -= 0.25, log_high += 0.25;
    auto px = [&](double x) { return p.left + (x - p.x_low) / (p.x_high - p.x_low) * p.width; };
    auto py = [&](double y) { return p.top + p.height - (std::log10(y) - log_low) / (log_high - log_low) * p.height; };

    // Ticks at 1, 2, 5 x 10^k; a range too narrow for two of them gets 1..9 x 10^k.
    auto ticks_with = [&](std::vector<double> mantissas) {
        std::vector<double> ticks;
        for (int k = static_cast<int>(std::floor(log_low)); k <= static_cast<int>(std::ceil(log_high)); ++k)
            for (double m : mantissas) {
                const double value = m * std::pow(10.0, k), lv = std::log10(value);
                if (lv >= log_low - 1e-9 && lv <= log_high + 1e-9) ticks.push_back(value);
            }
        return ticks;
    };
    std::vector<double> ticks = ticks_with({1, 2, 5});
    if (ticks.size() < 2) ticks = ticks_with({1, 2, 3, 4, 5, 6, 7, 8, 9});
    for (const double value : ticks) {
        const int y = static_cast<int>(std::lround(py(value)));
        image.fill_rect(p.left, y, p.width, 1, grid[0], grid[1], grid[2]);
        const std::string label = tick_label(value) + unit;
        text(image, p.left - 8 - text_width(label), y - 6, label, black);
    }
    const int span = static_cast<int>(p.x_high - p.x_low);
    const int x_step = std::max(1, span / 10 >= 5 ? (span / 10 + 4) / 5 * 5 : span / 10);
    for (int e = x_step; e <= p.x_high; e += x_step) {
        const int x = static_cast<int>(std::lround(px(e)));
        image.fill_rect(x, p.top, 1, p.height, grid[0], grid[1], grid[2]);
        const std::string label = std::to_string(e);
        text(image, x - text_width(label) / 2, p.top + p.height + 6, label, black);
    }
    for (const auto& [epoch, color] : marks) {
        double phase = 0;
        line(image, px(epoch), p.top, px(epoch), p.top + p.height, color, Dash::dotted, phase);
    }
    for (const Series& s : series) {
        double phase = 0;
        for (std::size_t i = 0; i + 1 < s.points.size(); ++i)
            line(image, px(s.points[i].first), py(s.points[i].second), px(s.points[i + 1].first), py(s.points[i + 1].second),
                 s.color, s.dash, phase);
        if (s.points.size() == 1) dot(image, int(px(s.points[0].first)), int(py(s.points[0].second)), 2, s.color);
    }
    outline(image, p.left, p.top, p.width, p.height, frame);
    text(image, p.left, p.top - 22, title, black);
}

}  // namespace

RgbImage plot_curves(const std::vector<RunLog>& runs) {
    RgbImage image;
    image.width = 1200;
    image.height = 1040;
    image.pixels.assign(static_cast<std::size_t>(image.width) * image.height * 3, 255);
    double last_epoch = 1;
    for (const RunLog& run : runs)
        for (const EpochRow& row : run.rows) last_epoch = std::max(last_epoch, double(row.epoch));
    Panel panel{110, 50, 720, 250, 0.5, last_epoch + 0.5};

    auto series_of = [&](const std::function<double(const EpochRow&)>& value, Dash dash, std::size_t r) {
        Series s{{}, palette[r % std::size(palette)], dash};
        for (const EpochRow& row : runs[r].rows)
            if (const double v = value(row); v > 0) s.points.push_back({double(row.epoch), v});
        return s;
    };
    auto error_percent = [](double accuracy) { return accuracy < 0 ? -1.0 : 100 * (1 - accuracy); };
    std::vector<Series> loss, error, rate;
    std::vector<std::pair<double, Color>> marks;
    for (std::size_t r = 0; r < runs.size(); ++r) {
        loss.push_back(series_of([](const EpochRow& e) { return e.train_loss; }, Dash::solid, r));
        error.push_back(series_of([&](const EpochRow& e) { return error_percent(e.train_accuracy); }, Dash::dotted, r));
        error.push_back(series_of([&](const EpochRow& e) { return error_percent(e.test_accuracy); }, Dash::dashed, r));
        error.push_back(series_of([&](const EpochRow& e) { return error_percent(e.validation_accuracy); }, Dash::solid, r));
        rate.push_back(series_of([](const EpochRow& e) { return e.learning_rate; }, Dash::solid, r));
        if (const int best = runs[r].best_epoch(); best > 0) {
            marks.push_back({double(best), palette[r % std::size(palette)]});
            for (const EpochRow& row : runs[r].rows)
                if (row.epoch == best && row.validation_accuracy >= 0) {
                    Series point{{{double(best), error_percent(row.validation_accuracy)}}, palette[r % std::size(palette)], Dash::solid};
                    error.push_back(point);
                }
        }
    }
    draw_panel(image, panel, "training loss (margin + reconstruction)", "", loss, marks);
    panel.top += 330;
    draw_panel(image, panel, "error: train (dotted), validation (solid), test (dashed)", "%", error, marks);
    panel.top += 330;
    draw_panel(image, panel, "learning rate", "", rate, marks);
    text(image, panel.left + panel.width / 2 - 20, panel.top + panel.height + 28, "epoch", black);

    // Legend: one entry per run, with its best validation epoch and the errors there.
    int y = 60;
    const int x = panel.left + panel.width + 30;
    text(image, x, y - 10, "best validation epoch", black);
    y += 20;
    for (std::size_t r = 0; r < runs.size(); ++r) {
        const Color& c = palette[r % std::size(palette)];
        image.fill_rect(x, y + 4, 24, 4, c[0], c[1], c[2]);
        text(image, x + 32, y, runs[r].name, black);
        y += 20;
        const int best = runs[r].best_epoch();
        for (const EpochRow& row : runs[r].rows)
            if (row.epoch == best) {
                char line1[64], line2[64], test[16] = "-";
                if (row.test_accuracy >= 0) std::snprintf(test, sizeof test, "%.2f%%", 100 * row.test_accuracy);
                std::snprintf(line1, sizeof line1, "epoch %d", best);
                std::snprintf(line2, sizeof line2, "val %.2f%% test %s", 100 * row.validation_accuracy, test);
                text(image, x + 32, y, line1, black);
                text(image, x + 32, y + 18, line2, black);
                y += 36;
            }
        y += 12;
    }
    return image;
}

void write_run_curves(const std::string& run_dir) {
    const RunLog run = read_run_log(run_dir);
    if (run.rows.empty()) return;
    png_write((fs::path(run_dir) / "curves.png").string(), plot_curves({run}));
}

}  // namespace capsnet::cli
