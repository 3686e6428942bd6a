// ibmb: loader for the MUSAE datasets of Rozemberczki et al. (facebook page-page and the same
// layout for the others), a folder with
//   <name>_edges.csv   header "id_1,id_2", one undirected edge per line (plain or gzip)
//   <name>_target.csv  header naming the columns, e.g. "id,facebook_id,page_name,page_type";
//                      RFC 4180 CSV (quoted fields with commas and "" escapes)
//   <name>.json        {"<node id>": [feature ids...], ...}: sparse binary features
//
// Structure: the edge file lists each undirected edge once, so the graph gets the reverse of
// every edge, duplicates are merged (first occurrence wins) and self-loops are kept as given
// (one entry each). Columns come out sorted.
// Labels: the label column is `page_type` (facebook), else `target`, else `ml_target`; class
// ids number the distinct label strings in sorted order (numerically when all of them are
// integers, else bytewise), so facebook gives company 0, government 1, politician 2,
// tvshow 3. Nodes without a target row get label -1.
// Features: float32 0/1, F = 1 + the largest feature id.
// Node count: 1 + the largest id in the edges, targets and feature keys. Node and feature ids
// must be at most `detail::max_text_id` (2^44 - 1, see edgelist.hpp); a count too large for
// this machine's memory is an `ibmb::out_of_range` naming the file and line (or JSON byte) of
// the id that implied it. A UTF-8 byte order mark at the start of a file is ignored.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/file.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/graph/io/edgelist.hpp"
#include "ibmb/graph/io/text.hpp"

namespace ibmb {
namespace detail {

/// Sparse binary features parsed from MUSAE's JSON: node -> list of feature ids.
struct musae_features {
  std::vector<std::int64_t> node;       // one per key
  std::vector<std::int64_t> offset{0};  // into feat, one more than node
  std::vector<std::int64_t> feat;
  std::int64_t max_node = -1, max_feat = -1;
  std::size_t max_node_at = 0, max_feat_at = 0;  // byte offsets of the largest ids
};

/// Strict parser for exactly `{"<int>": [<int>, ...], ...}` (whitespace anywhere between
/// tokens). Errors name the file and the byte offset.
class musae_json_parser {
 public:
  musae_json_parser(std::string_view text, std::string name) : s_(text), name_(std::move(name)) {
    if (strip_bom(s_).size() != s_.size()) p_ = utf8_bom.size();  // offsets stay file offsets
  }

  musae_features parse() {
    musae_features out;
    ws();
    expect('{');
    ws();
    if (peek() == '}') {
      ++p_;
    } else {
      for (;;) {
        expect('"');
        const auto key_at = p_;
        const auto key = integer();
        expect('"');
        if (key < 0) fail_at(key_at, "negative node id ", key);
        check_id(key_at, key, "node");
        ws();
        expect(':');
        ws();
        expect('[');
        ws();
        out.node.push_back(key);
        if (key > out.max_node) {
          out.max_node = key;
          out.max_node_at = key_at;
        }
        if (peek() == ']') {
          ++p_;
        } else {
          for (;;) {
            const auto at = p_;
            const auto f = integer();
            if (f < 0) fail_at(at, "negative feature id ", f);
            check_id(at, f, "feature");
            out.feat.push_back(f);
            if (f > out.max_feat) {
              out.max_feat = f;
              out.max_feat_at = at;
            }
            ws();
            if (peek() == ',') {
              ++p_;
              ws();
              continue;
            }
            expect(']');
            break;
          }
        }
        out.offset.push_back(static_cast<std::int64_t>(out.feat.size()));
        ws();
        if (peek() == ',') {
          ++p_;
          ws();
          continue;
        }
        expect('}');
        break;
      }
    }
    ws();
    if (p_ != s_.size()) fail_at(p_, "unexpected '", s_[p_], "' after the closing '}'");
    return out;
  }

 private:
  [[nodiscard]] char peek() const { return p_ < s_.size() ? s_[p_] : '\0'; }
  void ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\r' || s_[p_] == '\t'))
      ++p_;
  }
  void expect(char c) {
    if (p_ >= s_.size()) fail_at(p_, "unexpected end of input, expected '", c, "'");
    if (s_[p_] != c) fail_at(p_, "expected '", c, "', found '", s_[p_], "'");
    ++p_;
  }
  std::int64_t integer() {
    const auto b = p_;
    if (p_ < s_.size() && s_[p_] == '-') ++p_;
    while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') ++p_;
    std::int64_t v = 0;
    const auto r = std::from_chars(s_.data() + b, s_.data() + p_, v);
    if (p_ == b || r.ptr != s_.data() + p_ || r.ec == std::errc::invalid_argument)
      fail_at(b, "expected an integer");
    if (r.ec == std::errc::result_out_of_range)
      throw out_of_range(concat(name_, ": byte ", b, ": integer '", s_.substr(b, p_ - b),
                                "' does not fit 64 bits"));
    return v;
  }
  void check_id(std::size_t at, std::int64_t v, const char* what) const {
    if (v > max_text_id)
      throw out_of_range(concat(name_, ": byte ", at, ": ", what, " id ", v, " exceeds the limit ",
                                max_text_id, text_id_limit_why));
  }
  template <class... Args>
  [[noreturn]] void fail_at(std::size_t at, Args&&... a) const {
    throw format_error(concat(name_, ": byte ", at, ": ", std::forward<Args>(a)...));
  }

