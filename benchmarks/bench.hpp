// kryten-bench: the bench -- the systems under test, the phases that load and
// measure them, the scenarios, and the report. Split by responsibility:
//   bench_process   starting and stopping processes, files, HTTP, Ctrl-C
//   bench_sampling  CPU, threads and memory from /proc
//   bench_bus       the bench's own NATS connection (health requests, pongs)
//   bench_systems   the nats-server and the three systems: configs, start, stop
//   bench_phases    one measured phase: load, drain, figures
//   bench_scenarios the scenarios, each adding rows to the report
//   bench_report    the table, its JSON and the plot
//   kryten_bench    options and the order of the run
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_bus.hpp"
#include "bench_report.hpp"
#include "bench_system.hpp"
#include "bench_util.hpp"

namespace kbench {

using json = nlohmann::json;

// The runtime's defaults (include/kryten/config.hpp), written into the bench
// bot's config and given to the raw subscriber.
constexpr std::int64_t pending_msgs_limit = -1;
constexpr std::int64_t pending_bytes_limit = 1LL << 30;
constexpr std::int64_t handler_queue_bytes = 1LL << 30;

struct options {
  bool quick = false;
  std::string json_out = "bench-results.json";
  std::string plot, plot_from;
  std::string node_peer, node_cache, work_dir;
  std::string nats_server = "nats-server";
  bool no_node = false;
  std::optional<bool> isolated;
  std::int64_t count = 0;
  double phase_seconds = 0;
  std::string rates = "1000,10000,0.5max,0.9max";
  double overload_seconds = 0;
  std::int64_t work_us = 1000;
  std::string bot;  // a user's bot command line, with {config}
};

struct load_spec {
  std::vector<std::string> channels{"bench"};
  double rate = 0;
  std::int64_t count = 0;
  double duration = 0;
  std::string mix;  // "" = kryten-load's default
  std::string send_asap;  // "" = kryten-load's default (on when paced)
};

struct sys_phase {
  system_ut* sys = nullptr;
  json before, last;
  bool have_before = false, have_last = false;
  std::uint64_t cpu0 = 0, cpu1 = 0;
  std::int64_t t0 = 0, t1 = 0;
  long rss_peak_kb = 0, rss_start_kb = 0;
  bool drained = false;
  std::string note;
};

struct phase {
  std::string name;
  std::vector<sys_phase> s;
  json load;
  double slow_consumers0 = 0;
  std::uint64_t server_cpu0 = 0;
  double publisher_cpu_s = 0;
};

inline std::uint64_t received_of(const json& d) { return static_cast<std::uint64_t>(num(d, "events_received")); }
inline std::uint64_t handled_of(const json& d) {
  return static_cast<std::uint64_t>(d.contains("events_handled") ? num(d, "events_handled") : num(d, "events_received"));
}
/// The bench bot's "dropped", or a kryten-cpp bot's own health: dropped_events.
inline std::uint64_t dropped_of(const json& d) {
  return static_cast<std::uint64_t>(d.contains("dropped") ? num(d, "dropped") : num(d, "dropped_events"));
}

class bench {
public:
  explicit bench(options o) : opt_(std::move(o)) {}
  ~bench() { cleanup(); }

  int run();

private:
  // setup
  void start_nats();
  void setup_node(system_ut& node);
  std::unique_ptr<system_ut> make_kryten(const std::string& name, const std::vector<std::string>& channels,
                                         std::vector<std::string> extra);
  std::unique_ptr<system_ut> make_raw(const std::string& name, const std::vector<std::string>& channels,
                                      std::vector<std::string> extra);
  std::unique_ptr<system_ut> make_node(const std::vector<std::string>& channels);
  std::string write_config(const std::string& service, const std::vector<std::string>& channels, bool kryten_keys);
  bool launch(system_ut& s, double timeout_s = 30);
  void stop(system_ut& s);

  // phases
  phase begin_phase(const std::string& name, const std::vector<system_ut*>& systems);
  json run_load(phase& p, const load_spec& l);
  void sample_rss(phase& p);
  void drain(phase& p, std::uint64_t expected, double timeout_s, double stall_s = 2.0);
  json end_phase(phase& p);
  json phase_json(const phase& p);
  double slow_consumers();
  json memory_bound(json& system);

  // scenarios
  void scenario_max_throughput();
  void scenario_latency();
  void scenario_slow_handlers();
  void scenario_overload();
  void scenario_burst();
  void scenario_idle(const std::string& when);
  /// Scenarios that need the bench bot's options say so and are skipped.
  bool needs_bench_bot(const char* scenario) {
    if (opt_.bot.empty())
      return false;
    report_.add_note(std::string{scenario} + ": left out with --bot (it needs the bench bot's --work-us)");
    return true;
  }
  const char* label(int col) const {
    return col == col_kryten && !opt_.bot.empty() ? "your bot" : column_labels[col];
  }
  void scenario_start_stop();
  void settle(double timeout_s);

  void add_row(const std::string& section, const std::string& metric, const std::string& unit,
               std::array<json, 3> v) {
    report_.add_row(section, metric, unit, std::move(v));
  }
  void cleanup();

  std::vector<system_ut*> mains() {
    std::vector<system_ut*> v;
    for (auto& s : main_)
      if (s && s->available && s->pid > 0)
        v.push_back(s.get());
    return v;
  }
  system_ut* main_of(column c) {
    for (auto& s : main_)
      if (s && s->col == c && s->available && s->pid > 0)
        return s.get();
    return nullptr;
  }

  options opt_;
  std::string bin_dir_;
  std::string url_;
  int port_ = 0, monitor_port_ = 0;
  pid_t nats_pid_ = -1;
  bus bus_;
  bool bus_up_ = false;
  std::vector<std::unique_ptr<system_ut>> main_;
  std::vector<system_ut*> live_;  // every launched, not yet stopped system
  std::string node_reason_;
  json results_ = json::object();
  report report_;
  double max_rate_ = 0;           // kryten-cpp's events/s in scenario 1 (shared)
  std::array<double, 3> low_rate_p99_{0, 0, 0};  // e2e p99 at the lowest fixed rate
  std::size_t frame_bytes_ = 300;
};

}  // namespace kbench
