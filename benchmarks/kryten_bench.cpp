// kryten-bench: runs the benchmark scenarios against three systems side by
// side -- the kryten-cpp service (kryten-bench-bot), the ceiling (a raw cnats
// subscriber doing the same decode, kryten-raw-subscriber) and the Node +
// nats.js echo bot -- on a nats-server of its own on 127.0.0.1, with
// kryten-load as the publisher. Prints a table with the ratios
// kryten-cpp/raw and kryten-cpp/Node and writes the same as JSON; --plot
// draws latency percentiles against offered rate with gnuplot.
//
// See benchmarks/README.md for the design (fairness, what each number means).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include "bench_util.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The runtime's defaults (include/kryten/config.hpp), written into the bench
// bot's config and given to the raw subscriber.
constexpr std::int64_t pending_msgs_limit = -1;
constexpr std::int64_t pending_bytes_limit = 1LL << 30;
constexpr std::int64_t handler_queue_bytes = 1LL << 30;

using kbench::usage_error;

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

volatile std::sig_atomic_t interrupted = 0;
extern "C" void on_signal(int) { interrupted = 1; }

struct interrupted_error : std::runtime_error {
  interrupted_error() : std::runtime_error("interrupted") {}
};

void check_interrupt() {
  if (interrupted)
    throw interrupted_error{};
}

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// -- options ------------------------------------------------------------------------

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

// -- processes ----------------------------------------------------------------------

/// fork/exec with stdin from /dev/null and stdout+stderr to `log` (stdout to
/// `out` when given). The child gets its own process group (no terminal
/// signals) and SIGTERM when the bench dies.
pid_t spawn(const std::vector<std::string>& args, const std::string& log,
            const std::string& out = {}, const std::string& cwd = {}) {
  std::vector<char*> av;
  for (auto& a : args)
    av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0)
    throw std::runtime_error(std::string{"fork: "} + std::strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int in = open("/dev/null", O_RDONLY);
    int err = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int so = out.empty() ? err : open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in >= 0) dup2(in, 0);
    if (so >= 0) dup2(so, 1);
    if (err >= 0) dup2(err, 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0)
      _exit(126);
    execvp(av[0], av.data());
    _exit(127);
  }
  return pid;
}

/// Waits up to timeout_ms for pid to exit (1 ms polling); the exit status or
/// nullopt. `usage` gets the child's resource use when it has exited.
std::optional<int> wait_exit(pid_t pid, std::int64_t timeout_ms, struct rusage* usage = nullptr) {
  auto deadline = kbench::mono_ns() + timeout_ms * 1000000;
  for (;;) {
    int status = 0;
    struct rusage ru{};
    pid_t r = wait4(pid, &status, WNOHANG, &ru);
    if (r == pid && usage != nullptr)
      *usage = ru;
    if (r == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0)
      return -1;
    if (kbench::mono_ns() >= deadline)
      return std::nullopt;
    sleep_ms(1);
  }
}

/// Runs a command to completion (bounded); its exit code, or -1 on timeout (killed).
int run_command(const std::vector<std::string>& args, const std::string& log, double timeout_s,
                const std::string& cwd = {}) {
  pid_t pid = spawn(args, log, {}, cwd);
  auto deadline = kbench::mono_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
  while (kbench::mono_ns() < deadline) {
    if (auto st = wait_exit(pid, 100))
      return *st;
    if (interrupted)
      break;
  }
  kill(pid, SIGKILL);
  wait_exit(pid, 2000);
  return -1;
}

std::string read_text(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail(const std::string& path, std::size_t lines = 5) {
  auto text = read_text(path);
  std::vector<std::string> all = kbench::split(text, '\n');
  std::string out;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += (out.empty() ? "" : " | ") + all[i];
  return out;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out{path};
  out << text;
}

/// utime + stime of a process (or of one thread: "PID/task/TID"), in clock ticks.
std::uint64_t cpu_ticks(const std::string& proc_path) {
  auto text = read_text("/proc/" + proc_path + "/stat");
  auto p = text.rfind(')');
  if (p == std::string::npos)
    return 0;
  std::istringstream in{text.substr(p + 2)};
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return utime + stime;
}

std::uint64_t cpu_ticks(pid_t pid) { return cpu_ticks(std::to_string(pid)); }

/// Clock ticks of each thread of `pid`, by thread id, with the thread's name.
std::map<std::string, std::pair<std::string, std::uint64_t>> thread_ticks(pid_t pid) {
  std::map<std::string, std::pair<std::string, std::uint64_t>> out;
  std::error_code ec;
  auto dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& e : std::filesystem::directory_iterator{dir, ec}) {
    auto tid = e.path().filename().string();
    auto name = read_text(dir + "/" + tid + "/comm");
    if (!name.empty() && name.back() == '\n')
      name.pop_back();
    out[tid] = {name, cpu_ticks(std::to_string(pid) + "/task/" + tid)};
  }
  return out;
}

/// A "Vm...:" line of /proc/<pid>/status, in kB (0 when unreadable).
long status_kb(pid_t pid, const char* key) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  auto klen = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, klen, key) == 0)
      return std::atol(line.c_str() + klen);
  return 0;
}

/// Resets the peak RSS (VmHWM) of a process of ours (Linux >= 4.0).
void reset_peak_rss(pid_t pid) {
  std::ofstream out{"/proc/" + std::to_string(pid) + "/clear_refs"};
  out << "5";
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

/// GET http://127.0.0.1:port/path (bounded: 2 s); the body, or "".
std::string http_get(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return {};
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  std::string resp;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[8192];
      for (int i = 0; i < 1000; ++i) {
        auto n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
          break;
        resp.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  close(fd);
  auto body = resp.find("\r\n\r\n");
  return body == std::string::npos ? std::string{} : resp.substr(body + 4);
}

/// The 1-minute load average.
double loadavg() {
  double l[1] = {0};
  return getloadavg(l, 1) == 1 ? l[0] : 0;
}

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

// -- the systems under test -------------------------------------------------------------

enum column { col_kryten = 0, col_raw = 1, col_node = 2 };
const char* column_labels[] = {"kryten-cpp", "raw cnats", "Node nats.js"};

struct system_ut {
  column col = col_kryten;
  std::string name;     // e.g. "kryten", "kryten-k4"
  std::string service;  // NATS service name
  std::vector<std::string> argv;
  std::string log;
  bool available = true;
  std::string reason;  // why not available
  pid_t pid = -1;
  std::int64_t spawn_ns = 0;
  kbench::log_histogram e2e;  // publish -> "Pong!" say command, measured by the bench
  std::mutex tl_mx;
  bool timeline_on = false;
  std::vector<std::pair<std::int64_t, std::int64_t>> timeline;  // (arrival, latency) of pings
  json startup = json::object();
  json shutdown = json::object();
};

// -- the bench's own NATS connection ------------------------------------------------------

class bus {
public:
  void connect(const std::string& url) {
    natsOptions* opts = nullptr;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = natsOptions_SetURL(opts, url.c_str());
    if (s == NATS_OK) s = natsOptions_SetName(opts, "kryten-bench");
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 5000);
    if (s == NATS_OK) s = natsConnection_Connect(&nc_, opts);
    natsOptions_Destroy(opts);
    if (s == NATS_OK) s = natsConnection_Subscribe(&pongs_, nc_, "kryten.robot.command", on_pong, this);
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(pongs_, -1, -1);
    if (s == NATS_OK) s = natsConnection_Subscribe(&lifecycle_, nc_, "kryten.lifecycle.*.startup", on_startup, this);
    if (s == NATS_OK) s = natsConnection_FlushTimeout(nc_, 5000);
    if (s != NATS_OK)
      throw std::runtime_error(std::string{"bench NATS connection: "} + natsStatus_GetText(s));
  }

  void close() {
    if (nc_ == nullptr)
      return;
    natsSubscription_Unsubscribe(pongs_);
    natsSubscription_Unsubscribe(lifecycle_);
    natsConnection_Close(nc_);
    natsSubscription_Destroy(pongs_);
    natsSubscription_Destroy(lifecycle_);
    natsConnection_Destroy(nc_);
    nc_ = nullptr;
  }

  void add(system_ut* s) {
    std::lock_guard<std::mutex> g{mx_};
    by_service_[s->service] = s;
    startups_.erase(s->service);
  }
  void remove(system_ut* s) {
    std::lock_guard<std::mutex> g{mx_};
    by_service_.erase(s->service);
  }
  std::optional<std::int64_t> startup_seen(const std::string& service) {
    std::lock_guard<std::mutex> g{mx_};
    auto i = startups_.find(service);
    if (i == startups_.end())
      return std::nullopt;
    return i->second;
  }
  std::uint64_t unmatched_pongs() const { return unmatched_.load(); }

  /// Sends {"command": command} to kryten.{service}.command; the reply's
  /// data, or nullopt (no reply in time, no responders, success false).
  std::optional<json> request(const std::string& service, const std::string& command,
                              int timeout_ms) {
    json body{{"command", command},
              {"args", json::object()},
              {"meta", {{"source", "kryten-bench"}, {"timestamp", kbench::iso_now()}}}};
    auto subject = "kryten." + service + ".command";
    natsMsg* reply = nullptr;
    auto text = body.dump();
    if (natsConnection_RequestString(&reply, nc_, subject.c_str(), text.c_str(), timeout_ms) != NATS_OK)
      return std::nullopt;
    auto j = json::parse(natsMsg_GetData(reply), natsMsg_GetData(reply) + natsMsg_GetDataLength(reply),
                         nullptr, false);
    natsMsg_Destroy(reply);
    if (!j.is_object() || !j.value("success", false))
      return std::nullopt;
    return j.value("data", json::object());
  }

private:
  static void on_pong(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto now = kbench::mono_ns();
    auto* self = static_cast<bus*>(closure);
    std::string_view body{natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))};
    auto sent = kbench::find_pong_sent_ns(body);
    auto source = kbench::find_string_field(body, "source");
    system_ut* sys = nullptr;
    {
      std::lock_guard<std::mutex> g{self->mx_};
      auto i = self->by_service_.find(std::string{source});
      if (i != self->by_service_.end())
        sys = i->second;
    }
    if (sys != nullptr && sent > 0) {
      sys->e2e.record(now - sent);
      std::lock_guard<std::mutex> g{sys->tl_mx};
      if (sys->timeline_on && sys->timeline.size() < 1000000)
        sys->timeline.emplace_back(now, now - sent);
    } else {
      self->unmatched_.fetch_add(1);
    }
    natsMsg_Destroy(msg);
  }

  static void on_startup(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto now = kbench::mono_ns();
    auto* self = static_cast<bus*>(closure);
    std::string subject = natsMsg_GetSubject(msg);  // kryten.lifecycle.{service}.startup
    auto parts = kbench::split(subject, '.');
    if (parts.size() == 4) {
      std::lock_guard<std::mutex> g{self->mx_};
      self->startups_.emplace(parts[2], now);  // the first one counts
    }
    natsMsg_Destroy(msg);
  }

  natsConnection* nc_ = nullptr;
  natsSubscription* pongs_ = nullptr;
  natsSubscription* lifecycle_ = nullptr;
  std::mutex mx_;
  std::unordered_map<std::string, system_ut*> by_service_;
  std::unordered_map<std::string, std::int64_t> startups_;
  std::atomic<std::uint64_t> unmatched_{0};
};

