// gcn: save and load a model's weights (and the normalization it was trained with) as a
// NumPy .npz: "config" int64 [kind, in, hidden, classes, layers, normalization],
// "dropout" float64 [1], then "p000", "p001", ... float32 in `model::params()` order.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/graph/io/npy.hpp"
#include "ibmb/graph/io/npz.hpp"
#include "ibmb/graph/normalize.hpp"
#include "model.hpp"

namespace gcn {

inline std::string param_name(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "p%03zu", i);
  return buf;
}

/// Writes the model atomically (same weights => same bytes).
inline void save_model(const std::filesystem::path& path, const model<float>& m,
                       ibmb::normalization norm) {
  const auto& c = m.config();
  const std::vector<std::int64_t> cfg = {
      static_cast<std::int64_t>(c.kind), c.in, c.hidden, c.classes, c.layers,
      static_cast<std::int64_t>(norm)};
  const std::vector<double> drop = {c.dropout};
  std::vector<ibmb::npz_member> members;
  members.push_back({"config", ibmb::encode_npy<std::int64_t>(cfg, {6})});
  members.push_back({"dropout", ibmb::encode_npy<double>(drop, {1})});
  for (std::size_t i = 0; i < m.params().size(); ++i) {
    const auto& p = m.params()[i];
    members.push_back(
        {param_name(i), ibmb::encode_npy<float>(
                            std::span<const float>(p.data(), static_cast<std::size_t>(p.size())),
                            {p.rows(), p.cols()})});
  }
  ibmb::write_npz(path, members);
}

struct loaded_model {
  model<float> net;
  ibmb::normalization norm = ibmb::normalization::row;
};

/// Reads a file written by `save_model`; throws `ibmb::format_error` naming the file and the
/// member that does not fit.
inline loaded_model load_model(const std::filesystem::path& path) {
  const auto file = path.string();
  auto arrays = ibmb::read_npz(path);
  auto bad = [&](auto&&... a) {
    throw ibmb::format_error(ibmb::detail::concat(file, ": not a gcn model file: ", a...));
  };
  auto it = arrays.find("config");
  if (it == arrays.end()) bad("no 'config' member");
  const auto cfg = it->second.as<std::int64_t>(file + ": config");
  if (cfg.size() != 6) bad("'config' holds ", cfg.size(), " values, expected 6");
  it = arrays.find("dropout");
  if (it == arrays.end()) bad("no 'dropout' member");
  const auto drop = it->second.as<double>(file + ": dropout");
  if (drop.size() != 1) bad("'dropout' holds ", drop.size(), " values, expected 1");
  if (cfg[0] < 0 || cfg[0] > 1) bad("model kind ", cfg[0]);
  if (cfg[5] < 0 || cfg[5] > 2) bad("normalization ", cfg[5]);
  model_config c;
  c.kind = static_cast<model_kind>(cfg[0]);
  c.in = cfg[1];
  c.hidden = cfg[2];
  c.classes = cfg[3];
  c.layers = cfg[4];
  c.dropout = drop[0];
  if (c.in < 1 || c.hidden < 1 || c.classes < 1 || c.layers < 1 || c.layers > 64 ||
      !(c.dropout >= 0 && c.dropout < 1))
    bad("config [", cfg[0], ", ", cfg[1], ", ", cfg[2], ", ", cfg[3], ", ", cfg[4], "], dropout ",
        c.dropout);
  // Every conv's W (in x hidden, then hidden x hidden) and the Linear's W (hidden x classes)
  // at least must be in the file: a corrupted config must not allocate a model far larger
  // than the file.
  double held = 0;
  for (const auto& [name, a] : arrays) held += static_cast<double>(a.size());
  const double need = static_cast<double>(c.in) * static_cast<double>(c.hidden) +
                      static_cast<double>(c.layers - 1) * static_cast<double>(c.hidden) *
                          static_cast<double>(c.hidden) +
                      static_cast<double>(c.hidden) * static_cast<double>(c.classes);
  if (need > held)
    bad("config [", cfg[0], ", ", cfg[1], ", ", cfg[2], ", ", cfg[3], ", ", cfg[4], "] needs ",
        need, " weights or more, the file holds ", held, " values");
  loaded_model out{model<float>(c), static_cast<ibmb::normalization>(cfg[5])};
  auto& ps = out.net.params();
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const auto name = param_name(i);
    it = arrays.find(name);
    if (it == arrays.end()) bad("no '", name, "' member");
    const auto& a = it->second;
    if (a.shape.size() != 2 || a.shape[0] != ps[i].rows() || a.shape[1] != ps[i].cols())
      bad("'", name, "' has shape ", a.shape.size() == 2 ? a.shape[0] : -1, " x ",
          a.shape.size() == 2 ? a.shape[1] : -1, ", expected ", ps[i].rows(), " x ", ps[i].cols());
    const auto v = a.as<float>(file + ": " + name);
    std::copy(v.begin(), v.end(), ps[i].data());
  }
  if (arrays.size() != ps.size() + 2)
    bad(arrays.size() - 2, " parameter members, expected ", ps.size());
  return out;
}

}  // namespace gcn
