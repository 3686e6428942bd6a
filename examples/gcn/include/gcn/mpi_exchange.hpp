// gcn: MPI ranks as the history trainer's workers (docs/history.md, "MPI ranks").
//
// Needs <mpi.h> and an MPI library at link time: only the CLI includes it, and only when
// built with -DIBMB_ENABLE_MPI=ON (which defines IBMB_WITH_MPI). The library itself has no
// MPI code; ranks exchange whole rounds through `history_train_params::exchange`.
#pragma once

#include <mpi.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "history_train.hpp"
#include "ibmb/core/error.hpp"

namespace gcn {

/// Throws `ibmb::backend_error` naming the failed MPI call and MPI's message.
inline void mpi_check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw ibmb::backend_error(
      ibmb::detail::concat(call, " failed: ", std::string(msg, static_cast<std::size_t>(len))));
}

/// True when this process was started by an MPI launcher (Open MPI's mpirun, or PMIx/PMI):
/// only then is MPI initialized, so a plain run never touches MPI.
inline bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

/// MPI_Init / MPI_Finalize for one scope (errors are returned, not fatal: MPI_ERRORS_RETURN on
/// MPI_COMM_WORLD). `abort(code)` ends every rank (MPI_Abort), so a failed rank never leaves
/// the others waiting in a collective.
class mpi_session {
 public:
  mpi_session() {
    int done = 0;
    MPI_Initialized(&done);
    if (done == 0) {
      mpi_check(MPI_Init(nullptr, nullptr), "MPI_Init");
      owns_ = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  }
  ~mpi_session() {
    if (!owns_) return;
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin == 0) MPI_Finalize();
  }
  mpi_session(const mpi_session&) = delete;
  mpi_session& operator=(const mpi_session&) = delete;

  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] int size() const { return size_; }
  [[noreturn]] static void abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; in case an implementation does
  }

 private:
  int rank_ = 0, size_ = 1;
  bool owns_ = false;
};

/// Every rank's bytes on every rank, in rank order (MPI_Allgather of the sizes, then
/// MPI_Allgatherv). A message over INT_MAX bytes, or a total over INT_MAX, is a
/// `backend_error` (MPI counts are int).
inline std::vector<std::vector<std::byte>> mpi_allgather_bytes(MPI_Comm comm,
                                                               std::span<const std::byte> mine) {
  int size = 0;
  mpi_check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  if (mine.size() > static_cast<std::size_t>(INT_MAX))
    throw ibmb::backend_error(ibmb::detail::concat("mpi_allgather_bytes: ", mine.size(),
                                                   " bytes in one message (MPI counts are int)"));
  const int n = static_cast<int>(mine.size());
  std::vector<int> counts(static_cast<std::size_t>(size)), displs(static_cast<std::size_t>(size));
  mpi_check(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm), "MPI_Allgather");
  long long total = 0;
  for (int q = 0; q < size; ++q) {
    displs[static_cast<std::size_t>(q)] = static_cast<int>(total);
    total += counts[static_cast<std::size_t>(q)];
    if (total > INT_MAX)
      throw ibmb::backend_error(ibmb::detail::concat(
          "mpi_allgather_bytes: ", total, " bytes gathered by rank ", q, " (MPI counts are int)"));
  }
  std::vector<std::byte> all(static_cast<std::size_t>(total));
  mpi_check(MPI_Allgatherv(mine.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(),
                           MPI_BYTE, comm),
            "MPI_Allgatherv");
  std::vector<std::vector<std::byte>> r(static_cast<std::size_t>(size));
  for (std::size_t q = 0; q < r.size(); ++q)
    r[q].assign(all.begin() + displs[q], all.begin() + displs[q] + counts[q]);
  return r;
}

/// `worker_exchange` over MPI_COMM_WORLD.
class mpi_worker_exchange final : public worker_exchange {
 public:
  explicit mpi_worker_exchange(const mpi_session& s) : rank_(s.rank()), size_(s.size()) {}
  [[nodiscard]] int rank() const override { return rank_; }
  [[nodiscard]] int size() const override { return size_; }
  std::vector<std::vector<std::byte>> allgather(std::span<const std::byte> mine) override {
    return mpi_allgather_bytes(MPI_COMM_WORLD, mine);
  }

 private:
  int rank_, size_;
};

}  // namespace gcn
