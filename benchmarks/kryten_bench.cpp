// kryten-bench: runs the benchmark scenarios against three systems side by
// side -- the kryten-cpp service (kryten-bench-bot), the ceiling (a raw cnats
// subscriber doing the same decode, kryten-raw-subscriber) and the Node +
// nats.js echo bot -- on a nats-server of its own on 127.0.0.1, with
// kryten-load as the publisher. Prints a table with the ratios
// kryten-cpp/raw and kryten-cpp/Node and writes the same as JSON; --plot
// draws latency percentiles against offered rate with gnuplot.
//
// See benchmarks/README.md for the design (fairness, what each number means).
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <nats/nats.h>

#include "bench.hpp"
#include "bench_process.hpp"
#include "bench_sampling.hpp"

namespace fs = std::filesystem;
using kbench::json;

namespace {

using kbench::usage_error;
using kbench::options;

constexpr const char* usage_text = R"(kryten-bench: kryten-cpp vs a raw cnats subscriber vs the Node echo bot

usage: kryten-bench [options]
       kryten-bench --plot OUT.png --from RESULTS.json     (plot only)

  --quick               small counts and short phases: the whole run in < 60 s
  --json-out FILE       where to write the results (default bench-results.json)
  --plot FILE           after the run (or with --from: instead of it) draw
                        latency percentiles vs offered rate (gnuplot; .png or .svg)
  --from FILE           results JSON to plot (with --plot)
  --node-peer DIR       the Node echo bot to compare with (default: $KRYTEN_NODE_PEER,
                        else <repo>/peers/node-echo-bot)
  --node-cache DIR      scratch copy of the peer where `npm ci` runs once
                        (default <build>/benchmarks/node-echo-bot)
  --no-node             leave the Node peer out
  --work-dir DIR        configs and logs of this run (default <build>/benchmarks/bench-run)
  --nats-server PATH    nats-server binary (default: nats-server on PATH)
  --count N             events in the max-throughput scenario
                        (default 1,000,000; --quick 100,000)
  --phase-seconds S     length of each fixed-rate phase (default 10; --quick 2)
  --rates LIST          fixed rates for scenario 2, comma-separated events/s; "max"
                        fractions allowed, e.g. 1000,10000,0.5max,0.9max (default)
  --overload-seconds S  overload length in scenario 4 (default 10; --quick 3)
  --work-us N           simulated per-event work in scenario 3 (default 1000)
  --bot "CMD ARGS"      benchmark your own kryten-cpp bot instead of the bench
                        bot: a command line (split at spaces, no shell) in which
                        {config} is replaced by the config file the bench writes
                        (NATS URL, channels, service name); e.g.
                        --bot "build/release/examples/echo_bot --config {config}"
  --isolated / --no-isolated
                        also run scenario 1 for each system alone (default: on,
                        off with --quick)
  --help                this text

Scenarios (all three systems subscribe to the same channel and receive one
publisher's stream at the same time, unless noted):
  1 max throughput    N events as fast as possible; events/s handled, drops,
                      CPU, peak RSS
  2 latency           fixed rates; p50/p90/p99/p999/max of publish -> handler
                      start (kryten, raw) and publish -> "!ping" reply (all)
  3 slow handlers     --work-us of spinning per event, 1 and 4 handler actors
                      over 4 channels (each system alone; Node n/a); and a slow
                      chat handler next to a fast adduser handler
  4 overload          2x the max rate of scenario 1 for --overload-seconds: RSS
                      bound, drops counted, latency recovery at 1,000/s after
  4b burst            1,000,000 events (--quick 200,000) at full speed to a
                      10 us chat handler and a fast adduser handler, default
                      bounds: handled, dropped, peak RSS vs the stated bound
  5 start/stop        process start -> first health reply or lifecycle startup
                      event; SIGTERM -> exit
  6 idle              30 s (--quick 5) with no events, before scenario 1 and
                      after 4b: CPU, threads, RSS, which threads woke

Your own bot in the kryten-cpp column (--bot): scenarios 1, 2, 4, 5 and 6 run
as for the bench bot; 3 and 4b need the bench bot's --work-us and are left
out. The figures come from the bot's health (the runtime's `health` command:
the /health document): events_received, events_handled, dropped_events, and
its handler_latency and queue_delay percentiles. Publish -> "!ping" reply is
measured when the bot answers "!ping" with a say command, as the echo bot does.
)";

