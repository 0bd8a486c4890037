#include "bench_report.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "bench_process.hpp"

namespace kbench {

double num(const json& j, const char* key) {
  if (!j.is_object())
    return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

json round_to(double v, int decimals) {
  double f = std::pow(10.0, decimals);
  return std::round(v * f) / f;
}

std::string fmt_value(const json& v) {
  if (v.is_null())
    return "n/a";
  if (v.is_string())
    return v.get<std::string>();
  double d = v.get<double>();
  char buf[32];
  if (std::fabs(d) >= 100)
    std::snprintf(buf, sizeof(buf), "%.0f", d);
  else if (std::fabs(d) >= 1)
    std::snprintf(buf, sizeof(buf), "%.2f", d);
  else
    std::snprintf(buf, sizeof(buf), "%.3f", d);
  return buf;
}

json ratio(const json& a, const json& b) {
  if (!a.is_number() || !b.is_number())
    return nullptr;
  double x = a.get<double>(), y = b.get<double>();
  if (y == 0)
    return nullptr;
  return round_to(x / y, 3);
}

void report::add_row(const std::string& section, const std::string& metric,
                     const std::string& unit, std::array<json, 3> v) {
  rows_.push_back({section, metric, unit, std::move(v)});
}

void report::add_note(std::string note) {
  notes_.push_back(std::move(note));
}

void report::print(const std::array<const char*, 3>& labels) const {
  std::printf("\n%-58s %14s %14s %14s %10s %10s\n", "", labels[0], labels[1], labels[2],
              "cpp/raw", "cpp/Node");
  std::string section;
  for (auto& r : rows_) {
    if (r.section != section) {
      section = r.section;
      std::printf("\n%s\n", section.c_str());
    }
    std::string metric = "  " + r.metric + (r.unit.empty() ? "" : " (" + r.unit + ")");
    std::printf("%-58s %14s %14s %14s %10s %10s\n", metric.c_str(), fmt_value(r.v[0]).c_str(),
                fmt_value(r.v[1]).c_str(), fmt_value(r.v[2]).c_str(), fmt_value(ratio(r.v[0], r.v[1])).c_str(),
                fmt_value(ratio(r.v[0], r.v[2])).c_str());
  }
  std::printf("\n");
  for (auto& n : notes_)
    std::printf("note: %s\n", n.c_str());
}

json report::table_json() const {
  json t = json::array();
  for (auto& r : rows_)
    t.push_back({{"section", r.section}, {"metric", r.metric}, {"unit", r.unit},
                 {"kryten", r.v[0]}, {"raw", r.v[1]}, {"node", r.v[2]},
                 {"kryten_over_raw", ratio(r.v[0], r.v[1])}, {"kryten_over_node", ratio(r.v[0], r.v[2])}});
  return t;
}

int plot(const std::string& from, const std::string& out_file) {
  auto j = json::parse(read_text(from), nullptr, false);
  if (!j.is_object() || !j.contains("scenarios") || !j["scenarios"].contains("latency"))
    throw std::runtime_error(from + ": no latency scenario in this results file");
  auto base = out_file.substr(0, out_file.rfind('.'));
  auto dat = base + ".dat";
  std::ofstream d{dat};
  const char* keys[] = {"kryten", "raw", "node"};
  const char* qs[] = {"p50_ms", "p90_ms", "p99_ms", "p999_ms"};
  auto cell = [](const json& r, const char* what, const char* q) -> std::string {
    if (!r.contains(what) || !r[what].is_object() || num(r[what], "count") == 0 || num(r[what], q) <= 0)
      return "?";
    return std::to_string(num(r[what], q));
  };
  for (auto* k : keys) {
    d << "# " << k << ": offered_eps e2e_p50 e2e_p90 e2e_p99 e2e_p999 start_p50 start_p90 start_p99 start_p999\n";
    for (auto& ph : j["scenarios"]["latency"]["phases"]) {
      d << num(ph, "offered_eps");
      const json& r = ph["systems"].contains(k) ? ph["systems"][k] : json::object();
      for (auto* q : qs) d << " " << cell(r, "e2e", q);
      for (auto* q : qs) d << " " << cell(r, "latency", q);
      d << "\n";
    }
    d << "\n\n";
  }
  d.close();
  bool svg = out_file.size() > 4 && out_file.compare(out_file.size() - 4, 4, ".svg") == 0;
  auto gp = base + ".gp";
  std::ofstream g{gp};
  g << (svg ? "set terminal svg size 1400,1000 dynamic\n" : "set terminal pngcairo size 1400,1000\n")
    << "set output '" << out_file << "'\n"
    << "set datafile missing '?'\n"
    << "set logscale xy\nset grid\nset key top left\n"
    << "set xlabel 'offered rate (events/s)'\nset ylabel 'latency (ms)'\n"
    << "set multiplot layout 2,2 title 'kryten-bench: latency vs offered rate (" << j["meta"].value("date", "")
    << ", " << j["meta"].value("host", "") << ")'\n";
  const char* titles[] = {"p50", "p90", "p99", "p99.9"};
  for (int q = 0; q < 4; ++q) {
    if (q == 1)
      g << "unset key\n";  // one legend, in the first panel
    g << "set title '" << titles[q] << "'\n"
      << "plot '" << dat << "' index 0 using 1:" << 2 + q << " with linespoints lw 2 lc rgb '#1f77b4' title 'kryten-cpp: publish->!ping reply', \\\n"
      << "     '" << dat << "' index 1 using 1:" << 2 + q << " with linespoints lw 2 lc rgb '#2ca02c' title 'raw cnats: publish->!ping reply', \\\n"
      << "     '" << dat << "' index 2 using 1:" << 2 + q << " with linespoints lw 2 lc rgb '#d62728' title 'Node nats.js: publish->!ping reply', \\\n"
      << "     '" << dat << "' index 0 using 1:" << 6 + q << " with linespoints dt 2 lc rgb '#1f77b4' title 'kryten-cpp: publish->handler start', \\\n"
      << "     '" << dat << "' index 1 using 1:" << 6 + q << " with linespoints dt 2 lc rgb '#2ca02c' title 'raw cnats: publish->handler start'\n";
  }
  g << "unset multiplot\n";
  g.close();
  auto log = base + ".gnuplot.log";
  int rc = run_command({"gnuplot", gp}, log, 60);
  if (rc != 0) {
    std::cerr << "kryten-bench: gnuplot failed (" << (rc == 127 ? "not installed? apt-get install -y --no-install-recommends gnuplot-nox" : tail(log, 3))
              << ")\n";
    return 1;
  }
  std::cerr << "kryten-bench: plot written to " << out_file << " (data " << dat << ", script " << gp << ")\n";
  return 0;
}

}  // namespace kbench
