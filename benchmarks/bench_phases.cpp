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
    if (interrupted() || kbench::mono_ns() > deadline) {
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
    report_.add_note(p.name + ": kryten-load exited " + std::to_string(*st) + " (publish errors: " +
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

}  // namespace kbench
