// Internal to native/distributed: the MPI communicator's constructor, in builds that have MPI.
#pragma once

#include <memory>

#include "distributed/communicator.hpp"

namespace capsnet {

std::unique_ptr<Communicator> make_mpi_communicator();  // initialises MPI; finalised by its destructor

}  // namespace capsnet