// -- results table ----------------------------------------------------------------------

struct row {
  std::string section;
  std::string metric;
  std::string unit;
  std::array<json, 3> v;  // null: n/a
};

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

// -- the bench ----------------------------------------------------------------------------

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

std::uint64_t received_of(const json& d) { return static_cast<std::uint64_t>(num(d, "events_received")); }
std::uint64_t handled_of(const json& d) {
  return static_cast<std::uint64_t>(d.contains("events_handled") ? num(d, "events_handled") : num(d, "events_received"));
}
/// The bench bot's "dropped", or a kryten-cpp bot's own health: dropped_events.
std::uint64_t dropped_of(const json& d) {
  return static_cast<std::uint64_t>(d.contains("dropped") ? num(d, "dropped") : num(d, "dropped_events"));
}

/// A command line split at spaces, {config} replaced.
std::vector<std::string> bot_command(const std::string& line, const std::string& config) {
  std::vector<std::string> argv;
  std::istringstream words{line};
  for (std::string w; words >> w;) {
    for (auto at = w.find("{config}"); at != std::string::npos; at = w.find("{config}"))
      w.replace(at, 8, config);
    argv.push_back(w);
  }
  return argv;
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
    notes_.push_back(std::string{scenario} + ": left out with --bot (it needs the bench bot's --work-us)");
    return true;
  }
  const char* label(int col) const {
    return col == col_kryten && !opt_.bot.empty() ? "your bot" : column_labels[col];
  }
  void scenario_start_stop();
  void settle(double timeout_s);

  void add_row(const std::string& section, const std::string& metric, const std::string& unit,
               std::array<json, 3> v) {
    rows_.push_back({section, metric, unit, std::move(v)});
  }
  void print_table();
  json table_json();
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
  std::vector<row> rows_;
  std::vector<std::string> notes_;
  double max_rate_ = 0;           // kryten-cpp's events/s in scenario 1 (shared)
  std::array<double, 3> low_rate_p99_{0, 0, 0};  // e2e p99 at the lowest fixed rate
  std::size_t frame_bytes_ = 300;
};

void bench::cleanup() {
  for (auto* s : std::vector<system_ut*>(live_)) {
    if (s->pid > 0) {
      kill(s->pid, SIGTERM);
      if (!wait_exit(s->pid, 5000)) {
        kill(s->pid, SIGKILL);
        wait_exit(s->pid, 2000);
      }
      s->pid = -1;
    }
  }
  live_.clear();
  if (bus_up_) {
    bus_.close();
    bus_up_ = false;
  }
  if (nats_pid_ > 0) {
    kill(nats_pid_, SIGTERM);
    if (!wait_exit(nats_pid_, 5000)) {
      kill(nats_pid_, SIGKILL);
      wait_exit(nats_pid_, 2000);
    }
    nats_pid_ = -1;
  }
}

void bench::start_nats() {
  port_ = free_port();
  monitor_port_ = free_port();
  url_ = "nats://127.0.0.1:" + std::to_string(port_);
  auto conf = opt_.work_dir + "/nats-server.conf";
  // Slow consumers: the server buffers up to 1 GiB per connection (default
  // 64 MiB) so that each system's own behaviour under backlog is what is
  // measured, not the server cutting it off; the bench still reports the
  // server's slow-consumer count.
  write_text(conf, "listen: \"127.0.0.1:" + std::to_string(port_) + "\"\n" +
                     "http: \"127.0.0.1:" + std::to_string(monitor_port_) + "\"\n" +
                     "max_pending: 1073741824\nwrite_deadline: \"30s\"\n");
  auto log = opt_.work_dir + "/nats-server.log";
  std::error_code ec;
  fs::remove(log, ec);  // not the last run's "Server is ready"
  nats_pid_ = spawn({opt_.nats_server, "-c", conf}, log);
  auto deadline = kbench::mono_ns() + 10'000'000'000LL;
  while (kbench::mono_ns() < deadline) {
    if (read_text(log).find("Server is ready") != std::string::npos)
      return;
    if (auto st = wait_exit(nats_pid_, 20)) {
      nats_pid_ = -1;
      throw std::runtime_error("nats-server exited (" + std::to_string(*st) + "): " + tail(log));
    }
  }
  throw std::runtime_error("nats-server not ready within 10 s: " + tail(log));
}

double bench::slow_consumers() {
  auto body = http_get(monitor_port_, "/varz");
  auto j = json::parse(body, nullptr, false);
  return num(j, "slow_consumers");
}

std::string bench::write_config(const std::string& service, const std::vector<std::string>& channels,
                                bool kryten_keys) {
  json chans = json::array();
  for (auto& c : channels)
    chans.push_back({{"domain", "cytu.be"}, {"channel", c}});
  json cfg{{"nats", {{"servers", {url_}}, {"connect_timeout", 5}}},
           {"channels", chans},
           {"service", {{"name", service}, {"version", "1.0.0"}, {"heartbeat_interval", 30}}},
           {"log_level", "WARNING"}};
  if (kryten_keys) {
    // The runtime's defaults, written out: the memory bound of scenario 4 is
    // computed from them.
    cfg["nats"]["pending_msgs_limit"] = pending_msgs_limit;
    cfg["nats"]["pending_bytes_limit"] = pending_bytes_limit;
    cfg["handler_queue_bytes"] = handler_queue_bytes;
  }
  auto path = opt_.work_dir + "/" + service + ".json";
  write_text(path, cfg.dump(2));
  return path;
}

