// Feeding stored IBMB batches to libtorch without copies: every array of a batch becomes a
// tensor with torch::from_blob, the local graph a sparse CSR tensor, and one GCN-style
// propagation runs on it. Usage: ibmb_torch_interop STORE.ibmb [DATA-SPEC]
//
// Features by store kind:
// - float32: wrapped as they lie in the mapping;
// - float16 / bfloat16: wrapped as kHalf / kBFloat16 (no copy), cast to float32 for the product;
// - ids-only (`--features none`): gathered from the dataset with read_batch_features into a
//   tensor of our own, so DATA-SPEC (the dataset the store was built from) is needed.
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>

#include <ibmb/batch/materialize.hpp>
#include <ibmb/batch/store.hpp>
#include <ibmb/graph/io/load.hpp>

namespace {

// The store is a read-only mapping: wrap without copying, and never write into these
// tensors (clone() first if a model needs to modify its input in place).
template <class T>
torch::Tensor view_of(std::span<const T> s, torch::IntArrayRef shape, torch::Dtype dtype) {
  return torch::from_blob(const_cast<T*>(s.data()), shape, torch::TensorOptions().dtype(dtype));
}

// The batch's features as an n x F float32 tensor.
torch::Tensor features_of(const ibmb::batch_view& v, const ibmb::dataset* ds) {
  // An array, not an IntArrayRef of a braced list: that would point at a dead temporary.
  const std::array<std::int64_t, 2> shape{v.num_nodes(), v.num_features};
  switch (v.dtype) {
    case ibmb::feature_dtype::float32:
      return view_of(v.features(), shape, torch::kFloat32);
    case ibmb::feature_dtype::float16:
      return view_of(v.features_16(), shape, torch::kInt16).view(torch::kHalf).to(torch::kFloat32);
    case ibmb::feature_dtype::bfloat16:
      return view_of(v.features_16(), shape, torch::kInt16)
          .view(torch::kBFloat16)
          .to(torch::kFloat32);
    case ibmb::feature_dtype::none:
      break;
  }
  if (ds == nullptr)
    throw std::invalid_argument("the store is ids-only: pass the dataset SPEC it was built from");
  auto x = torch::empty(shape, torch::kFloat32);
  ibmb::read_batch_features(*ds, v, std::span<float>(x.data_ptr<float>(), x.numel()));
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: %s STORE.ibmb [DATA-SPEC]\n", argv[0]);
    return 2;
  }
  try {
    const ibmb::batch_store store = ibmb::load_store(argv[1]);
    std::optional<ibmb::dataset> ds;
    if (argc == 3) {
      ds = ibmb::load_dataset(argv[2]);
      // The ids index this dataset: at least its size must match the store's (the header's
      // fingerprint is that of the graph as `ibmb build` preprocessed it, A + I).
      if (static_cast<std::int64_t>(store.hdr().dataset_num_nodes) != ds->num_nodes())
        throw std::invalid_argument(
            std::string(argv[2]) + " has " + std::to_string(ds->num_nodes()) +
            " nodes, the store was built for " + std::to_string(store.hdr().dataset_num_nodes));
    }
    torch::NoGradGuard no_grad;
    for (std::size_t b = 0; b < store.num_batches(); ++b) {
      const ibmb::batch_view v = store.batch(b);
      const std::int64_t n = v.num_nodes();
      auto x = features_of(v, ds ? &*ds : nullptr);
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
