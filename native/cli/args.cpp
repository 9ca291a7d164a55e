// Command-line parsing with errors that say which option was wrong and why.
#include "cli/args.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "cli/numbers.hpp"

namespace capsnet::cli {

namespace {

// Edit distance, for "did you mean --epochs?".
std::size_t distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

}  // namespace

ArgParser& ArgParser::option(const std::string& name, const std::string& value_name, const std::string& fallback,
                             const std::string& help) {
    options_.push_back({name, value_name, fallback, help, false});
    return *this;
}

ArgParser& ArgParser::flag(const std::string& name, const std::string& help) {
    options_.push_back({name, "", "", help, true});
    return *this;
}

ArgParser& ArgParser::example(const std::string& line) {
    examples_.push_back(line);
    return *this;
}

ArgParser& ArgParser::note(const std::string& paragraph) {
    notes_.push_back(paragraph);
    return *this;
}

const ArgParser::Option* ArgParser::find(const std::string& name) const {
    for (const Option& option : options_)
        if (option.name == name) return &option;
    return nullptr;
}

ParsedArgs ArgParser::parse(const std::vector<std::string>& args) const {
    ParsedArgs parsed;
    parsed.command_ = command_;
    for (const Option& option : options_) {
        parsed.declared_.insert(option.name);
        if (!option.is_flag && !option.fallback.empty()) parsed.defaults_[option.name] = option.fallback;
    }
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "-h" || arg == "--help") {
            parsed.help = true;
            continue;
        }
        if (arg.rfind("--", 0) != 0 || arg.size() == 2)
            throw UsageError("unexpected argument '" + arg + "' (options start with --)");
        std::string name = arg.substr(2), value;
        const std::size_t equals = name.find('=');
        const bool has_inline_value = equals != std::string::npos;
        if (has_inline_value) {
            value = name.substr(equals + 1);
            name = name.substr(0, equals);
        }
        const Option* option = find(name);
        if (!option) {
            std::string message = "unknown option --" + name;
            const Option* closest = nullptr;
            std::size_t best = 3;  // only suggest near misses
            for (const Option& candidate : options_) {
                const std::size_t d = distance(name, candidate.name);
                if (d < best) best = d, closest = &candidate;
            }
            if (closest) message += " (did you mean --" + closest->name + "?)";
            throw UsageError(message);
        }
        if (parsed.values_.count(name)) throw UsageError("--" + name + " is given twice");
        if (option->is_flag) {
            if (has_inline_value) throw UsageError("--" + name + " takes no value");
            parsed.values_[name] = "1";
            continue;
        }
        if (!has_inline_value) {
            if (i + 1 >= args.size())
                throw UsageError("--" + name + " needs a value (" + option->value_name + ")");
            value = args[++i];
        }
        if (value.empty()) throw UsageError("--" + name + " needs a non-empty value");
        parsed.values_[name] = value;
    }
    return parsed;
}

std::string ArgParser::help() const {
    std::ostringstream out;
    out << "usage: capsnet " << command_ << " [options]\n\n" << summary_ << "\n\noptions:\n";
    for (const Option& option : options_) {
        std::string left = "  --" + option.name + (option.is_flag ? "" : " " + option.value_name);
        if (left.size() < 28) left.resize(28, ' ');
        else left += "\n" + std::string(28, ' ');
        out << left << option.help;
        if (!option.is_flag && !option.fallback.empty()) out << " [default: " << option.fallback << "]";
        out << "\n";
    }
    out << "  -h, --help                show this help\n";
    for (const std::string& paragraph : notes_) {
        // Wrapped at 100 columns, indented like the options.
        out << "\n ";
        std::istringstream words(paragraph);
        std::size_t column = 1;
        for (std::string word; words >> word;) {
            if (column + 1 + word.size() > 100) {
                out << "\n ";
                column = 1;
            }
            out << ' ' << word;
            column += 1 + word.size();
        }
        out << "\n";
    }
    if (!examples_.empty()) {
        out << "\nexamples:\n";
        for (const std::string& line : examples_) out << "  " << line << "\n";
    }
    return out.str();
}

void ParsedArgs::require_declared(const std::string& name) const {
    if (!declared_.count(name))
        throw std::logic_error("capsnet " + command_ + ": the code asks for --" + name +
                               ", which the command does not declare (a misspelt option name)");
}

bool ParsedArgs::given(const std::string& name) const {
    require_declared(name);
    return values_.count(name) > 0;
}

bool ParsedArgs::flag(const std::string& name) const { return given(name); }

std::string ParsedArgs::text(const std::string& name) const {
    require_declared(name);
    const auto it = values_.find(name);
    if (it != values_.end()) return it->second;
    const auto fallback = defaults_.find(name);
    return fallback != defaults_.end() ? fallback->second : std::string();
}

long long ParsedArgs::integer(const std::string& name, long long min, long long max) const {
    const std::string value = text(name);
    const std::optional<long long> read = parse_integer(value);
    if (!read) throw UsageError("--" + name + ": '" + value + "' is not an integer");
    const long long parsed = *read;
    if (parsed < min || parsed > max)
        throw UsageError("--" + name + ": " + value + " is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    return parsed;
}

double ParsedArgs::number(const std::string& name, double min, double max) const {
    const std::string value = text(name);
    const std::optional<double> read = parse_finite_number(value);
    if (!read) throw UsageError("--" + name + ": '" + value + "' is not a finite number");
    const double parsed = *read;
    if (parsed < min || parsed > max) {
        std::ostringstream range;
        range << "[" << min << ", " << max << "]";
        throw UsageError("--" + name + ": " + value + " is out of range " + range.str());
    }
    return parsed;
}

}  // namespace capsnet::cli
