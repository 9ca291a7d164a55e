// The Communicator over MPI (built when CMake finds MPI: CAPSNET_MPI). Only the process's main thread
// calls MPI (MPI_THREAD_FUNNELED): the backends' worker threads never do.
#include <mpi.h>

#include <climits>
#include <cstdlib>

#include "backend/shards.hpp"
#include "capsnet/common.hpp"
#include "distributed/communicator.hpp"
#include "distributed/world.hpp"

namespace capsnet {

namespace {

// MPI counts are int: a size past INT_MAX would wrap. 6.8 M parameters are far from it.
int mpi_count(std::size_t n, const char* what) {
    if (n > static_cast<std::size_t>(INT_MAX))
        throw Error(std::string("MPI: ") + what + " of " + std::to_string(n) + " elements is more than one message holds");
    return static_cast<int>(n);
}

void check(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw Error(std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

class MpiCommunicator : public Communicator {
public:
    MpiCommunicator() {
        int provided = 0;
        check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
        // Errors come back as codes, which check() turns into an Error naming the call, instead of
        // MPI's default of aborting without saying where.
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &ranks_);
        MPI_Comm node;
        check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
        MPI_Comm_rank(node, &rank_on_node_);
        MPI_Comm_size(node, &ranks_on_node_);
        MPI_Comm_free(&node);
        char version[MPI_MAX_LIBRARY_VERSION_STRING];
        int length = 0;
        MPI_Get_library_version(version, &length);
        library_.assign(version, static_cast<std::size_t>(length));
        library_ = library_.substr(0, library_.find_first_of(",\n"));  // "Open MPI v4.1.4"
    }
    ~MpiCommunicator() override { MPI_Finalize(); }

    int rank() const override { return rank_; }
    int ranks() const override { return ranks_; }
    int rank_on_node() const override { return rank_on_node_; }
    int ranks_on_node() const override { return ranks_on_node_; }
    std::string description() const override { return std::to_string(ranks_) + " processes (" + library_ + ")"; }

    void weighted_sum(float* data, std::size_t n, float weight) override {
        mpi_count(n, "a gradient");
        std::vector<float> weights(static_cast<std::size_t>(ranks_));
        check(MPI_Allgather(&weight, 1, MPI_FLOAT, weights.data(), 1, MPI_FLOAT, MPI_COMM_WORLD), "MPI_Allgather");
        // Rank r owns part r of the n floats: it receives every rank's copy of that part (a reduce-scatter
        // that MPI does not sum), sums them in rank order, and then every rank gathers every part.
        std::vector<int> part_counts(static_cast<std::size_t>(ranks_)), part_starts(part_counts.size());
        for (int r = 0; r < ranks_; ++r) {
            const auto [first, last] = part_range(n, ranks_, r);
            part_counts[r] = static_cast<int>(last - first);
            part_starts[r] = static_cast<int>(first);
        }
        const std::size_t mine = static_cast<std::size_t>(part_counts[rank_]);
        std::vector<int> receive_counts(part_counts.size(), static_cast<int>(mine)), receive_starts(part_counts.size());
        for (int r = 0; r < ranks_; ++r) receive_starts[r] = static_cast<int>(mine) * r;
        received_.resize(mine * static_cast<std::size_t>(ranks_));
        check(MPI_Alltoallv(data, part_counts.data(), part_starts.data(), MPI_FLOAT, received_.data(), receive_counts.data(),
                            receive_starts.data(), MPI_FLOAT, MPI_COMM_WORLD),
              "MPI_Alltoallv");
        float* sum = data + part_starts[rank_];
        weighted_gradient_start(sum, weights[0], received_.data(), mine);
        for (int r = 1; r < ranks_; ++r) weighted_gradient_add(sum, weights[r], received_.data() + mine * r, mine);
        check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, part_counts.data(), part_starts.data(), MPI_FLOAT,
                             MPI_COMM_WORLD),
              "MPI_Allgatherv");
    }

    std::vector<double> gather(const double* values, std::size_t count) override {
        std::vector<double> all(count * static_cast<std::size_t>(ranks_));
        const int n = mpi_count(count, "a gather");
        check(MPI_Allgather(values, n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE, MPI_COMM_WORLD), "MPI_Allgather");
        return all;
    }

    void share_rows(float* data, std::size_t rows, std::size_t row_size) override {
        mpi_count(rows * row_size, "a row exchange");
        std::vector<int> counts(static_cast<std::size_t>(ranks_)), starts(counts.size());
        for (int r = 0; r < ranks_; ++r) {
            const auto [first, last] = part_range(rows, ranks_, r);
            counts[r] = static_cast<int>((last - first) * row_size);
            starts[r] = static_cast<int>(first * row_size);
        }
        check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), starts.data(), MPI_FLOAT, MPI_COMM_WORLD),
              "MPI_Allgatherv");
    }

    void broadcast(std::vector<std::uint8_t>& bytes, int root) override {
        unsigned long long size = bytes.size();
        check(MPI_Bcast(&size, 1, MPI_UNSIGNED_LONG_LONG, root, MPI_COMM_WORLD), "MPI_Bcast");
        bytes.resize(static_cast<std::size_t>(size));
        check(MPI_Bcast(bytes.data(), mpi_count(bytes.size(), "a broadcast"), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }

    int max(int value) override {
        int result = 0;
        check(MPI_Allreduce(&value, &result, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
        return result;
    }

    [[noreturn]] void abort(int exit_code) override {
        MPI_Abort(MPI_COMM_WORLD, exit_code);
        std::_Exit(exit_code);  // MPI_Abort does not return; this is for the compiler
    }

private:
    int rank_ = 0, ranks_ = 1, rank_on_node_ = 0, ranks_on_node_ = 1;
    std::string library_;
    std::vector<float> received_;  // weighted_sum's parts of every rank, kept between steps
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace capsnet
