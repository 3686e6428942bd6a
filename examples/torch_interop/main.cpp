// Feeding stored IBMB batches to libtorch without copies: every array of a batch becomes a
// tensor with torch::from_blob, the local graph a sparse CSR tensor, and one GCN-style
// propagation runs on it. Usage: ibmb_torch_interop STORE.ibmb
#include <torch/torch.h>

#include <cstdio>

#include <ibmb/batch/store.hpp>

namespace {

// The store is a read-only mapping: wrap without copying, and never write into these
// tensors (clone() first if a model needs to modify its input in place).
template <class T>
torch::Tensor view_of(std::span<const T> s, torch::IntArrayRef shape, torch::Dtype dtype) {
  return torch::from_blob(const_cast<T*>(s.data()), shape, torch::TensorOptions().dtype(dtype));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s STORE.ibmb\n", argv[0]);
    return 2;
  }
  try {
    const ibmb::batch_store store = ibmb::load_store(argv[1]);
    torch::NoGradGuard no_grad;
    for (std::size_t b = 0; b < store.num_batches(); ++b) {
      const ibmb::batch_view v = store.batch(b);
      const std::int64_t n = v.num_nodes();
      auto x = view_of(v.features(), {n, v.num_features}, torch::kFloat32);
      auto ids = view_of(v.node_ids, {n}, torch::kInt64);
      auto a = torch::sparse_csr_tensor(view_of(v.graph.indptr, {n + 1}, torch::kInt64),
                                        view_of(v.graph.indices, {v.num_edges()}, torch::kInt64),
                                        view_of(v.graph.weights, {v.num_edges()}, torch::kFloat32),
                                        {n, n}, torch::TensorOptions().dtype(torch::kFloat32));
      // One propagation step; the loss of a real model would use rows [0, num_outputs).
      auto h = torch::mm(a, x).narrow(0, 0, v.num_outputs);
      std::printf(
          "batch %zu: %lld nodes (%lld outputs, first id %lld), %lld edges, |A x|_outputs = %.4f\n",
          b, static_cast<long long>(n), static_cast<long long>(v.num_outputs),
          static_cast<long long>(ids[0].item<std::int64_t>()),
          static_cast<long long>(v.num_edges()), h.norm().item<float>());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 0;
}