std::unique_ptr<system_ut> bench::make_kryten(const std::string& name, const std::vector<std::string>& channels,
                                              std::vector<std::string> extra) {
  auto s = std::make_unique<system_ut>();
  s->col = col_kryten;
  s->name = name;
  s->service = "bench-" + name;
  if (!opt_.bot.empty()) {
    s->argv = bot_command(opt_.bot, write_config(s->service, channels, true));
  } else {
    s->argv = {bin_dir_ + "/kryten-bench-bot", "--config", write_config(s->service, channels, true)};
    s->argv.insert(s->argv.end(), extra.begin(), extra.end());
  }
  s->log = opt_.work_dir + "/" + s->service + ".log";
  return s;
}

std::unique_ptr<system_ut> bench::make_raw(const std::string& name, const std::vector<std::string>& channels,
                                           std::vector<std::string> extra) {
  auto s = std::make_unique<system_ut>();
  s->col = col_raw;
  s->name = name;
  s->service = "bench-" + name;
  std::string chans;
  for (auto& c : channels)
    chans += (chans.empty() ? "" : ",") + c;
  // The same cnats pending limits as the kryten-cpp bot: like against like.
  s->argv = {bin_dir_ + "/kryten-raw-subscriber", "--server", url_, "--channel", chans,
             "--service", s->service, "--quiet",
             "--pending-msgs", std::to_string(pending_msgs_limit),
             "--pending-bytes", std::to_string(pending_bytes_limit)};
  s->argv.insert(s->argv.end(), extra.begin(), extra.end());
  s->log = opt_.work_dir + "/" + s->service + ".log";
  return s;
}

std::unique_ptr<system_ut> bench::make_node(const std::vector<std::string>& channels) {
  auto s = std::make_unique<system_ut>();
  s->col = col_node;
  s->name = "node";
  s->service = "bench-node";
  s->argv = {"node", opt_.node_cache + "/echo-bot.mjs", "--config", write_config(s->service, channels, false)};
  s->log = opt_.work_dir + "/" + s->service + ".log";
  return s;
}

/// Copies the Node peer to the cache folder and runs `npm ci` there unless the
/// cache already holds an install of the same package-lock.json.
void bench::setup_node(system_ut& node) {
  auto fail = [&](std::string why) {
    node.available = false;
    node.reason = std::move(why);
    std::cerr << "kryten-bench: Node peer n/a: " << node.reason << "\n";
  };
  if (opt_.no_node)
    return fail("left out (--no-node)");
  auto log = opt_.work_dir + "/node-setup.log";
  if (run_command({"node", "--version"}, log, 20) != 0)
    return fail("node is not installed (or does not run)");
  if (run_command({"npm", "--version"}, log, 30) != 0)
    return fail("npm is not installed (or does not run)");
  fs::path src = opt_.node_peer, dst = opt_.node_cache;
  std::error_code ec;
  if (!fs::exists(src / "echo-bot.mjs", ec) || !fs::exists(src / "package-lock.json", ec))
    return fail("no echo-bot.mjs/package-lock.json in " + src.string());
  fs::create_directories(dst, ec);
  auto lock_src = read_text((src / "package-lock.json").string());
  bool cached = fs::exists(dst / "node_modules", ec) && fs::exists(dst / ".npm-ci-done", ec) &&
                read_text((dst / "package-lock.json").string()) == lock_src;
  for (auto& entry : fs::directory_iterator(src, ec)) {
    if (!entry.is_regular_file())
      continue;
    auto to = dst / entry.path().filename();
    fs::remove(to, ec);  // the source files are read-only; so would the copies be
    fs::copy_file(entry.path(), to, ec);
    if (ec)
      return fail("cannot copy " + entry.path().string() + ": " + ec.message());
    fs::permissions(to, fs::perms::owner_write, fs::perm_options::add, ec);
  }
  if (!cached) {
    std::cerr << "kryten-bench: npm ci in " << dst.string() << " (once; cached for later runs)\n";
    fs::remove(dst / ".npm-ci-done", ec);
    int rc = run_command({"npm", "ci", "--silent", "--no-audit", "--no-fund"}, log, 300, dst.string());
    if (rc != 0)
      return fail(rc < 0 ? "npm ci timed out (300 s)" : "npm ci failed (exit " + std::to_string(rc) + "): " + tail(log, 3));
    write_text((dst / ".npm-ci-done").string(), "ok\n");
  }
}

/// Starts a system and measures its start-up: spawn -> first health reply, and
/// spawn -> its lifecycle startup event (when it sends one).
bool bench::launch(system_ut& s, double timeout_s) {
  if (!s.available)
    return false;
  bus_.add(&s);
  s.spawn_ns = kbench::mono_ns();
  s.pid = spawn(s.argv, s.log);
  live_.push_back(&s);
  auto deadline = s.spawn_ns + static_cast<std::int64_t>(timeout_s * 1e9);
  std::optional<std::int64_t> health_at;
  while (kbench::mono_ns() < deadline) {
    check_interrupt();
    if (auto st = wait_exit(s.pid, 0)) {
      live_.erase(std::remove(live_.begin(), live_.end(), &s), live_.end());
      s.pid = -1;
      s.available = false;
      s.reason = "exited at start-up (" + std::to_string(*st) + "): " + tail(s.log, 3);
      std::cerr << "kryten-bench: " << s.service << " " << s.reason << "\n";
      return false;
    }
    if (bus_.request(s.service, "health", 200)) {
      health_at = kbench::mono_ns();
      break;
    }
    sleep_ms(5);
  }
  if (!health_at) {
    s.available = false;
    s.reason = "no health reply within " + std::to_string(static_cast<int>(timeout_s)) + " s";
    stop(s);
    return false;
  }
  // The lifecycle startup event, if the system sends one, may come just after.
  for (int i = 0; i < 20 && !bus_.startup_seen(s.service); ++i)
    sleep_ms(5);
  auto lc = bus_.startup_seen(s.service);
  double health_ms = static_cast<double>(*health_at - s.spawn_ns) / 1e6;
  s.startup = {{"first_health_reply_ms", round_to(health_ms, 1)},
               {"lifecycle_startup_ms", lc ? json(round_to(static_cast<double>(*lc - s.spawn_ns) / 1e6, 1)) : json(nullptr)},
               {"startup_ms", round_to(lc ? std::min(health_ms, static_cast<double>(*lc - s.spawn_ns) / 1e6) : health_ms, 1)}};
  return true;
}

/// SIGTERM -> exit, measured; SIGKILL after 15 s.
void bench::stop(system_ut& s) {
  if (s.pid <= 0)
    return;
  auto t0 = kbench::mono_ns();
  kill(s.pid, SIGTERM);
  auto st = wait_exit(s.pid, 15000);
  auto ms = static_cast<double>(kbench::mono_ns() - t0) / 1e6;
  if (!st) {
    kill(s.pid, SIGKILL);
    wait_exit(s.pid, 2000);
  }
  s.shutdown = {{"shutdown_ms", round_to(ms, 1)},
                {"exit_code", st ? json(*st) : json("killed after 15 s")}};
  live_.erase(std::remove(live_.begin(), live_.end(), &s), live_.end());
  s.pid = -1;
  bus_.remove(&s);
}

// -- phases ---------------------------------------------------------------------------

phase bench::begin_phase(const std::string& name, const std::vector<system_ut*>& systems) {
  phase p;
  p.name = name;
  p.slow_consumers0 = slow_consumers();
  p.server_cpu0 = cpu_ticks(nats_pid_);
  for (auto* s : systems) {
    sys_phase sp;
    sp.sys = s;
    bus_.request(s->service, "bench_reset", 2000);  // the Node peer has none: fine
    s->e2e.reset();
    for (int i = 0; i < 3 && !sp.have_before; ++i)
      if (auto d = bus_.request(s->service, "health", 2000)) {
        sp.before = *d;
        sp.have_before = true;
      }
    if (!sp.have_before)
      sp.note = "no health reply before the phase";
    reset_peak_rss(s->pid);
    sp.rss_start_kb = status_kb(s->pid, "VmRSS:");
    sp.rss_peak_kb = sp.rss_start_kb;
    sp.cpu0 = cpu_ticks(s->pid);
    sp.t0 = kbench::mono_ns();
    p.s.push_back(std::move(sp));
  }
  return p;
}

void bench::sample_rss(phase& p) {
  for (auto& sp : p.s)
    sp.rss_peak_kb = std::max(sp.rss_peak_kb, status_kb(sp.sys->pid, "VmRSS:"));
}