options parse(int argc, char** argv) {
  options o;
  kbench::arg_reader a{argc, argv};
  while (a.next()) {
    if (a.is("--help") || a.is("-h")) {
      std::cout << usage_text;
      std::exit(0);
    } else if (a.is("--quick")) o.quick = true;
    else if (a.is("--json-out")) o.json_out = a.value();
    else if (a.is("--plot")) o.plot = a.value();
    else if (a.is("--from")) o.plot_from = a.value();
    else if (a.is("--node-peer")) o.node_peer = a.value();
    else if (a.is("--node-cache")) o.node_cache = a.value();
    else if (a.is("--no-node")) o.no_node = true;
    else if (a.is("--work-dir")) o.work_dir = a.value();
    else if (a.is("--nats-server")) o.nats_server = a.value();
    else if (a.is("--count")) o.count = a.integer();
    else if (a.is("--phase-seconds")) o.phase_seconds = a.number();
    else if (a.is("--rates")) o.rates = a.value();
    else if (a.is("--overload-seconds")) o.overload_seconds = a.number();
    else if (a.is("--work-us")) o.work_us = a.integer();
    else if (a.is("--bot")) o.bot = a.value();
    else if (a.is("--isolated")) o.isolated = true;
    else if (a.is("--no-isolated")) o.isolated = false;
    else throw usage_error("unknown option " + a.name());
  }
  if (!o.plot_from.empty() && o.plot.empty())
    throw usage_error("--from needs --plot OUT");
  if (!o.bot.empty() && o.bot.find("{config}") == std::string::npos)
    throw usage_error("--bot: the command line needs {config} where the config file goes");
  if (o.count == 0) o.count = o.quick ? 100000 : 1000000;
  if (o.phase_seconds <= 0) o.phase_seconds = o.quick ? 2 : 10;
  if (o.overload_seconds <= 0) o.overload_seconds = o.quick ? 3 : 10;
  if (!o.isolated) o.isolated = !o.quick;
  if (o.node_peer.empty()) {
    if (auto env = std::getenv("KRYTEN_NODE_PEER"))
      o.node_peer = env;
    else
      o.node_peer = std::string{KRYTEN_BENCH_SOURCE_DIR} + "/../peers/node-echo-bot";
  }
  if (o.node_cache.empty()) o.node_cache = std::string{KRYTEN_BENCH_BINARY_DIR} + "/node-echo-bot";
  if (o.work_dir.empty()) o.work_dir = std::string{KRYTEN_BENCH_BINARY_DIR} + "/bench-run";
  return o;
}

}  // namespace