  std::string_view s_;
  std::string name_;
  std::size_t p_ = 0;
};

inline musae_features parse_musae_json(std::string_view text, const std::string& name) {
  return musae_json_parser(text, name).parse();
}

/// Strict weak order of decimal integer strings (`text_reader::is_integer`) by value, for any
/// number of digits ("-0" and "0", "007" and "7" compare equal).
inline bool integer_string_less(std::string_view a, std::string_view b) {
  auto split = [](std::string_view s) {
    bool neg = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
      neg = s[0] == '-';
      s.remove_prefix(1);
    }
    while (s.size() > 1 && s[0] == '0') s.remove_prefix(1);
    if (s == "0") neg = false;
    return std::pair<bool, std::string_view>(neg, s);
  };
  const auto [na, da] = split(a);
  const auto [nb, db] = split(b);
  if (na != nb) return na;
  // same sign: compare magnitudes (longer = larger, then digit by digit)
  const bool mag_less = da.size() != db.size() ? da.size() < db.size() : da < db;
  const bool mag_greater = da.size() != db.size() ? da.size() > db.size() : da > db;
  return na ? mag_greater : mag_less;
}

}  // namespace detail

/// Loads a MUSAE dataset folder (see the header comment for the layout and what the loader
/// does to the structure, labels and features).
template <class I = std::int64_t, class O = std::int64_t>
basic_dataset<I, O> load_musae_dir(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  detail::check_csr_types<I, O, float>();
  if (!fs::is_directory(dir)) throw io_error(detail::concat(dir.string(), ": not a directory"));
  std::string stem;
  fs::path edge_path;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string fn = e.path().filename().string();
    for (const std::string suffix : {"_edges.csv", "_edges.csv.gz"}) {
      if (e.is_regular_file() && fn.size() > suffix.size() &&
          fn.compare(fn.size() - suffix.size(), suffix.size(), suffix) == 0) {
        if (!stem.empty())
          throw format_error(detail::concat(dir.string(), ": several *_edges.csv files (",
                                            edge_path.filename().string(), ", ", fn, ")"));
        stem = fn.substr(0, fn.size() - suffix.size());
        edge_path = e.path();
      }
    }
  }
  if (stem.empty()) throw io_error(detail::concat(dir.string(), ": no <name>_edges.csv file"));
  auto find = [&](std::initializer_list<std::string> names) -> fs::path {
    for (const auto& n : names)
      if (fs::is_regular_file(dir / n)) return dir / n;
    throw io_error(detail::concat(dir.string(), ": missing ", *names.begin()));
  };
  const fs::path target_path = find({stem + "_target.csv", stem + "_target.csv.gz"});
  const fs::path json_path = find({stem + ".json", stem + ".json.gz"});
  const auto index_max = static_cast<std::int64_t>(std::numeric_limits<I>::max());

  basic_dataset<I, O> ds;
  ds.name = stem;

  detail::raw_edges edges;
  {
    text_reader in(edge_path);
    edges = detail::read_edges(in, -1, true, false, false, index_max);
  }
  std::int64_t n = edges.max_id + 1;
  std::string n_from = edges.max_where;  // where the node count comes from, for messages

  // targets
  std::vector<std::pair<std::int64_t, std::string>> targets;  // (node, label string)
  std::vector<std::int64_t> target_line;                      // line of each target row
  {
    const std::string text = detail::read_text_file(target_path);
    detail::csv_reader csv(text, target_path.string());
    std::vector<std::string> f;
    if (!csv.next(f)) csv.fail("empty (expected a header line)");
    const auto col = [&](std::string_view nm) {
      return static_cast<std::size_t>(std::find(f.begin(), f.end(), nm) - f.begin());
    };
    const std::size_t id_col = col("id");
    std::size_t label_col = col("page_type");
    if (label_col == f.size()) label_col = col("target");
    if (label_col == f.size()) label_col = col("ml_target");
    if (id_col == f.size() || label_col == f.size())
      csv.fail("header needs an 'id' column and a 'page_type', 'target' or 'ml_target' column");
    const std::size_t cols = f.size();
    while (csv.next(f)) {
      if (f.size() != cols)
        csv.fail("expected ", cols, " fields (as in the header), got ", f.size());
      const std::string& id = f[id_col];
      std::int64_t v = 0;
      const auto r = std::from_chars(id.data(), id.data() + id.size(), v);
      if (id.empty() || r.ptr != id.data() + id.size() || r.ec != std::errc{})
        csv.fail("bad node id '", id, "'");
      if (v < 0) csv.fail<out_of_range>("negative node id ", v);
      if (v > index_max)
        csv.fail<out_of_range>("node id ", v, " does not fit the requested index type");
      detail::check_text_id(csv, v, "node");
      targets.emplace_back(v, f[label_col]);
      target_line.push_back(csv.line_number());
      if (v + 1 > n) {
        n = v + 1;
        n_from = detail::concat(target_path.string(), ":", csv.line_number());
      }
    }
  }

  // features
  detail::musae_features feats;
  {
    const std::string text = detail::read_text_file(json_path);
    feats = detail::parse_musae_json(text, json_path.string());
  }
  if (feats.max_node > index_max)
    throw out_of_range(detail::concat(json_path.string(), ": byte ", feats.max_node_at,
                                      ": node id ", feats.max_node,
                                      " does not fit the requested index type"));
  if (feats.max_node + 1 > n) {
    n = feats.max_node + 1;
    n_from = detail::concat(json_path.string(), ": byte ", feats.max_node_at);
  }
  if (n > index_max)
    throw out_of_range(
        detail::concat(n_from, ": ", n, " nodes do not fit the requested index type"));
  auto sized = [&](const std::string& file, const auto&... what) {
    return detail::concat(file, ": ", what..., " (the node count comes from ", n_from, ")");
  };

  // labels: distinct strings in sorted order (numeric when all are integers)
  {
    std::vector<std::string> classes;
    classes.reserve(targets.size());
    for (const auto& t : targets) classes.push_back(t.second);
    std::sort(classes.begin(), classes.end());
    classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
    const bool numeric =
        !classes.empty() && std::all_of(classes.begin(), classes.end(), [](const std::string& c) {
          return text_reader::is_integer(c);
        });
    if (numeric) {
      std::stable_sort(classes.begin(), classes.end(), detail::integer_string_less);
    }
    std::map<std::string, std::int64_t> id_of;
    for (std::size_t c = 0; c < classes.size(); ++c)
      id_of.emplace(classes[c], static_cast<std::int64_t>(c));
    detail::alloc_or_throw(
        detail::mul_sat(static_cast<std::uint64_t>(n), sizeof(std::int64_t)),
        [&] { ds.labels.assign(static_cast<std::size_t>(n), -2); },
        [&] { return sized(target_path.string(), "labels of ", n, " nodes"); });
    for (std::size_t k = 0; k < targets.size(); ++k) {
      const auto& [v, s] = targets[k];
      auto& l = ds.labels[static_cast<std::size_t>(v)];
      if (l != -2)
        throw format_error(detail::concat(target_path.string(), ":", target_line[k], ": node ", v,
                                          " has more than one target row"));
      l = id_of.at(s);
    }
    for (auto& l : ds.labels)
      if (l == -2) l = -1;
  }

  // dense binary features
  const std::int64_t F = feats.max_feat + 1;
  auto describe_features = [&] {
    return sized(json_path.string(), "dense features of ", n, " nodes x ", F,
                 " columns (the largest feature id is at byte ", feats.max_feat_at, ")");
  };
  if (F > 0 && n > std::numeric_limits<std::int64_t>::max() / F)
    throw out_of_range(detail::concat(describe_features(), ": the size overflows 64 bits"));
  std::vector<char> seen_node;
  detail::alloc_or_throw(
      detail::mul_sat(static_cast<std::uint64_t>(n * F), sizeof(float)),
      [&] {
        ds.features.assign(static_cast<std::size_t>(n * F), 0.0f);
        seen_node.assign(static_cast<std::size_t>(n), 0);
      },
      describe_features);
  ds.num_features = F;
  {
    for (std::size_t k = 0; k < feats.node.size(); ++k) {
      const auto v = feats.node[k];
      if (seen_node[static_cast<std::size_t>(v)])
        throw format_error(
            detail::concat(json_path.string(), ": node \"", v, "\" appears more than once"));
      seen_node[static_cast<std::size_t>(v)] = 1;
      float* row = ds.features.data() + v * F;
      for (auto p = feats.offset[k]; p < feats.offset[k + 1]; ++p)
        row[feats.feat[static_cast<std::size_t>(p)]] = 1.0f;
    }
  }

  build_options b;
  b.make_undirected = true;
  b.duplicates = duplicate_policy::keep_first;
  ds.graph = detail::edges_to_csr<I, O>(edges, n, b, edge_path.string(), n_from);
  return ds;
}

}  // namespace ibmb
