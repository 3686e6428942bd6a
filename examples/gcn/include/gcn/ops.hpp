// gcn: the numerical building blocks of the reference GCN, written out by hand on Eigen
// row-major matrices: sparse propagation (SpMM and its transpose), row-chunked dense
// products, LayerNorm, dropout masks from a counter-based generator, softmax cross-entropy.
//
// Determinism: every parallel loop either writes disjoint rows or reduces per fixed chunk
// of rows (chunk boundaries depend on the sizes only) and then sums the partials in chunk
// order, so results are bit-identical for any OpenMP thread count.
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace gcn {

template <class T>
using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using row_vector = Eigen::Matrix<T, 1, Eigen::Dynamic>;
template <class T>
using const_map = Eigen::Map<const matrix<T>>;

/// A sparse matrix in CSR (int64 offsets and columns, float weights), not owning.
struct sparse_ref {
  std::int64_t rows = 0, cols = 0;
  const std::int64_t* indptr = nullptr;  ///< rows + 1 entries; indptr[0] may be non-zero
  const std::int64_t* indices = nullptr;
  const float* weights = nullptr;
};

/// An owned CSR (used for transposes and gathered rows).
struct sparse_owned {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::int64_t> indptr{0}, indices;
  std::vector<float> weights;
  [[nodiscard]] sparse_ref ref() const {
    return {rows, cols, indptr.data(), indices.data(), weights.data()};
  }
};

/// S^T by a counting sort; within a row of the result, entries come in increasing column
/// order (the scan order over the rows of S), so the result is deterministic.
inline sparse_owned transpose(const sparse_ref& s) {
  sparse_owned t;
  t.rows = s.cols;
  t.cols = s.rows;
  const std::int64_t base = s.rows > 0 ? s.indptr[0] : 0;
  const std::int64_t nnz = s.rows > 0 ? s.indptr[s.rows] - base : 0;
  t.indptr.assign(static_cast<std::size_t>(t.rows) + 1, 0);
  for (std::int64_t p = base; p < base + nnz; ++p)
    ++t.indptr[static_cast<std::size_t>(s.indices[p]) + 1];
  for (std::int64_t r = 0; r < t.rows; ++r) t.indptr[r + 1] += t.indptr[r];
  t.indices.resize(static_cast<std::size_t>(nnz));
  t.weights.resize(static_cast<std::size_t>(nnz));
  std::vector<std::int64_t> pos(t.indptr.begin(), t.indptr.end() - 1);
  for (std::int64_t r = 0; r < s.rows; ++r)
    for (std::int64_t p = s.indptr[r]; p < s.indptr[r + 1]; ++p) {
      const auto q = static_cast<std::size_t>(pos[static_cast<std::size_t>(s.indices[p])]++);
      t.indices[q] = r;
      t.weights[q] = s.weights[p];
    }
  return t;
}

/// The rows `rows` of `s` (in that order) as an owned CSR.
inline sparse_owned gather_rows(const sparse_ref& s, std::span<const std::int64_t> rows) {
  sparse_owned g;
  g.rows = static_cast<std::int64_t>(rows.size());
  g.cols = s.cols;
  g.indptr.reserve(rows.size() + 1);
  for (const auto r : rows) {
    for (std::int64_t p = s.indptr[r]; p < s.indptr[r + 1]; ++p) {
      g.indices.push_back(s.indices[p]);
      g.weights.push_back(s.weights[p]);
    }
    g.indptr.push_back(static_cast<std::int64_t>(g.indices.size()));
  }
  return g;
}

/// Weights 1 / (entries of the row): the local mean aggregation of GraphSAGE.
inline std::vector<float> mean_weights(const sparse_ref& s) {
  const std::int64_t base = s.rows > 0 ? s.indptr[0] : 0;
  std::vector<float> w(static_cast<std::size_t>(s.rows > 0 ? s.indptr[s.rows] - base : 0));
  for (std::int64_t r = 0; r < s.rows; ++r) {
    const auto d = s.indptr[r + 1] - s.indptr[r];
    for (std::int64_t p = s.indptr[r]; p < s.indptr[r + 1]; ++p)
      w[static_cast<std::size_t>(p - base)] = 1.0f / static_cast<float>(d);
  }
  return w;
}

/// out = S * x (out: S.rows x x.cols). Rows in parallel; each row summed in entry order.
template <class T, class X>
void spmm(const sparse_ref& s, const Eigen::MatrixBase<X>& x, matrix<T>& out) {
  out.resize(s.rows, x.cols());
  const auto h = x.cols();
#pragma omp parallel for schedule(dynamic, 256)
  for (std::int64_t r = 0; r < s.rows; ++r) {
    auto o = out.row(r);
    o.setZero();
    for (std::int64_t p = s.indptr[r]; p < s.indptr[r + 1]; ++p)
      o.noalias() += static_cast<T>(s.weights[p]) * x.row(s.indices[p]).head(h);
  }
}

/// Rows per reduction chunk: a function of the row count only (never of the thread count).
inline std::int64_t chunk_rows(std::int64_t n) {
  return std::max<std::int64_t>(256, (n + 31) / 32);
}

/// out = a * b with the rows of `a` split into fixed chunks (one single-threaded GEMM each:
/// Eigen does not parallelize inside an OpenMP region).
template <class T, class A, class B>
void gemm_rows(const Eigen::MatrixBase<A>& a, const Eigen::MatrixBase<B>& b, matrix<T>& out) {
  const std::int64_t n = a.rows();
  out.resize(n, b.cols());
  const std::int64_t c = chunk_rows(n);
  const std::int64_t chunks = (n + c - 1) / c;
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t k = 0; k < chunks; ++k) {
    const std::int64_t r0 = k * c, m = std::min(c, n - r0);
    out.middleRows(r0, m).noalias() = a.middleRows(r0, m) * b;
  }
}

