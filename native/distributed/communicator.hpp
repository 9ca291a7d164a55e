// What a data-parallel run over several processes needs from its message layer, so the training code
// never sees MPI (mpi_communicator.cpp is the one implementation; a build without MPI has none). Every
// call is collective: each rank of the run makes it, in the same order, with the same sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace capsnet {

class Communicator {
public:
    virtual ~Communicator() = default;
    virtual int rank() const = 0;          // 0 .. ranks() - 1; rank 0 writes the run's files
    virtual int ranks() const = 0;
    virtual int rank_on_node() const = 0;  // among the ranks on this machine: which GPU is this rank's
    virtual int ranks_on_node() const = 0;  // how many ranks share this machine (and its cores)
    virtual std::string description() const = 0;  // e.g. "2 processes (Open MPI 4.1.4)"

    // Every rank passes its n floats and a weight; on return, `data` holds sum_r weight_r * data_r on
    // every rank. Each slice of the n floats is summed by one rank, in rank order, with the shard sums of
    // backend/shards.hpp, then shared: the result has the same bits on every rank, run after run,
    // whatever the network's timing (which an MPI_Allreduce does not promise).
    virtual void weighted_sum(float* data, std::size_t n, float weight) = 0;
    // Every rank passes `count` doubles; returns every rank's, rank r's at [r * count, (r + 1) * count).
    virtual std::vector<double> gather(const double* values, std::size_t count) = 0;
    // Rows [first, last) of part_range(rows, ranks(), rank()) of `data` (rows of row_size floats) are this
    // rank's; on return every rank holds all the rows.
    virtual void share_rows(float* data, std::size_t rows, std::size_t row_size) = 0;
    // The root's bytes, on every rank (the others' `bytes` are replaced).
    virtual void broadcast(std::vector<std::uint8_t>& bytes, int root) = 0;
    // The largest of the ranks' values, on every rank: how they agree to stop or checkpoint together.
    virtual int max(int value) = 0;
    // Ends every process of the run with this exit code (after a rank's own error, which it has printed).
    [[noreturn]] virtual void abort(int exit_code) = 0;
};

// The run this process is part of: a Communicator when it was started by mpirun (or another MPI
// launcher) with more than one process, else nullptr (a plain single-process run). The first call
// initialises MPI; MPI is finalised at exit. Throws Error when a launcher started several processes but
// this build has no MPI: they would otherwise all train alone and write the same files.
Communicator* distributed_world();

// Whether this build can train over several processes; and how to get one that can, for --help.
bool distributed_training_built();
extern const char* distributed_training_how_to_build;

}  // namespace capsnet
