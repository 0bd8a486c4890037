// kryten-ctl: the operator's command line for a Kryten deployment.
//
//   kryten-ctl ls | ping SERVICE | health SERVICE | stats SERVICE | watch
//   kryten-ctl restart --reason TEXT [--delay S] --yes
//
// Exit codes: 0 answered, 1 nothing answered or NATS not reachable, 2 usage.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ctl_options.hpp"
#include "kryten/lifecycle.hpp"
#include "messages/clock.hpp"
#include "messages/uuid.hpp"
#include "nats_link.hpp"

namespace {

using json = nlohmann::json;
using kryten::apps::link_reply;
using kryten::apps::nats_link;
using kryten::ctl::ctl_options;

constexpr int answered = 0;
constexpr int nothing_answered = 1;
constexpr int usage = 2;

std::chrono::milliseconds window_of(const ctl_options& o) {
  return std::chrono::milliseconds(static_cast<long long>(o.timeout * 1000));
}

/// A command request as PROTOCOL.md §2 has it.
std::string command_body(const std::string& command) {
  return json{{"command", command},
              {"args", json::object()},
              {"meta",
               {{"source", "kryten-ctl"},
                {"timestamp", kryten::detail::iso8601_now()},
                {"request_id", kryten::detail::uuid4()}}}}
    .dump();
}

json parsed(const std::string& data) { return json::parse(data, nullptr, false); }

/// Text cut or padded to a column.
std::string cell(std::string s, std::size_t width) {
  if (s.size() > width)
    s = s.substr(0, width - 1) + "~";
  return s + std::string(width - s.size() + 1, ' ');
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string text_of(const json& j, const char* key, const std::string& fallback = "-") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return fallback;
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// -- ls ----------------------------------------------------------------------------

/// The monitor's system.services: its "services" list, or nothing.
std::optional<json> services_from_monitor(nats_link& link, const ctl_options& o) {
  auto replies = link.gather("kryten." + o.monitor + ".command", command_body("system.services"),
                             window_of(o), 1);
  if (replies.empty())
    return std::nullopt;
  auto r = parsed(replies.front().data);
  if (!r.is_object() || !r.value("success", false) || !r.contains("data")
      || !r["data"].contains("services") || !r["data"]["services"].is_array())
    return std::nullopt;
  return r["data"]["services"];
}

/// Without a monitor: a discovery poll, and the startup events that answer it
/// (the same fields as the monitor's list, as far as a startup event has them).
json services_from_discovery(nats_link& link, const ctl_options& o) {
  auto events = link.publish_and_collect("kryten.lifecycle.*.startup", "kryten.service.discovery.poll",
                                         json{{"service", "kryten-ctl"}}.dump(), window_of(o));
  std::map<std::string, json> by_instance;
  for (auto& e : events) {
    auto j = parsed(e.data);
    if (!j.is_object() || !j.contains("service"))
      continue;
    json row{{"name", j["service"]},
             {"instance_id", j.value("instance_id", json(nullptr))},
             {"version", j.value("version", json("unknown"))},
             {"hostname", j.value("hostname", json("unknown"))},
             {"state", "up"},
             {"seconds_since_heartbeat", 0.0},
             {"uptime_seconds", j.value("uptime_seconds", json(nullptr))}};
    by_instance[text_of(row, "name") + "/" + text_of(row, "instance_id") + "/"
                + text_of(row, "hostname")] = row;
  }
  auto out = json::array();
  for (auto& [k, row] : by_instance)
    out.push_back(row);
  return out;
}

int run_ls(nats_link& link, const ctl_options& o) {
  std::string source = "monitor";
  auto services = services_from_monitor(link, o);
  if (!services) {
    source = "discovery";
    services = services_from_discovery(link, o);
  }
  if (o.json) {
    std::cout << json{{"source", source}, {"services", *services}}.dump(2) << "\n";
  } else {
    std::cout << cell("NAME", 20) << cell("INSTANCE", 36) << cell("VERSION", 10) << cell("HOST", 16)
              << cell("STATE", 9) << "LAST SEEN\n";
    for (auto& s : *services)
      std::cout << cell(text_of(s, "name"), 20) << cell(text_of(s, "instance_id"), 36)
                << cell(text_of(s, "version"), 10) << cell(text_of(s, "hostname"), 16)
                << cell(text_of(s, "state"), 9)
                << fixed(s.value("seconds_since_heartbeat", 0.0), 1) << "s ago\n";
    std::cout << services->size() << " instances (from the " << source << ")\n";
  }
  return services->empty() ? nothing_answered : answered;
}

// -- ping, health, stats ---------------------------------------------------------------

int run_ping(nats_link& link, const ctl_options& o) {
  // system.ping goes to the command queue group: one instance answers it.
  // $SRV.PING.<name> reaches every instance that speaks the Service API.
  auto command = link.gather("kryten." + o.service + ".command", command_body("system.ping"),
                             window_of(o), 1);
  auto pings = link.gather("$SRV.PING." + o.service, "", window_of(o));
  auto answers = json::array();
  for (auto& r : command) {
    auto j = parsed(r.data);
    auto data = j.is_object() ? j.value("data", json::object()) : json::object();
    answers.push_back({{"via", "system.ping"},
                       {"instance_id", data.value("instance_id", json(nullptr))},
                       {"round_trip_ms", r.round_trip_ms},
                       {"reply", j}});
  }
  for (auto& r : pings) {
    auto j = parsed(r.data);
    answers.push_back({{"via", "$SRV.PING"},
                       {"instance_id", j.is_object() ? j.value("id", json(nullptr)) : json(nullptr)},
                       {"round_trip_ms", r.round_trip_ms},
                       {"reply", j}});
  }
  if (o.json) {
    std::cout << answers.dump(2) << "\n";
  } else {
    for (auto& a : answers)
      std::cout << cell(text_of(a, "via"), 12) << cell(text_of(a, "instance_id"), 36)
                << fixed(a["round_trip_ms"].get<double>(), 2) << " ms\n";
    std::cout << answers.size() << " answers from " << o.service << "\n";
  }
  return answers.empty() ? nothing_answered : answered;
}

int run_health(nats_link& link, const ctl_options& o) {
  auto replies = link.gather("kryten." + o.service + ".command", command_body("system.health"),
                             window_of(o), 1);
  if (replies.empty()) {
    std::cerr << "kryten-ctl: " << o.service << " did not answer system.health\n";
    return nothing_answered;
  }
  auto j = parsed(replies.front().data);
  auto data = j.is_object() ? j.value("data", json::object()) : json::object();
  if (o.json) {
    std::cout << data.dump(2) << "\n";
  } else {
    std::cout << o.service << ": " << text_of(data, "status") << " (instance "
              << text_of(data, "instance_id") << ", nats_connected "
              << text_of(data, "nats_connected") << ", uptime "
              << fixed(data.value("uptime_seconds", 0.0), 1) << " s, "
              << fixed(replies.front().round_trip_ms, 2) << " ms)\n";
  }
  return answered;
}

int run_stats(nats_link& link, const ctl_options& o) {
  auto replies = link.gather("$SRV.STATS." + o.service, "", window_of(o));
  auto all = json::array();
  for (auto& r : replies)
    if (auto j = parsed(r.data); j.is_object())
      all.push_back(j);
  if (o.json) {
    std::cout << all.dump(2) << "\n";
  } else {
    std::cout << cell("INSTANCE", 36) << cell("ENDPOINT", 28) << cell("REQUESTS", 9)
              << cell("ERRORS", 7) << "AVG\n";
    for (auto& s : all)
      for (auto& ep : s.value("endpoints", json::array()))
        std::cout << cell(text_of(s, "id"), 36) << cell(text_of(ep, "subject"), 28)
                  << cell(text_of(ep, "num_requests"), 9) << cell(text_of(ep, "num_errors"), 7)
                  << fixed(ep.value("average_processing_time", 0.0) / 1e6, 3) << " ms\n";
    std::cout << all.size() << " instances of " << o.service << "\n";
  }
  return all.empty() ? nothing_answered : answered;
}

// -- watch -----------------------------------------------------------------------------

/// SIGINT and SIGTERM are blocked and read synchronously: a watch ends
/// cleanly between two messages, with no handler and no shared flag.
class stop_signals {
public:
  stop_signals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  bool received() {
    timespec zero{0, 0};
    return sigtimedwait(&set_, nullptr, &zero) > 0;
  }

private:
  sigset_t set_;
};

std::string event_line(const std::string& subject, const json& j) {
  std::ostringstream line;
  auto kind = subject.substr(subject.rfind('.') + 1);
  line << text_of(j, "timestamp", kryten::detail::iso8601_now()) << ' ' << cell(kind, 12)
       << cell(text_of(j, "service"), 20) << cell(text_of(j, "instance_id"), 36)
       << text_of(j, "version") << " on " << text_of(j, "hostname");
  if (j.contains("reason"))
    line << " reason=\"" << text_of(j, "reason") << '"';
  if (j.contains("heartbeat_count"))
    line << " beat=" << text_of(j, "heartbeat_count");
  return line.str();
}

int run_watch(nats_link& link, const ctl_options& o, stop_signals& signals) {
  long seen = 0;
  auto until = std::chrono::steady_clock::now()
               + std::chrono::milliseconds(static_cast<long long>(o.duration * 1000));
  auto keep_going = [&] {
    if (signals.received())
      return false;
    if (o.count > 0 && seen >= o.count)
      return false;
    return o.duration <= 0 || std::chrono::steady_clock::now() < until;
  };
  link.follow("kryten.lifecycle.>",
              [&](const std::string& subject, const std::string& data) {
                ++seen;
                auto j = parsed(data);
                if (o.json)
                  std::cout << json{{"subject", subject}, {"event", j}}.dump() << std::endl;
                else if (j.is_object())
                  std::cout << event_line(subject, j) << std::endl;
                else
                  std::cout << subject << " (not JSON)" << std::endl;
              },
              keep_going, std::chrono::milliseconds(100));
  return answered;
}

// -- restart ---------------------------------------------------------------------------

int run_restart(nats_link& link, const ctl_options& o) {
  auto notice = kryten::make_restart_notice("kryten-ctl", o.reason, o.delay);
  link.publish("kryten.lifecycle.group.restart", notice.dump());
  if (o.json)
    std::cout << notice.dump(2) << "\n";
  else
    std::cout << "group restart notice sent: \"" << o.reason << "\", services restart in "
              << fixed(o.delay, 1) << " s\n";
  return answered;
}

}  // namespace

int main(int argc, char** argv) {
  ctl_options o;
  try {
    o = kryten::ctl::parse_ctl_options(std::vector<std::string>(argv, argv + argc));
  } catch (const kryten::ctl::usage_error& e) {
    std::cerr << "kryten-ctl: " << e.what() << "\n\n" << kryten::ctl::ctl_usage();
    return usage;
  }
  if (o.command == "help") {
    std::cout << kryten::ctl::ctl_usage();
    return answered;
  }
  stop_signals signals;  // before any thread starts, so that all inherit the mask
  try {
    nats_link link{o.link};
    if (o.command == "ls")
      return run_ls(link, o);
    if (o.command == "ping")
      return run_ping(link, o);
    if (o.command == "health")
      return run_health(link, o);
    if (o.command == "stats")
      return run_stats(link, o);
    if (o.command == "watch")
      return run_watch(link, o, signals);
    return run_restart(link, o);
  } catch (const kryten::apps::link_error& e) {
    std::cerr << "kryten-ctl: " << e.what() << "\n";
    return nothing_answered;
  }
}