json bench::run_load(phase& p, const load_spec& l) {
  std::vector<std::string> args{bin_dir_ + "/kryten-load", "--server", url_, "--json", "--quiet",
                                "--rate", std::to_string(l.rate)};
  std::string chans;
  for (auto& c : l.channels)
    chans += (chans.empty() ? "" : ",") + c;
  args.insert(args.end(), {"--channel", chans});
  if (l.count > 0)
    args.insert(args.end(), {"--count", std::to_string(l.count)});
  if (l.duration > 0)
    args.insert(args.end(), {"--duration", std::to_string(l.duration)});
  if (!l.mix.empty())
    args.insert(args.end(), {"--mix", l.mix});
  if (!l.send_asap.empty())
    args.insert(args.end(), {"--send-asap", l.send_asap});
  auto out = opt_.work_dir + "/load.out";
  auto log = opt_.work_dir + "/load.log";
  pid_t pid = spawn(args, log, out);
  double expected = l.duration > 0 ? l.duration : (l.rate > 0 ? static_cast<double>(l.count) / l.rate : 60);
  auto deadline = kbench::mono_ns() + static_cast<std::int64_t>((expected + 60) * 1e9);
  std::optional<int> st;
  struct rusage ru{};
  while (!(st = wait_exit(pid, 50, &ru))) {
    sample_rss(p);
    if (interrupted || kbench::mono_ns() > deadline) {
      kill(pid, SIGTERM);
      wait_exit(pid, 5000);
      check_interrupt();
      throw std::runtime_error("kryten-load did not finish in time");
    }
  }
  auto j = json::parse(read_text(out), nullptr, false);
  if (!j.is_object())
    throw std::runtime_error("kryten-load failed (exit " + std::to_string(*st) + "): " + tail(log, 3));
  if (*st != 0)
    notes_.push_back(p.name + ": kryten-load exited " + std::to_string(*st) + " (publish errors: " +
                     j["publish_errors"].dump() + ")");
  frame_bytes_ = static_cast<std::size_t>(num(j, "avg_frame_bytes"));
  double pub_cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                   static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  j["cpu_s"] = round_to(pub_cpu, 3);
  j["cpu_us_per_event"] = num(j, "sent") > 0 ? round_to(pub_cpu * 1e6 / num(j, "sent"), 2) : json(0.0);
  p.publisher_cpu_s += pub_cpu;
  if (p.load.is_null()) {
    p.load = j;
  } else {  // a second load in the same phase: add up
    p.load["sent"] = num(p.load, "sent") + num(j, "sent");
    p.load["pings"] = num(p.load, "pings") + num(j, "pings");
    p.load["last_ns"] = j["last_ns"];
  }
  return j;
}

/// Waits until every system has handled or dropped `expected` events since the
/// phase began, or made no progress for stall_s, or timeout_s passed.
void bench::drain(phase& p, std::uint64_t expected, double timeout_s, double stall_s) {
  auto deadline = kbench::mono_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
  std::vector<std::uint64_t> progress(p.s.size(), 0);
  std::vector<std::int64_t> since(p.s.size(), kbench::mono_ns());
  for (;;) {
    for (std::size_t i = 0; i < p.s.size(); ++i) {
      auto& sp = p.s[i];
      if (sp.drained || !sp.have_before)
        continue;
      auto d = bus_.request(sp.sys->service, "health", 1000);
      auto now = kbench::mono_ns();
      if (!d)
        continue;  // busy (or gone): the deadline bounds the wait
      sp.last = *d;
      sp.have_last = true;
      auto acc = handled_of(*d) + dropped_of(*d) - handled_of(sp.before) - dropped_of(sp.before);
      auto rec = received_of(*d) - received_of(sp.before);
      if (acc >= expected) {
        sp.drained = true;
      } else if (acc + rec != progress[i]) {
        progress[i] = acc + rec;
        since[i] = now;
      } else if (now - since[i] > static_cast<std::int64_t>(stall_s * 1e9)) {
        sp.drained = true;  // no progress: what is missing is lost (reported)
        sp.note += (sp.note.empty() ? "" : "; ") + std::string{"no progress for "} +
                   std::to_string(static_cast<int>(stall_s)) + " s";
      }
    }
    bool all = std::all_of(p.s.begin(), p.s.end(), [](const sys_phase& x) { return x.drained || !x.have_before; });
    sample_rss(p);
    if (all)
      break;
    if (kbench::mono_ns() > deadline) {
      for (auto& sp : p.s)
        if (!sp.drained)
          sp.note += (sp.note.empty() ? "" : "; ") + std::string{"still busy after "} +
                     std::to_string(static_cast<int>(timeout_s)) + " s of draining";
      break;
    }
    check_interrupt();
    sleep_ms(50);
  }
}

json bench::end_phase(phase& p) {
  for (auto& sp : p.s) {
    if (auto d = bus_.request(sp.sys->service, "health", 2000)) {
      sp.last = *d;
      sp.have_last = true;
    }
    sp.cpu1 = cpu_ticks(sp.sys->pid);
    sp.t1 = kbench::mono_ns();
    sp.rss_peak_kb = std::max({sp.rss_peak_kb, status_kb(sp.sys->pid, "VmHWM:"), status_kb(sp.sys->pid, "VmRSS:")});
  }
  return phase_json(p);
}

json bench::phase_json(const phase& p) {
  static const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  json out{{"load", p.load}};
  auto sent = static_cast<std::uint64_t>(num(p.load, "sent"));
  auto first_ns = static_cast<std::int64_t>(num(p.load, "first_ns"));
  auto first_unix = static_cast<std::int64_t>(num(p.load, "first_unix_ns"));
  auto load_elapsed = num(p.load, "elapsed_s");
  out["server_slow_consumers"] = slow_consumers() - p.slow_consumers0;
  out["loadavg"] = round_to(loadavg(), 2);
  out["server_cpu_s"] = round_to(static_cast<double>(cpu_ticks(nats_pid_) - p.server_cpu0) / tick, 2);
  out["publisher_cpu_s"] = round_to(p.publisher_cpu_s, 3);
  json systems = json::object();
  for (auto& sp : p.s) {
    json r;
    r["service"] = sp.sys->service;
    if (!sp.have_before || !sp.have_last) {
      r["error"] = sp.note.empty() ? "no health reply" : sp.note;
      systems[sp.sys->name] = r;
      continue;
    }
    auto received = received_of(sp.last) - received_of(sp.before);
    auto handled = handled_of(sp.last) - handled_of(sp.before);
    auto dropped = dropped_of(sp.last) - dropped_of(sp.before);
    // Active window: first publish -> the system's last handled event.
    double window = 0;
    if (sp.last.contains("last_event_ns") && num(sp.last, "last_event_ns") > 0)
      window = (num(sp.last, "last_event_ns") - static_cast<double>(first_ns)) / 1e9;
    else if (sp.last.contains("last_event_time") && sp.last["last_event_time"].is_string())
      window = static_cast<double>(kbench::parse_iso(sp.last["last_event_time"].get<std::string>()) - first_unix) / 1e9;
    if (window <= 0)
      window = static_cast<double>(sp.t1 - first_ns) / 1e9;
    double cpu_s = static_cast<double>(sp.cpu1 - sp.cpu0) / tick;
    double wall = static_cast<double>(sp.t1 - sp.t0) / 1e9;
    r["sent"] = sent;
    r["received"] = received;
    r["handled"] = handled;
    r["dropped"] = dropped;
    r["unaccounted"] = static_cast<std::int64_t>(sent) - static_cast<std::int64_t>(handled + dropped);
    r["window_s"] = round_to(window, 3);
    r["throughput_eps"] = round_to(window > 0 ? static_cast<double>(handled) / window : 0, 0);
    r["cpu_s"] = round_to(cpu_s, 2);
    r["cores"] = round_to(std::max(load_elapsed, std::min(window, wall)) > 0
                            ? cpu_s / std::max(load_elapsed, std::min(window, wall)) : 0, 3);
    r["cpu_us_per_event"] = handled ? json(round_to(cpu_s * 1e6 / static_cast<double>(handled), 2)) : json(nullptr);
    r["cpu_us_per_received"] = received ? json(round_to(cpu_s * 1e6 / static_cast<double>(received), 2)) : json(nullptr);
    r["rss_start_mb"] = round_to(static_cast<double>(sp.rss_start_kb) / 1024, 1);
    r["rss_peak_mb"] = round_to(static_cast<double>(sp.rss_peak_kb) / 1024, 1);
    r["rss_end_mb"] = round_to(static_cast<double>(status_kb(sp.sys->pid, "VmRSS:")) / 1024, 1);
    r["latency"] = sp.last.contains("latency") ? sp.last["latency"] : json(nullptr);
    if (!sp.last.contains("latency") && sp.last.contains("queue_delay")) {
      // A user's bot (--bot): its runtime's own histograms, since it started.
      r["latency"] = sp.last["queue_delay"];
      r["handler_latency"] = sp.last.value("handler_latency", json(nullptr));
    }
    r["run"] = sp.last.contains("run") ? sp.last["run"]
               : json{{"mean_ms", num(sp.last, "avg_event_latency_ms")}};  // Node: a mean only
    if (sp.last.contains("handlers"))
      r["handlers"] = sp.last["handlers"];
    if (sp.last.contains("by_event"))
      r["by_event"] = sp.last["by_event"];
    r["e2e"] = sp.sys->e2e.to_json();
    r["drained"] = sp.drained;
    if (!sp.note.empty())
      r["note"] = sp.note;
    systems[sp.sys->name] = r;
  }
  out["systems"] = systems;
  return out;
}

