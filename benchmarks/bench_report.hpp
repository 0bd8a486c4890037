// kryten-bench: the report -- rows of figures for the three columns, the
// ratios kryten-cpp/raw and kryten-cpp/Node, notes, and the latency plot.
#pragma once

#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kbench {

using json = nlohmann::json;

/// A number field of a JSON object, 0 when missing or not a number.
double num(const json& j, const char* key);
json round_to(double v, int decimals);
/// "n/a" for null; a string as is; a number with 0, 2 or 3 decimals by size.
std::string fmt_value(const json& v);
/// a / b rounded to 3 decimals; null unless both are numbers and b is not 0.
json ratio(const json& a, const json& b);

class report {
public:
  /// One figure per column (kryten-cpp, raw, Node); null: n/a.
  void add_row(const std::string& section, const std::string& metric, const std::string& unit,
               std::array<json, 3> v);
  void add_note(std::string note);

  void print(const std::array<const char*, 3>& labels) const;
  json table_json() const;
  const std::vector<std::string>& notes() const { return notes_; }

private:
  struct row {
    std::string section;
    std::string metric;
    std::string unit;
    std::array<json, 3> v;
  };
  std::vector<row> rows_;
  std::vector<std::string> notes_;
};

/// Latency percentiles against offered rate from a results file, drawn with
/// gnuplot into out_file (.png or .svg). 0 when drawn.
int plot(const std::string& from, const std::string& out_file);

}  // namespace kbench