/// out = a^T * b (a: n x p, b: n x q) as a fixed-order sum of per-chunk products.
template <class T, class A, class B>
void gemm_tn(const Eigen::MatrixBase<A>& a, const Eigen::MatrixBase<B>& b, matrix<T>& out) {
  const std::int64_t n = a.rows();
  const std::int64_t c = chunk_rows(n);
  const std::int64_t chunks = (n + c - 1) / c;
  std::vector<matrix<T>> part(static_cast<std::size_t>(chunks));
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t k = 0; k < chunks; ++k) {
    const std::int64_t r0 = k * c, m = std::min(c, n - r0);
    part[static_cast<std::size_t>(k)].noalias() =
        a.middleRows(r0, m).transpose() * b.middleRows(r0, m);
  }
  out.setZero(a.cols(), b.cols());
  for (const auto& p : part) out += p;
}

/// Column sums of `a` as a fixed-order sum of per-chunk sums.
template <class T, class A>
row_vector<T> col_sums(const Eigen::MatrixBase<A>& a) {
  const std::int64_t n = a.rows();
  const std::int64_t c = chunk_rows(n);
  const std::int64_t chunks = (n + c - 1) / c;
  std::vector<row_vector<T>> part(static_cast<std::size_t>(chunks));
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t k = 0; k < chunks; ++k) {
    const std::int64_t r0 = k * c, m = std::min(c, n - r0);
    part[static_cast<std::size_t>(k)] = a.middleRows(r0, m).colwise().sum();
  }
  row_vector<T> out = row_vector<T>::Zero(a.cols());
  for (const auto& p : part) out += p;
  return out;
}

// ---- LayerNorm -----------------------------------------------------------------------------

inline constexpr double layer_norm_eps = 1e-5;

/// y = gamma * (z - mean) / sqrt(var + eps) + beta per row (biased variance, as PyTorch);
/// keeps xhat and 1/std for the backward pass.
template <class T>
void layer_norm_forward(const matrix<T>& z, const row_vector<T>& gamma, const row_vector<T>& beta,
                        matrix<T>& y, matrix<T>& xhat, std::vector<T>& inv_std) {
  const std::int64_t n = z.rows(), h = z.cols();
  y.resize(n, h);
  xhat.resize(n, h);
  inv_std.resize(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < n; ++r) {
    const T mu = z.row(r).sum() / static_cast<T>(h);
    const T var = (z.row(r).array() - mu).square().sum() / static_cast<T>(h);
    const T is = T(1) / std::sqrt(var + static_cast<T>(layer_norm_eps));
    inv_std[static_cast<std::size_t>(r)] = is;
    xhat.row(r) = (z.row(r).array() - mu) * is;
    y.row(r) = xhat.row(r).cwiseProduct(gamma) + beta;
  }
}