/// Waits (bounded) until the main systems have caught up with earlier load.
void bench::settle(double timeout_s) {
  auto deadline = kbench::mono_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
  for (auto* s : mains()) {
    std::uint64_t prev = UINT64_MAX;
    while (kbench::mono_ns() < deadline) {
      check_interrupt();
      auto d = bus_.request(s->service, "health", 500);
      if (d) {
        auto n = received_of(*d);
        if (n == prev)
          break;  // nothing new arrived within the last 200 ms
        prev = n;
      }
      sleep_ms(200);
    }
  }
}

// -- scenario 1 -----------------------------------------------------------------------

std::array<json, 3> by_col(const json& systems, const std::vector<system_ut*>& order,
                           const std::function<json(const json&)>& f) {
  std::array<json, 3> v{nullptr, nullptr, nullptr};
  for (auto* s : order)
    if (systems.contains(s->name) && !systems[s->name].contains("error"))
      v[s->col] = f(systems[s->name]);
  return v;
}

json pct(const json& r, const char* what, const char* p) {
  if (!r.contains(what) || !r[what].is_object() || !r[what].contains(p) || num(r[what], "count") == 0)
    return nullptr;
  return r[what][p];
}

void bench::scenario_max_throughput() {
  std::cerr << "kryten-bench: scenario 1: " << opt_.count << " events as fast as possible, shared\n";
  auto sys = mains();
  auto p = begin_phase("max_throughput", sys);
  load_spec l;
  l.count = opt_.count;
  run_load(p, l);
  drain(p, static_cast<std::uint64_t>(opt_.count), opt_.quick ? 15 : 90);
  auto r = end_phase(p);
  json scen{{"shared", r}};
  const std::string sec = "1. max throughput (" + std::to_string(opt_.count) + " events, shared)";
  auto& s = r["systems"];
  add_row(sec, "publisher rate (same stream to all)", "ev/s", {r["load"]["rate_achieved"], r["load"]["rate_achieved"], r["load"]["rate_achieved"]});
  add_row(sec, "handled", "ev/s", by_col(s, sys, [](const json& x) { return x["throughput_eps"]; }));
  add_row(sec, "events handled", "", by_col(s, sys, [](const json& x) { return x["handled"]; }));
  add_row(sec, "dropped (reported)", "", by_col(s, sys, [](const json& x) { return x["dropped"]; }));
  add_row(sec, "unaccounted (sent-handled-dropped)", "", by_col(s, sys, [](const json& x) { return x["unaccounted"]; }));
  add_row(sec, "CPU per handled event", "us", by_col(s, sys, [](const json& x) { return x["cpu_us_per_event"]; }));
  add_row(sec, "CPU per received event", "us", by_col(s, sys, [](const json& x) { return x["cpu_us_per_received"]; }));
  add_row(sec, "CPU cores used", "", by_col(s, sys, [](const json& x) { return x["cores"]; }));
  add_row(sec, "peak RSS", "MB", by_col(s, sys, [](const json& x) { return x["rss_peak_mb"]; }));
  notes_.push_back("scenario 1 (shared): the publisher used " + fmt_value(r["load"]["cpu_us_per_event"]) +
                   " us CPU per event, nats-server " + fmt_value(r["server_cpu_s"]) + " s CPU in all");
  if (auto* k = main_of(col_kryten); k && s.contains(k->name))
    max_rate_ = num(s[k->name], "throughput_eps");
  if (max_rate_ <= 0)
    if (auto* raw = main_of(col_raw); raw && s.contains(raw->name))
      max_rate_ = num(s[raw->name], "throughput_eps");

  if (*opt_.isolated) {
    json iso = json::object();
    std::array<json, 3> eps{nullptr, nullptr, nullptr}, cpu{nullptr, nullptr, nullptr}, drop = eps;
    for (auto* x : sys) {
      settle(opt_.quick ? 3 : 20);
      std::cerr << "kryten-bench: scenario 1: " << x->service << " alone\n";
      auto pi = begin_phase("max_throughput_isolated_" + x->name, {x});
      load_spec li;
      li.count = opt_.count;
      li.channels = {"iso-" + x->name};
      run_load(pi, li);
      drain(pi, static_cast<std::uint64_t>(opt_.count), opt_.quick ? 15 : 90);
      auto ri = end_phase(pi);
      iso[x->name] = ri;
      if (ri["systems"].contains(x->name) && !ri["systems"][x->name].contains("error")) {
        eps[x->col] = ri["systems"][x->name]["throughput_eps"];
        cpu[x->col] = ri["systems"][x->name]["cpu_us_per_received"];
        drop[x->col] = ri["systems"][x->name]["dropped"];
      }
    }
    scen["isolated"] = iso;
    add_row(sec, "handled, each system alone", "ev/s", eps);
    add_row(sec, "dropped, alone", "", drop);
    add_row(sec, "CPU per received event, alone", "us", cpu);
  }
  results_["scenarios"]["max_throughput"] = scen;
}

// -- scenario 2 -----------------------------------------------------------------------

void bench::scenario_latency() {
  std::vector<double> rates;
  for (auto& part : kbench::split(opt_.rates, ',')) {
    double r = 0;
    if (part.size() > 3 && part.compare(part.size() - 3, 3, "max") == 0)
      r = std::atof(part.substr(0, part.size() - 3).c_str()) * max_rate_;
    else
      r = std::atof(part.c_str());
    r = std::round(r);
    if (r > 0 && std::find(rates.begin(), rates.end(), r) == rates.end())
      rates.push_back(r);
  }
  std::sort(rates.begin(), rates.end());
  auto sys = mains();
  json list = json::array();
  // More !ping than the default mix (10 % instead of 2 %): more samples of the
  // one latency all three systems report.
  const std::string latency_mix = "chat=62,ping=10,adduser=8,userleave=8,changemedia=4,playlist=8";
  for (auto rate : rates) {
    settle(opt_.quick ? 3 : 20);
    std::cerr << "kryten-bench: scenario 2: " << rate << " events/s for " << opt_.phase_seconds << " s\n";
    auto p = begin_phase("latency_" + std::to_string(static_cast<long long>(rate)), sys);
    load_spec l;
    l.rate = rate;
    l.duration = opt_.phase_seconds;
    l.mix = latency_mix;
    auto j = run_load(p, l);
    drain(p, static_cast<std::uint64_t>(num(j, "sent")), opt_.quick ? 4 : 20);
    auto r = end_phase(p);
    r["offered_eps"] = rate;
    list.push_back(r);
    auto sec = "2. latency at " + fmt_value(rate) + " ev/s (" + fmt_value(r["load"]["rate_achieved"]) +
               " achieved, " + fmt_value(opt_.phase_seconds) + " s, shared)";
    auto& s = r["systems"];
    for (const char* q : {"p50_ms", "p99_ms", "p999_ms", "max_ms"})
      add_row(sec, std::string{"publish->handler start "} + std::string{q}.substr(0, std::string{q}.size() - 3), "ms",
              by_col(s, sys, [q](const json& x) { return pct(x, "latency", q); }));
    for (const char* q : {"p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"})
      add_row(sec, std::string{"publish->!ping reply "} + std::string{q}.substr(0, std::string{q}.size() - 3), "ms",
              by_col(s, sys, [q](const json& x) { return pct(x, "e2e", q); }));
    add_row(sec, "handler run time mean (Node: parse+handler)", "ms", by_col(s, sys, [](const json& x) { return x["run"].contains("mean_ms") ? x["run"]["mean_ms"] : json(nullptr); }));
    add_row(sec, "CPU cores used", "", by_col(s, sys, [](const json& x) { return x["cores"]; }));
    add_row(sec, "dropped + unaccounted", "", by_col(s, sys, [](const json& x) { return num(x, "dropped") + num(x, "unaccounted"); }));
    if (rate == rates.front())
      for (auto* x : sys)
        if (s.contains(x->name))
          low_rate_p99_[x->col] = num(s[x->name]["e2e"], "p99_ms");
  }
  results_["scenarios"]["latency"] = {{"rates", rates}, {"mix", latency_mix}, {"phases", list}};
}

