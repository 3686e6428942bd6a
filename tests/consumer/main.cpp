// Built against an installed ibmb through find_package: proves the package is usable.
#include <ibmb/ibmb.hpp>

#include <cstdint>
#include <vector>

int main() {
  const std::vector<std::int64_t> src = {0, 1, 2}, dst = {1, 2, 0};
  auto g = ibmb::coo_to_csr<std::int64_t, std::int64_t, float>(
      3, std::span<const std::int64_t>(src), std::span<const std::int64_t>(dst));
  g = ibmb::make_undirected(g.view());
  g.validate(true);
  return g.num_edges() == 6 ? 0 : 1;
}
