#include "bench.hpp"

#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <functional>
#include <sstream>
#include <unistd.h>

#include "bench_process.hpp"
#include "bench_sampling.hpp"

namespace kbench {

namespace fs = std::filesystem;

// -- scenario 1 -----------------------------------------------------------------------

namespace {

// Marks the rows where the raw subscriber is single-threaded by construction:
// it decodes and handles on cnats' one delivery thread per subscription, while
// kryten-cpp decodes there and handles on a CAF worker, and Node has one loop.
const std::string raw_one_thread = " [raw: 1 thread]";

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

}  // namespace

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
  add_row(sec, "handled" + raw_one_thread, "ev/s", by_col(s, sys, [](const json& x) { return x["throughput_eps"]; }));
  add_row(sec, "events handled", "", by_col(s, sys, [](const json& x) { return x["handled"]; }));
  add_row(sec, "dropped (reported)", "", by_col(s, sys, [](const json& x) { return x["dropped"]; }));
  add_row(sec, "unaccounted (sent-handled-dropped)", "", by_col(s, sys, [](const json& x) { return x["unaccounted"]; }));
  add_row(sec, "CPU per handled event" + raw_one_thread, "us", by_col(s, sys, [](const json& x) { return x["cpu_us_per_event"]; }));
  add_row(sec, "CPU per received event" + raw_one_thread, "us", by_col(s, sys, [](const json& x) { return x["cpu_us_per_received"]; }));
  add_row(sec, "CPU cores used", "", by_col(s, sys, [](const json& x) { return x["cores"]; }));
  add_row(sec, "peak RSS", "MB", by_col(s, sys, [](const json& x) { return x["rss_peak_mb"]; }));
  report_.add_note("[raw: 1 thread]: the raw subscriber decodes and handles on cnats' one delivery "
                   "thread per subscription, single-threaded by construction; kryten-cpp decodes on "
                   "that thread and handles on a CAF worker; Node runs one event loop");
  report_.add_note("scenario 1 (shared): the publisher used " + fmt_value(r["load"]["cpu_us_per_event"]) +
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
    add_row(sec, "handled, each system alone" + raw_one_thread, "ev/s", eps);
    add_row(sec, "dropped, alone", "", drop);
    add_row(sec, "CPU per received event, alone" + raw_one_thread, "us", cpu);
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
  report_.add_note("scenario 3: the Node peer is the echo bot as published, with no per-event work option: n/a");
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
  report_.add_note("scenario 4b: the raw subscriber handles chat and adduser on one thread, in "
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
  add_row(sec, "handled during the overload" + raw_one_thread, "ev/s", by_col(s, sys, [](const json& x) {
            return x.contains("during_overload") && x["during_overload"].contains("handled_eps") ? x["during_overload"]["handled_eps"] : json(nullptr); }));
  add_row(sec, "handled over the whole phase" + raw_one_thread, "ev/s", by_col(s, sys, [](const json& x) { return x["throughput_eps"]; }));
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
  report_.add_note("scenario 6: CPU from /proc/<pid>/stat in clock ticks (10 ms): over " +
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

}  // namespace kbench
