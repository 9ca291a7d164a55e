// `capsnet`: train, evaluate, visualise and export CapsNet models on MNIST.
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cpu/gemm_openblas.hpp"

namespace {

const char* usage =
    "usage: capsnet <command> [options]\n"
    "\n"
    "CapsNet (Sabour, Frosst, Hinton 2017: Dynamic Routing Between Capsules) on MNIST.\n"
    "\n"
    "commands:\n"
    "  train       train a model; checkpoints every epoch, resumable (--resume)\n"
    "  eval        test accuracy, error, confusion matrix and images/s of a model file\n"
    "  visualize   the mask grid (vis_all.png) and dimension sweeps (vis_tweaked0..9.png)\n"
    "  export      write a smaller F16 or I8 copy of a model (for the web) and report its accuracy change\n"
    "  plot        learning curves of one or several runs (curves.png) from their log.csv\n"
    "  robustness  test accuracy under rotation, scale and translation of the digits (CSV and PNG chart)\n"
    "\n"
    "Run 'capsnet <command> --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
    using namespace capsnet::cli;
    if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
        std::fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    // The process's one GEMM, chosen before any thread runs (the CPU backend and the visualizations
    // use it): OpenBLAS, with the core's xsimd GEMM on the skinny products.
    capsnet::gemm_use_by_shape();
    const std::string command = argv[1];
    const std::vector<std::string> args(argv + 2, argv + argc);
    try {
        if (command == "train") return train_command(args);
        if (command == "eval") return eval_command(args);
        if (command == "visualize") return visualize_command(args);
        if (command == "export") return export_command(args);
        if (command == "plot") return plot_command(args);
        if (command == "robustness") return robustness_command(args);
        std::fprintf(stderr, "capsnet: unknown command '%s'\n\n%s", command.c_str(), usage);
        return 2;
    } catch (const UsageError& error) {
        std::fprintf(stderr, "capsnet %s: error: %s\nRun 'capsnet %s --help' for the options.\n", command.c_str(),
                     error.what(), command.c_str());
        return 2;
    } catch (const capsnet::Error& error) {
        std::fprintf(stderr, "capsnet %s: error: %s\n", command.c_str(), error.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "capsnet %s: error: out of memory (try a smaller --batch-size)\n", command.c_str());
        return 1;
    } catch (const std::logic_error& error) {  // a mistake in this program, not in its input
        std::fprintf(stderr, "capsnet %s: internal error: %s\n", command.c_str(), error.what());
        return 1;
    } catch (const std::exception& error) {
        // Anything else the libraries throw (a filesystem error names its path): a message and status 1,
        // never an abort.
        std::fprintf(stderr, "capsnet %s: error: %s\n", command.c_str(), error.what());
        return 1;
    }
}