// -- scenario 3 -----------------------------------------------------------------------

void bench::scenario_slow_handlers() {
  if (needs_bench_bot("scenario 3"))
    return;
  settle(opt_.quick ? 5 : 30);
  const std::vector<std::string> channels{"w0", "w1", "w2", "w3"};
  auto work = std::to_string(opt_.work_us);
  std::int64_t count = opt_.quick ? 1500 : 10000;
  json scen = json::object();
  scen["work_us"] = opt_.work_us;
  scen["events"] = count;
  const std::string sec = "3. slow handlers (" + work + " us CPU spin per event, " + std::to_string(count) +
                          " events over 4 channels, each system alone)";
  std::map<std::string, json> eps;
  for (int k : {1, 4}) {
    std::vector<std::unique_ptr<system_ut>> inst;
    inst.push_back(make_kryten("kryten-k" + std::to_string(k), channels,
                               {"--handlers", std::to_string(k), "--work-us", work}));
    inst.push_back(make_raw("raw-k" + std::to_string(k), channels,
                            {"--threads", std::to_string(k), "--work-us", work}));
    for (auto& x : inst) {
      std::cerr << "kryten-bench: scenario 3: " << x->service << "\n";
      if (!launch(*x)) {
        scen[x->name] = {{"error", x->reason}};
        continue;
      }
      auto p = begin_phase("slow_" + x->name, {x.get()});
      load_spec l;
      l.channels = channels;
      l.count = count;
      run_load(p, l);
      drain(p, static_cast<std::uint64_t>(count), static_cast<double>(count) * static_cast<double>(opt_.work_us) / 1e6 + 20);
      auto r = end_phase(p);
      stop(*x);
      scen[x->name] = r;
      eps[x->name] = r["systems"][x->name].contains("error") ? json(nullptr) : r["systems"][x->name]["throughput_eps"];
    }
  }
  auto scaling = [](const json& a, const json& b) { return ratio(b, a); };
  add_row(sec, "1 handler actor / thread", "ev/s", {eps["kryten-k1"], eps["raw-k1"], nullptr});
  add_row(sec, "4 handler actors / threads", "ev/s", {eps["kryten-k4"], eps["raw-k4"], nullptr});
  add_row(sec, "scaling 4 vs 1", "x", {scaling(eps["kryten-k1"], eps["kryten-k4"]), scaling(eps["raw-k1"], eps["raw-k4"]), nullptr});

  // A slow chat handler next to a fast adduser handler, offered more chat than
  // the slow handler can take: does the fast one stay fast?
  double slow_capacity = 1e6 / static_cast<double>(std::max<std::int64_t>(1, opt_.work_us));
  double rate = std::round(slow_capacity * 1.5 / 0.9);
  double secs = opt_.quick ? 2 : 6;
  const std::string mix = "chat=88,ping=2,adduser=10,userleave=0,changemedia=0,playlist=0";
  json iso = json::object();
  iso["offered_eps"] = rate;
  iso["seconds"] = secs;
  iso["mix"] = mix;
  std::array<json, 3> slow_p50{nullptr, nullptr, nullptr}, slow_p99 = slow_p50, fast_p50 = slow_p50,
                      fast_p99 = slow_p50, fast_max = slow_p50;
  std::vector<std::unique_ptr<system_ut>> inst;
  inst.push_back(make_kryten("kryten-iso", {"iso3"},
                             {"--events", "chatmsg", "--work-us", work, "--fast-handler", "adduser"}));
  inst.push_back(make_raw("raw-iso", {"iso3"}, {"--work-us", work, "--work-on", "chatmsg"}));
  for (auto& x : inst) {
    std::cerr << "kryten-bench: scenario 3: " << x->service << " (slow chat + fast adduser)\n";
    if (!launch(*x)) {
      iso[x->name] = {{"error", x->reason}};
      continue;
    }
    auto p = begin_phase("isolation_" + x->name, {x.get()});
    load_spec l;
    l.channels = {"iso3"};
    l.rate = rate;
    l.duration = secs;
    l.mix = mix;
    // Measured while the backlog is there: no drain before reading.
    run_load(p, l);
    auto r = end_phase(p);
    stop(*x);
    iso[x->name] = r;
    auto& sr = r["systems"][x->name];
    if (sr.contains("handlers")) {  // kryten: handler 0 slow, the last fast
      for (auto& h : sr["handlers"]) {
        bool slow = h.value("slow", true);
        (slow ? slow_p50 : fast_p50)[x->col] = pct(h, "latency", "p50_ms");
        (slow ? slow_p99 : fast_p99)[x->col] = pct(h, "latency", "p99_ms");
        if (!slow)
          fast_max[x->col] = pct(h, "latency", "max_ms");
      }
    } else if (sr.contains("by_event")) {  // raw: one thread, chat and adduser in line
      slow_p50[x->col] = pct(sr["by_event"], "chatmsg", "p50_ms");
      slow_p99[x->col] = pct(sr["by_event"], "chatmsg", "p99_ms");
      fast_p50[x->col] = pct(sr["by_event"], "adduser", "p50_ms");
      fast_p99[x->col] = pct(sr["by_event"], "adduser", "p99_ms");
      fast_max[x->col] = pct(sr["by_event"], "adduser", "max_ms");
    }
  }
  scen["isolation"] = iso;
  const std::string sec2 = "3b. slow chat handler (" + work + " us) + fast adduser handler, " +
                           fmt_value(rate) + " ev/s offered for " + fmt_value(secs) + " s";
  add_row(sec2, "slow handler latency p50", "ms", slow_p50);
  add_row(sec2, "slow handler latency p99", "ms", slow_p99);
  add_row(sec2, "fast handler latency p50", "ms", fast_p50);
  add_row(sec2, "fast handler latency p99", "ms", fast_p99);
  add_row(sec2, "fast handler latency max", "ms", fast_max);
  results_["scenarios"]["slow_handlers"] = scen;
  notes_.push_back("scenario 3: the Node peer is the echo bot as published, with no per-event work option: n/a");
}

// -- scenario 4b ----------------------------------------------------------------------

/// A burst far faster than a slow handler, with the runtime's default bounds:
/// does every event get handled, within the stated memory, while a fast
/// handler on the same channel keeps up?
void bench::scenario_burst() {
  if (needs_bench_bot("scenario 4b"))
    return;
  settle(opt_.quick ? 5 : 30);
  const std::int64_t count = opt_.quick ? 200000 : 1000000;
  const std::string work = "10";  // us per chat message: ~100k/s, slower than the burst
  std::cerr << "kryten-bench: scenario 4b: a burst of " << count << " events at full speed, "
            << work << " us per chat message\n";
  std::array<json, 3> handled{nullptr, nullptr, nullptr}, dropped = handled, peak = handled,
                      bound = handled, seconds = handled, fast_p99 = handled;
  json scen = json::object();
  std::vector<std::unique_ptr<system_ut>> inst;
  inst.push_back(make_kryten("kryten-burst", {"burst"},
                             {"--events", "chatmsg", "--work-us", work, "--fast-handler", "adduser"}));
  inst.push_back(make_raw("raw-burst", {"burst"}, {"--work-us", work, "--work-on", "chatmsg"}));
  for (auto& x : inst) {
    if (!launch(*x)) {
      scen[x->name] = {{"error", x->reason}};
      continue;
    }
    auto p = begin_phase("burst_" + x->name, {x.get()});
    load_spec l;
    l.channels = {"burst"};
    l.count = count;
    l.mix = "chat=90,ping=0,adduser=10,userleave=0,changemedia=0,playlist=0";
    l.send_asap = "off";
    run_load(p, l);
    drain(p, static_cast<std::uint64_t>(num(p.load, "sent")), opt_.quick ? 60 : 180, 5);
    auto r = end_phase(p);
    stop(*x);
    auto& sr = r["systems"][x->name];
    handled[x->col] = sr["handled"];
    dropped[x->col] = sr["dropped"];
    peak[x->col] = sr["rss_peak_mb"];
    seconds[x->col] = sr["window_s"];
    if (x->col == col_kryten) {
      bound[x->col] = memory_bound(sr);
      for (auto& h : sr.value("handlers", json::array()))
        if (!h.value("slow", true))
          fast_p99[x->col] = pct(h, "latency", "p99_ms");
    } else {
      bound[x->col] = "cnats pending limit only";
      fast_p99[x->col] = pct(sr.value("by_event", json::object()), "adduser", "p99_ms");
    }
    scen[x->name] = r;
  }
  results_["scenarios"]["burst"] = scen;
  const std::string sec = "4b. burst: " + fmt_value(static_cast<double>(count)) +
                          " events at full speed, slow chat handler (" + work +
                          " us) + fast adduser handler, default bounds";
  add_row(sec, "events handled", "events", handled);
  add_row(sec, "events dropped (counted)", "events", dropped);
  add_row(sec, "first to last event handled", "s", seconds);
  add_row(sec, "peak RSS", "MB", peak);
  add_row(sec, "stated memory bound", "MB", bound);
  add_row(sec, "fast handler latency p99", "ms", fast_p99);
  notes_.push_back("scenario 4b: the raw subscriber handles chat and adduser on one thread, in "
                   "line (single-threaded by construction); the Node peer has no per-event work "
                   "option: n/a");
}