namespace kbench {

int bench::run() {
  std::error_code ec;
  fs::create_directories(opt_.work_dir, ec);
  if (ec)
    throw std::runtime_error("cannot create " + opt_.work_dir + ": " + ec.message());
  bin_dir_ = fs::read_symlink("/proc/self/exe").parent_path().string();
  for (auto* tool : {"kryten-load", "kryten-raw-subscriber", "kryten-bench-bot"})
    if (!fs::exists(bin_dir_ + "/" + tool))
      throw std::runtime_error(std::string{tool} + " is not built next to kryten-bench (" + bin_dir_ + ")");
  auto started = kbench::mono_ns();
  start_nats();
  bus_.connect(url_);
  bus_up_ = true;

  const std::vector<std::string> chans_k{"bench", "iso-kryten"}, chans_r{"bench", "iso-raw"}, chans_n{"bench", "iso-node"};
  main_.push_back(make_kryten("kryten", chans_k, {}));
  main_.push_back(make_raw("raw", chans_r, {}));
  main_.push_back(make_node(chans_n));
  setup_node(*main_[2]);
  for (auto& s : main_) {
    std::cerr << "kryten-bench: starting " << s->service << "\n";
    launch(*s);
  }
  if (!main_of(col_kryten))
    throw std::runtime_error("the kryten-cpp bench bot did not start: " + main_[0]->reason + " (log: " + main_[0]->log + ")");

  struct utsname u{};
  uname(&u);
  double load_start = loadavg();
  if (load_start > std::thread::hardware_concurrency() / 2.0)
    report_.add_note("load average " + fmt_value(load_start) + " at start on " +
                     std::to_string(std::thread::hardware_concurrency()) +
                     " cores: other processes compete for CPU, figures are noisy");
  results_["meta"] = {{"date", kbench::iso_now()},
                      {"loadavg_start", load_start},
                      {"host", u.nodename},
                      {"kernel", u.release},
                      {"cpus", std::thread::hardware_concurrency()},
                      {"quick", opt_.quick},
                      {"nats_server", url_},
                      {"count", opt_.count},
                      {"phase_seconds", opt_.phase_seconds},
                      {"overload_seconds", opt_.overload_seconds},
                      {"design", "one kryten-load publisher per phase; all three systems subscribe to the same "
                                 "channel and receive the same stream at once (scenarios 1, 2, 4), sharing this "
                                 "machine's cores with the publisher and nats-server; scenario 3 and the "
                                 "'alone' rows run one system at a time"}};
  json sysinfo = json::object();
  for (auto& s : main_)
    sysinfo[s->name] = {{"label", label(s->col)}, {"service", s->service}, {"available", s->available},
                        {"reason", s->reason}, {"command", s->argv}};
  results_["systems"] = sysinfo;
  if (!opt_.bot.empty())
    report_.add_note("kryten-cpp column: your bot, " + opt_.bot + ". Its 'publish -> handler start' "
                     "rows are its runtime's queue_delay (arrival at the connection -> handler "
                     "start) from its health, since it started; events it has no handler for are "
                     "received but neither handled nor dropped, so they show as unaccounted; the "
                     "other figures are measured as for every system");
  if (!main_[2]->available)
    report_.add_note("Node column n/a: " + main_[2]->reason);
  if (!main_[1]->available)
    report_.add_note("raw column n/a: " + main_[1]->reason);

  scenario_idle("fresh");
  scenario_max_throughput();
  scenario_latency();
  scenario_slow_handlers();
  scenario_overload();
  scenario_burst();
  scenario_idle("after_load");
  scenario_start_stop();

  results_["meta"]["loadavg_end"] = loadavg();
  if (bus_.unmatched_pongs() > 0)
    report_.add_note(std::to_string(bus_.unmatched_pongs()) + " say commands from no known system or without a timestamp");
  results_["elapsed_s"] = round_to(static_cast<double>(kbench::mono_ns() - started) / 1e9, 1);
  results_["table"] = report_.table_json();
  results_["notes"] = report_.notes();
  report_.print({label(0), label(1), label(2)});
  std::printf("total time %.1f s; results in %s; logs in %s\n", num(results_, "elapsed_s"), opt_.json_out.c_str(),
              opt_.work_dir.c_str());
  write_text(opt_.json_out, results_.dump(2) + "\n");
  cleanup();
  if (!opt_.plot.empty())
    return plot(opt_.json_out, opt_.plot);
  return 0;
}

}  // namespace kbench

int main(int argc, char** argv) {
  options o;
  try {
    o = parse(argc, argv);
  } catch (const usage_error& e) {
    std::cerr << "kryten-bench: " << e.what() << "\n(see kryten-bench --help)\n";
    return 2;
  }
  kbench::stop_on_signals();
  try {
    if (!o.plot_from.empty())
      return kbench::plot(o.plot_from, o.plot);
    kbench::bench b{o};
    int rc = b.run();
    nats_Close();
    return rc;
  } catch (const kbench::interrupted_error&) {
    std::cerr << "kryten-bench: interrupted\n";
    return 130;
  } catch (const std::exception& e) {
    std::cerr << "kryten-bench: " << e.what() << "\n";
    return 1;
  }
}