/// dz from dy; accumulates dgamma, dbeta (overwritten).
template <class T>
void layer_norm_backward(const matrix<T>& dy, const matrix<T>& xhat, const std::vector<T>& inv_std,
                         const row_vector<T>& gamma, matrix<T>& dz, row_vector<T>& dgamma,
                         row_vector<T>& dbeta) {
  const std::int64_t n = dy.rows(), h = dy.cols();
  const matrix<T> prod = dy.cwiseProduct(xhat);
  dgamma = col_sums<T>(prod);
  dbeta = col_sums<T>(dy);
  dz.resize(n, h);
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < n; ++r) {
    const row_vector<T> dx = dy.row(r).cwiseProduct(gamma);
    const T s1 = dx.sum();
    const T s2 = dx.cwiseProduct(xhat.row(r)).sum();
    dz.row(r) = (inv_std[static_cast<std::size_t>(r)] / static_cast<T>(h)) *
                (static_cast<T>(h) * dx.array() - s1 - xhat.row(r).array() * s2).matrix();
  }
}

// ---- dropout -------------------------------------------------------------------------------

/// Counter-based hash (splitmix64 finalizer over a combined key): the mask of element
/// (row, col) in layer `layer` at step `step` needs no state and no thread order.
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline bool dropout_keep(std::uint64_t seed, std::uint64_t step, std::uint64_t layer,
                         std::uint64_t row, std::uint64_t col, double p) {
  const std::uint64_t k = mix64(mix64(mix64(mix64(seed ^ 0xd1b54a32d192ed03ull) ^ step) ^ layer) ^
                                (row * 0x100000001b3ull + col));
  return static_cast<double>(k >> 11) * 0x1.0p-53 >= p;
}

// ---- loss ----------------------------------------------------------------------------------

/// Mean softmax cross-entropy over the rows with a label >= 0; writes d(loss)/d(logits)
/// into `grad` (zero rows for unlabelled nodes). Returns {loss, labelled rows, correct}.
struct loss_result {
  double loss = 0;
  std::int64_t count = 0;
  std::int64_t correct = 0;
};

template <class T>
loss_result softmax_cross_entropy(const matrix<T>& logits, std::span<const std::int64_t> labels,
                                  matrix<T>* grad) {
  const std::int64_t n = logits.rows(), c = logits.cols();
  loss_result res;
  for (std::int64_t r = 0; r < n; ++r) res.count += labels[static_cast<std::size_t>(r)] >= 0;
  if (grad) grad->setZero(n, c);
  std::vector<double> row_loss(static_cast<std::size_t>(n), 0.0);
  std::vector<char> right(static_cast<std::size_t>(n), 0);
  const double inv = res.count > 0 ? 1.0 / static_cast<double>(res.count) : 0.0;
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < n; ++r) {
    const auto y = labels[static_cast<std::size_t>(r)];
    if (y < 0) continue;
    Eigen::Index arg = 0;
    const T mx = logits.row(r).maxCoeff(&arg);
    const row_vector<T> e = (logits.row(r).array() - mx).exp().matrix();
    const T s = e.sum();
    row_loss[static_cast<std::size_t>(r)] =
        -(static_cast<double>(logits(r, y) - mx) - std::log(static_cast<double>(s)));
    right[static_cast<std::size_t>(r)] = arg == y;
    if (grad) {
      grad->row(r) = e / s;
      (*grad)(r, y) -= T(1);
      grad->row(r) *= static_cast<T>(inv);
    }
  }
  for (std::int64_t r = 0; r < n; ++r) {
    res.loss += row_loss[static_cast<std::size_t>(r)];
    res.correct += right[static_cast<std::size_t>(r)];
  }
  res.loss *= inv;
  return res;
}

}  // namespace gcn