// -- scenario 4 -----------------------------------------------------------------------

/// The stated memory bound of a kryten-cpp bot with one event subscription
/// and one handler, from the config it was given; written into `system`.
json bench::memory_bound(json& system) {
  double f = static_cast<double>(frame_bytes_);
  // cnats counts payload bytes only; its natsMsg and subject come on top.
  double msg_overhead = 160;
  double cnats = static_cast<double>(pending_bytes_limit) * (f + msg_overhead) / f;
  double queue = static_cast<double>(handler_queue_bytes);
  auto b = round_to(num(system, "rss_start_mb") + (cnats + queue) / 1048576.0, 0);
  system["memory_bound_mb"] = b;
  system["memory_bound"] = "RSS before + cnats pending limit (1 GiB of payload per event "
                           "subscription, plus ~160 B a message) + handler_queue_bytes (1 GiB per "
                           "handler); ~" +
                           fmt_value(f) + " B per event";
  return b;
}

void bench::scenario_overload() {
  settle(opt_.quick ? 5 : 30);
  auto sys = mains();
  double rate = std::round(2 * max_rate_);
  std::cerr << "kryten-bench: scenario 4: " << rate << " events/s for " << opt_.overload_seconds << " s, then 1000/s\n";
  for (auto* s : sys) {
    std::lock_guard<std::mutex> g{s->tl_mx};
    s->timeline.clear();
    s->timeline_on = true;
  }
  auto p = begin_phase("overload", sys);
  load_spec l;
  l.rate = rate;
  l.duration = opt_.overload_seconds;
  l.send_asap = "off";  // a write per event would cap the publisher well below 2x
  auto over = run_load(p, l);
  std::vector<long> peak_overload;
  for (auto& sp : p.s)
    peak_overload.push_back(std::max(sp.rss_peak_kb, status_kb(sp.sys->pid, "VmHWM:")));
  // Events handled per second during the overload: counters right after it
  // (a busy system answers late; its counters are as of its answer).
  std::vector<json> during(p.s.size(), nullptr);
  for (std::size_t i = 0; i < p.s.size(); ++i) {
    auto& sp = p.s[i];
    if (!sp.have_before)
      continue;
    if (auto d = bus_.request(sp.sys->service, "health", 1000)) {
      auto at = kbench::mono_ns();
      double secs = static_cast<double>(at - static_cast<std::int64_t>(num(over, "first_ns"))) / 1e9;
      auto handled = handled_of(*d) - handled_of(sp.before);
      auto dropped = dropped_of(*d) - dropped_of(sp.before);
      during[i] = {{"handled", handled}, {"dropped", dropped}, {"seconds", round_to(secs, 3)},
                   {"handled_eps", round_to(static_cast<double>(handled) / secs, 0)}};
    } else {
      during[i] = {{"note", "no health reply within 1 s of the overload's end (busy)"}};
    }
  }
  // Recovery: a normal rate right after, no pause.
  auto overload_end = static_cast<std::int64_t>(num(over, "last_ns"));
  double rec_secs = opt_.quick ? 3 : 10;
  load_spec rl;
  rl.rate = 1000;
  rl.duration = rec_secs;
  auto rec = run_load(p, rl);
  drain(p, static_cast<std::uint64_t>(num(p.load, "sent")), opt_.quick ? 3 : 30);
  auto r = end_phase(p);
  for (auto* s : sys) {
    std::lock_guard<std::mutex> g{s->tl_mx};
    s->timeline_on = false;
  }
  r["overload_load"] = over;
  r["recovery_load"] = rec;
  r["offered_eps"] = rate;
  // Recovery time: after the overload ends, when did the last "slow" ping reply
  // arrive? Slow = over max(10 ms, 5x this system's p99 at the lowest fixed rate).
  auto recovery_end = static_cast<std::int64_t>(num(rec, "last_ns"));
  std::array<json, 3> rec_after{nullptr, nullptr, nullptr}, rec_p50 = rec_after, rec_p99 = rec_after,
                      tail_p99 = rec_after, peak = rec_after, bound = rec_after;
  for (std::size_t i = 0; i < sys.size(); ++i) {
    auto* s = sys[i];
    auto& sr = r["systems"][s->name];
    sr["during_overload"] = during[i];
    sr["rss_peak_overload_mb"] = round_to(static_cast<double>(peak_overload[i]) / 1024, 1);
    peak[s->col] = sr["rss_peak_overload_mb"];
    double thr_ms = std::max(10.0, 5 * low_rate_p99_[s->col]);
    std::int64_t last_slow = 0;
    std::size_t after = 0;
    kbench::log_histogram last_second;
    {
      std::lock_guard<std::mutex> g{s->tl_mx};
      for (auto& [arrival, lat] : s->timeline) {
        if (arrival < overload_end)
          continue;
        ++after;
        if (static_cast<double>(lat) / 1e6 > thr_ms)
          last_slow = arrival;
        if (arrival > recovery_end - 1'000'000'000LL)
          last_second.record(lat);
      }
    }
    json rj{{"threshold_ms", thr_ms}, {"pings_after_overload", after}};
    if (after == 0) {
      rj["recovered_after_s"] = nullptr;
      rj["note"] = "no !ping reply after the overload";
    } else if (last_slow == 0) {
      rj["recovered_after_s"] = 0;
    } else if (last_slow > recovery_end - 500'000'000LL) {
      rj["recovered_after_s"] = nullptr;
      rj["note"] = "still slow at the end of the recovery phase";
    } else {
      rj["recovered_after_s"] = round_to(static_cast<double>(last_slow - overload_end) / 1e9, 3);
    }
    rj["last_second_e2e"] = last_second.to_json();
    sr["recovery"] = rj;
    rec_after[s->col] = rj["recovered_after_s"].is_null() ? json("not recovered") : rj["recovered_after_s"];
    if (last_second.count() > 0)
      tail_p99[s->col] = rj["last_second_e2e"]["p99_ms"];
    rec_p50[s->col] = pct(sr, "e2e", "p50_ms");
    rec_p99[s->col] = pct(sr, "e2e", "p99_ms");
  }
  // The stated memory bound of the kryten-cpp service (from its config, which
  // writes the runtime's defaults out).
  if (auto* k = main_of(col_kryten); k && r["systems"].contains(k->name)) {
    bound[col_kryten] = memory_bound(r["systems"][k->name]);
  }
  bound[col_raw] = "cnats pending limit only";
  if (main_of(col_node))
    bound[col_node] = "none";
  results_["scenarios"]["overload"] = r;
  const std::string sec = "4. overload: " + fmt_value(rate) + " ev/s offered (2x max; " +
                          fmt_value(over["rate_achieved"]) + " achieved) for " + fmt_value(opt_.overload_seconds) +
                          " s, then 1,000 ev/s for " + fmt_value(rec_secs) + " s";
  auto& s = r["systems"];
  add_row(sec, "handled during the overload", "ev/s", by_col(s, sys, [](const json& x) {
            return x.contains("during_overload") && x["during_overload"].contains("handled_eps") ? x["during_overload"]["handled_eps"] : json(nullptr); }));
  add_row(sec, "handled over the whole phase", "ev/s", by_col(s, sys, [](const json& x) { return x["throughput_eps"]; }));
  add_row(sec, "sent (overload + recovery)", "", by_col(s, sys, [](const json& x) { return x["sent"]; }));
  add_row(sec, "dropped (reported)", "", by_col(s, sys, [](const json& x) { return x["dropped"]; }));
  add_row(sec, "unaccounted (sent-handled-dropped)", "", by_col(s, sys, [](const json& x) { return x["unaccounted"]; }));
  add_row(sec, "peak RSS during overload", "MB", peak);
  add_row(sec, "peak RSS overall", "MB", by_col(s, sys, [](const json& x) { return x["rss_peak_mb"]; }));
  add_row(sec, "stated memory bound", "MB", bound);
  add_row(sec, "RSS after", "MB", by_col(s, sys, [](const json& x) { return x["rss_end_mb"]; }));
  add_row(sec, "recovered (slow !ping replies end) after", "s", rec_after);
  add_row(sec, "!ping reply p99, last second of recovery", "ms", tail_p99);
}

// -- scenario 5 -----------------------------------------------------------------------

/// The main instances left alone: what wakes them costs CPU on every host a
/// fleet of bots idles on.
/// `when`: "fresh" (started, no events yet) or "after_load" (the other
/// scenarios done).
void bench::scenario_idle(const std::string& when) {
  settle(opt_.quick ? 5 : 30);
  const double secs = opt_.quick ? 5 : 30;
  std::cerr << "kryten-bench: scenario 6: idle for " << secs << " s (" << when << ")\n";
  static const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  auto sys = mains();
  std::vector<std::uint64_t> cpu0;
  std::vector<std::map<std::string, std::pair<std::string, std::uint64_t>>> threads0;
  for (auto* s : sys) {
    cpu0.push_back(cpu_ticks(s->pid));
    threads0.push_back(thread_ticks(s->pid));
  }
  auto t0 = kbench::mono_ns();
  sleep_ms(static_cast<int>(secs * 1000));
  double wall = static_cast<double>(kbench::mono_ns() - t0) / 1e9;
  std::array<json, 3> cores{nullptr, nullptr, nullptr}, threads = cores, rss = cores;
  json out = json::object();
  for (std::size_t i = 0; i < sys.size(); ++i) {
    auto* s = sys[i];
    double c = static_cast<double>(cpu_ticks(s->pid) - cpu0[i]) / tick / wall;
    cores[s->col] = round_to(c, 4);
    threads[s->col] = status_kb(s->pid, "Threads:");
    rss[s->col] = round_to(static_cast<double>(status_kb(s->pid, "VmRSS:")) / 1024, 1);
    // Which threads woke: ticks by thread name (threads that came and went
    // during the window are in the process's total only).
    json busy = json::object();
    for (const auto& [tid, now] : thread_ticks(s->pid)) {
      auto before = threads0[i].find(tid);
      if (before == threads0[i].end() || now.second <= before->second.second)
        continue;
      auto& slot = busy[now.first];
      slot = (slot.is_number() ? slot.get<std::uint64_t>() : 0) + (now.second - before->second.second);
    }
    out[s->name] = {{"cores", cores[s->col]}, {"threads", threads[s->col]}, {"rss_mb", rss[s->col]},
                    {"seconds", round_to(wall, 1)}, {"ticks_by_thread", busy}};
  }
  results_["scenarios"]["idle"][when] = out;
  const std::string sec = "6. idle for " + fmt_value(secs) + " s, " +
                          (when == "fresh" ? "before any event" : "after the other scenarios");
  add_row(sec, "CPU", "cores", cores);
  add_row(sec, "threads", "", threads);
  add_row(sec, "resident memory", "MB", rss);
  notes_.push_back("scenario 6: CPU from /proc/<pid>/stat in clock ticks (10 ms): over " +
                   fmt_value(secs) + " s one tick is " + fmt_value(0.01 / secs) + " cores");
}

void bench::scenario_start_stop() {
  // Start-up figures come from the launches; shut-down ones from stopping the
  // main instances, one at a time.
  std::array<json, 3> up{nullptr, nullptr, nullptr}, up_lc = up, down = up, code = up;
  json out = json::object();
  for (auto& s : main_) {
    if (!s || !s->available)
      continue;
    if (s->pid > 0)
      stop(*s);
    up[s->col] = s->startup.value("startup_ms", json(nullptr));
    up_lc[s->col] = s->startup.value("lifecycle_startup_ms", json(nullptr));
    down[s->col] = s->shutdown.value("shutdown_ms", json(nullptr));
    code[s->col] = s->shutdown.value("exit_code", json(nullptr));
    out[s->name] = {{"startup", s->startup}, {"shutdown", s->shutdown}};
  }
  results_["scenarios"]["start_stop"] = out;
  const std::string sec = "5. start-up and shut-down (after the other scenarios)";
  add_row(sec, "start -> ready (first of health reply, startup event)", "ms", up);
  add_row(sec, "start -> lifecycle startup event", "ms", up_lc);
  add_row(sec, "SIGTERM -> exit", "ms", down);
  add_row(sec, "exit code", "", code);
}

// -- output ---------------------------------------------------------------------------

void bench::print_table() {
  std::printf("\n%-46s %14s %14s %14s %10s %10s\n", "", label(0), label(1), label(2),
              "cpp/raw", "cpp/Node");
  std::string section;
  for (auto& r : rows_) {
    if (r.section != section) {
      section = r.section;
      std::printf("\n%s\n", section.c_str());
    }
    std::string metric = "  " + r.metric + (r.unit.empty() ? "" : " (" + r.unit + ")");
    std::printf("%-46s %14s %14s %14s %10s %10s\n", metric.c_str(), fmt_value(r.v[0]).c_str(),
                fmt_value(r.v[1]).c_str(), fmt_value(r.v[2]).c_str(), fmt_value(ratio(r.v[0], r.v[1])).c_str(),
                fmt_value(ratio(r.v[0], r.v[2])).c_str());
  }
  std::printf("\n");
  for (auto& n : notes_)
    std::printf("note: %s\n", n.c_str());
}

json bench::table_json() {
  json t = json::array();
  for (auto& r : rows_)
    t.push_back({{"section", r.section}, {"metric", r.metric}, {"unit", r.unit},
                 {"kryten", r.v[0]}, {"raw", r.v[1]}, {"node", r.v[2]},
                 {"kryten_over_raw", ratio(r.v[0], r.v[1])}, {"kryten_over_node", ratio(r.v[0], r.v[2])}});
  return t;
}

int plot(const std::string& from, const std::string& out_file);

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
    notes_.push_back("load average " + fmt_value(load_start) + " at start on " +
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
    notes_.push_back("kryten-cpp column: your bot, " + opt_.bot + ". Its 'publish -> handler start' "
                     "rows are its runtime's queue_delay (arrival at the connection -> handler "
                     "start) from its health, since it started; events it has no handler for are "
                     "received but neither handled nor dropped, so they show as unaccounted; the "
                     "other figures are measured as for every system");
  if (!main_[2]->available)
    notes_.push_back("Node column n/a: " + main_[2]->reason);
  if (!main_[1]->available)
    notes_.push_back("raw column n/a: " + main_[1]->reason);

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
    notes_.push_back(std::to_string(bus_.unmatched_pongs()) + " say commands from no known system or without a timestamp");
  results_["elapsed_s"] = round_to(static_cast<double>(kbench::mono_ns() - started) / 1e9, 1);
  results_["table"] = table_json();
  results_["notes"] = notes_;
  print_table();
  std::printf("total time %.1f s; results in %s; logs in %s\n", num(results_, "elapsed_s"), opt_.json_out.c_str(),
              opt_.work_dir.c_str());
  write_text(opt_.json_out, results_.dump(2) + "\n");
  cleanup();
  if (!opt_.plot.empty())
    return plot(opt_.json_out, opt_.plot);
  return 0;
}

// -- plot -----------------------------------------------------------------------------

/// Latency percentiles against offered rate, one panel per percentile, a line
/// per system: publish -> !ping reply (all three; solid) and publish -> handler
/// start (kryten-cpp and raw; dashed).
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

}  // namespace

int main(int argc, char** argv) {
  options o;
  try {
    o = parse(argc, argv);
  } catch (const usage_error& e) {
    std::cerr << "kryten-bench: " << e.what() << "\n(see kryten-bench --help)\n";
    return 2;
  }
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  try {
    if (!o.plot_from.empty())
      return plot(o.plot_from, o.plot);
    bench b{o};
    int rc = b.run();
    nats_Close();
    return rc;
  } catch (const interrupted_error&) {
    std::cerr << "kryten-bench: interrupted\n";
    return 130;
  } catch (const std::exception& e) {
    std::cerr << "kryten-bench: " << e.what() << "\n";
    return 1;
  }
}
