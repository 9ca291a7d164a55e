// The error type of the whole project, in a header of its own so CUDA files can throw it without
// pulling xtensor into nvcc.
#pragma once

#include <stdexcept>

namespace capsnet {

// Thrown for anything a user can cause: a bad file, a bad argument, a failed device call. The message
// names the source and the problem, so the command-line tools can print it as it is.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace capsnet
