// A small command-line parser for the `capsnet` subcommands: `--name value`, `--name=value` and flags,
// a generated --help, and a UsageError (exit code 2) that names the option and what was wrong.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "capsnet/common.hpp"

namespace capsnet::cli {

// A mistake in the command line (as opposed to a failure while running): main prints it with a pointer
// to --help and exits with status 2.
struct UsageError : Error {
    using Error::Error;
};

class ParsedArgs {
public:
    // Each lookup names an option the parser declared: any other name is a mistake in the code, not in
    // the command line, and throws std::logic_error at once instead of reading as absent.
    bool given(const std::string& name) const;  // on the command line
    bool flag(const std::string& name) const;
    std::string text(const std::string& name) const;  // the value, or the option's default
    long long integer(const std::string& name, long long min, long long max) const;
    double number(const std::string& name, double min, double max) const;
    bool help = false;

private:
    friend class ArgParser;
    void require_declared(const std::string& name) const;
    std::string command_;
    std::set<std::string> declared_;
    std::map<std::string, std::string> values_;
    std::map<std::string, std::string> defaults_;
};

class ArgParser {
public:
    ArgParser(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

    // `value_name` shows in --help ("--epochs N"); `fallback` is used when the option is absent ("" for none).
    ArgParser& option(const std::string& name, const std::string& value_name, const std::string& fallback,
                      const std::string& help);
    ArgParser& flag(const std::string& name, const std::string& help);
    ArgParser& example(const std::string& line);
    ArgParser& note(const std::string& paragraph);  // shown after the options, wrapped

    // Throws UsageError for unknown options (suggesting the closest known one), missing values, repeated
    // options, flags given a value, and positional arguments.
    ParsedArgs parse(const std::vector<std::string>& args) const;
    std::string help() const;
    const std::string& command() const { return command_; }

private:
    struct Option {
        std::string name, value_name, fallback, help;
        bool is_flag = false;
    };
    const Option* find(const std::string& name) const;
    std::string command_, summary_;
    std::vector<Option> options_;
    std::vector<std::string> examples_, notes_;
};

}  // namespace capsnet::cli
