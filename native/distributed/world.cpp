// distributed_world(): whether this process is one of several started by an MPI launcher.
#include <cstdlib>
#include <string>

#include "capsnet/common.hpp"
#include "distributed/communicator.hpp"
#include "distributed/world.hpp"

namespace capsnet {

namespace {

// How many processes a launcher started, from the environment it gives them (Open MPI's mpirun, or a
// PMI launcher: MPICH's Hydra, Slurm's srun --mpi), 0 when none did. Read without initialising MPI, so
// a plain `capsnet train` never touches it.
int launched_processes() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
        if (const char* value = std::getenv(name)) return std::atoi(value);
    return 0;
}

}  // namespace

#ifdef CAPSNET_HAS_MPI
bool distributed_training_built() { return true; }
const char* distributed_training_how_to_build = "";
#else
bool distributed_training_built() { return false; }
const char* distributed_training_how_to_build =
    "this build has no MPI. Install Open MPI (scripts/install_deps.sh does: Debian's libopenmpi-dev and "
    "openmpi-bin), then configure again (cmake --preset cpu): CAPSNET_MPI turns on when CMake finds MPI";
#endif

Communicator* distributed_world() {
    const int processes = launched_processes();
    if (processes <= 1) return nullptr;
#ifdef CAPSNET_HAS_MPI
    static const std::unique_ptr<Communicator> world = make_mpi_communicator();
    return world.get();
#else
    throw Error("started as one of " + std::to_string(processes) + " processes (mpirun), but " +
                distributed_training_how_to_build);
#endif
}

}  // namespace capsnet
