// `capsnet robustness` driven in-process: its CSV and PNG on a few dozen test images with the shipped
// model, its identity rows against `capsnet eval` on the same images, and its argument errors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/png.hpp"
#include "mnist_fixture.hpp"

using namespace capsnet;
using namespace capsnet::cli;
namespace fs = std::filesystem;

namespace {

const std::string shipped_model = std::string(CAPSNET_SOURCE_DIR) + "/web/model/capsnet-seed-i8.safetensors";

// A fresh, empty folder under the build tree's working directory.
std::string scratch(const std::string& name) {
    const std::string dir = "test_robustness_tmp/" + name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

struct CsvRow {
    std::string axis;
    double value = 0, accuracy = 0;
    long long correct = 0, count = 0;
};

CsvRow parse_row(const std::string& line) {
    std::stringstream in(line);
    CsvRow row;
    std::string field;
    std::getline(in, row.axis, ',');
    std::getline(in, field, ','), row.value = std::stod(field);
    std::getline(in, field, ','), row.accuracy = std::stod(field);
    std::getline(in, field, ','), row.correct = std::stoll(field);
    std::getline(in, field, ','), row.count = std::stoll(field);
    return row;
}

}  // namespace

TEST_CASE("robustness: CSV rows and header, identity rows equal eval's accuracy, the PNG's size", "[robustness][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const std::string dir = scratch("run");
    const std::string limit = "40";
    REQUIRE(robustness_command({"--model", shipped_model, "--data", capsnet_test::mnist_directory(), "--limit", limit,
                                "--out", dir, "--rotations", "-30,0,30", "--scales", "1:1.2:0.2", "--translations", "0,3",
                                "--threads", "2", "--batch-size", "16"}) == 0);
    const std::vector<std::string> lines = read_lines(dir + "/robustness.csv");
    REQUIRE(lines.size() == 8);
    CHECK(lines[0] == "axis,value,accuracy,correct,count");
    const std::vector<std::pair<std::string, double>> expected = {
        {"rotation", -30}, {"rotation", 0}, {"rotation", 30}, {"scale", 1}, {"scale", 1.2}, {"translation", 0}, {"translation", 3}};
    std::vector<CsvRow> rows;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO(lines[i + 1]);
        rows.push_back(parse_row(lines[i + 1]));
        CHECK(rows[i].axis == expected[i].first);
        CHECK(rows[i].value == Approx(expected[i].second).margin(1e-6));
        CHECK(rows[i].count == 40);
        CHECK(rows[i].accuracy == Approx(double(rows[i].correct) / rows[i].count).margin(1e-6));  // printed with 6 decimals
    }

    // The identity (one per axis) is the untransformed test set: the same count of right answers as
    // capsnet eval's on the same images and batches, read from its --scores CSV.
    const std::string scores = dir + "/scores.csv";
    REQUIRE(eval_command({"--model", shipped_model, "--data", capsnet_test::mnist_directory(), "--limit", limit,
                          "--threads", "2", "--batch-size", "16", "--scores", scores}) == 0);
    long long eval_correct = 0;
    const std::vector<std::string> score_lines = read_lines(scores);
    REQUIRE(score_lines.size() == 41);
    for (std::size_t i = 1; i < score_lines.size(); ++i) {
        std::stringstream in(score_lines[i]);
        std::string index, label, predicted;
        std::getline(in, index, ','), std::getline(in, label, ','), std::getline(in, predicted, ',');
        eval_correct += label == predicted;
    }
    CHECK(rows[1].correct == eval_correct);
    CHECK(rows[3].correct == eval_correct);
    CHECK(rows[5].correct == eval_correct);
    // The shipped model loses accuracy at 30 degrees (about 77% on MNIST against 99%): on 40 digits it is
    // below the identity's, a check that the digits were really transformed.
    CHECK(rows[0].correct < eval_correct);
    CHECK(rows[2].correct < eval_correct);

    const RgbImage chart = png_read(dir + "/robustness.png");
    CHECK(chart.width == 1260);
    CHECK(chart.height == 370);
}

TEST_CASE("robustness: bad arguments are usage errors that name the option", "[robustness]") {
    struct Case {
        std::vector<std::string> args;
        const char* message;
    };
    const std::vector<Case> cases = {
        {{}, "--model FILE is required"},
        {{"--model", "m", "--rotations", "1:2"}, "--rotations: a range is low:high:step"},
        {{"--model", "m", "--rotations", "abc"}, "--rotations: 'abc' is not a number"},
        {{"--model", "m", "--rotations", "0:10:0"}, "--rotations: sweep range: step must be positive"},
        {{"--model", "m", "--rotations", "400"}, "--rotations: 400 is outside -360..360"},
        {{"--model", "m", "--scales", "0"}, "--scales: 0 is outside 0.1..10"},
        {{"--model", "m", "--scales", "1,,2"}, "--scales: '' is not a number"},
        {{"--model", "m", "--translations", "40"}, "--translations: 40 is outside -28..28"},
        {{"--model", "m", "--translations", "nan"}, "--translations: 'nan' is not a number"},
        {{"--model", "m", "--batch-size", "0"}, "--batch-size: 0 is out of range"},
        {{"--model", "m", "--rotation", "5"}, "unknown option --rotation (did you mean --rotations?)"},
    };
    for (const Case& c : cases) {
        INFO(c.message);
        CHECK_THROWS_AS(robustness_command(c.args), UsageError);
        CHECK_THROWS_WITH(robustness_command(c.args), Catch::Contains(c.message));
    }
    // A missing model is a failure while running (exit 1), naming the file, not a usage error.
    CHECK_THROWS_WITH(robustness_command({"--model", "no/such/model.safetensors"}), Catch::Contains("no/such/model.safetensors"));
    CHECK(robustness_command({"--help"}) == 0);
}

TEST_CASE("robustness: missing data says how to get it", "[robustness]") {
    CHECK_THROWS_WITH(robustness_command({"--model", shipped_model, "--data", "no/such/folder", "--out", scratch("nodata")}),
                      Catch::Contains("fetch_mnist.sh"));
}
