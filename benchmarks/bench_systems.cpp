#include "bench.hpp"

#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "bench_process.hpp"
#include "bench_sampling.hpp"

namespace kbench {

namespace fs = std::filesystem;

namespace {

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

}  // namespace

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

}  // namespace kbench
