#include "actors/discovery_actor.hpp"

#include <string_view>

#include <caf/all.hpp>

#include "kryten/message_types.hpp"
#include "kryten/subjects.hpp"
#include "messages/clock.hpp"

namespace kryten::detail {

namespace {

using namespace std::chrono_literals;

nlohmann::json micro_base(const discovery_spec& spec, const char* type) {
  return {{"type", type},
          {"name", spec.name},
          {"id", spec.instance_id},
          {"version", spec.version},
          {"metadata", {{"instance_id", spec.instance_id}}}};
}

nlohmann::json endpoint_info(const discovery_spec& spec) {
  return {{"name", "command"},
          {"subject", spec.command_subject},
          {"queue_group", "q"},
          {"metadata", nlohmann::json::object()}};
}

struct discovery_state {
  discovery_spec spec;
  static inline const char* name = "kryten.discovery";
};

using discovery_self = caf::stateful_actor<discovery_state>;

void reply(discovery_self* self, const std::string& to, const nlohmann::json& body) {
  if (!to.empty())
    self->send(self->state.spec.connection, publish_atom::value, to, body.dump());
}

void answer(discovery_self* self, const bus_message& msg) {
  auto& spec = self->state.spec;
  std::string_view subject = msg.subject;
  if (subject == subjects::discovery_poll || subject == subjects::robot_startup) {
    if (spec.lifecycle)  // a request: the answer must not come back as a stray message
      self->request(spec.lifecycle, 5s, startup_atom::value).then([](bool) {}, [](caf::error&) {});
  } else if (subject.rfind("$SRV.PING", 0) == 0) {
    reply(self, msg.reply, micro_ping(spec));
  } else if (subject.rfind("$SRV.INFO", 0) == 0) {
    reply(self, msg.reply, micro_info(spec));
  } else if (subject.rfind("$SRV.STATS", 0) == 0) {
    auto to = msg.reply;
    self->request(spec.commands, 1s, get_atom::value)
      .then([self, to](const std::string& last_error) {
        reply(self, to, micro_stats(self->state.spec, last_error));
      },
            [self, to](caf::error&) { reply(self, to, micro_stats(self->state.spec, "")); });
  }
}

caf::behavior discovery_actor(discovery_self* self, discovery_spec spec) {
  self->state.spec = std::move(spec);
  return {
    [self](const bus_message& msg) {
      answer(self, msg);
      self->state.spec.inbox->queued.fetch_sub(1, std::memory_order_relaxed);
    },
  };
}

}  // namespace

std::vector<std::string> micro_subjects(const std::string& name, const std::string& id) {
  std::vector<std::string> out;
  for (const char* verb : {"PING", "INFO", "STATS"}) {
    std::string base = std::string{"$SRV."} + verb;
    out.push_back(base);
    out.push_back(base + "." + name);
    out.push_back(base + "." + name + "." + id);
  }
  return out;
}

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
         || c == '-';
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/// Dot-separated, non-empty identifiers of [0-9A-Za-z-]; with `numeric_rule`,
/// an all-digit identifier has no leading zero (SemVer's pre-release rule).
bool identifiers_ok(std::string_view s, bool numeric_rule) {
  std::size_t start = 0;
  for (;;) {
    auto end = s.find('.', start);
    auto id = s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (id.empty())
      return false;
    bool all_digits = true;
    for (char c : id) {
      if (!is_name_char(c) || c == '_')
        return false;
      all_digits = all_digits && is_digit(c);
    }
    if (numeric_rule && all_digits && id.size() > 1 && id[0] == '0')
      return false;
    if (end == std::string_view::npos)
      return true;
    start = end + 1;
  }
}

/// SemVer 2.0.0 (semver.org), written out: std::regex draws false
/// -Wmaybe-uninitialized warnings from GCC 12 in sanitizer builds.
bool is_semver(std::string_view v) {
  auto plus = v.find('+');
  auto core_and_pre = v.substr(0, plus);
  if (plus != std::string_view::npos && !identifiers_ok(v.substr(plus + 1), false))
    return false;
  auto dash = core_and_pre.find('-');
  auto core = core_and_pre.substr(0, dash);
  if (dash != std::string_view::npos && !identifiers_ok(core_and_pre.substr(dash + 1), true))
    return false;
  int parts = 0;
  std::size_t start = 0;
  for (;;) {
    auto end = core.find('.', start);
    auto n = core.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (n.empty() || (n.size() > 1 && n[0] == '0'))
      return false;
    for (char c : n)
      if (!is_digit(c))
        return false;
    ++parts;
    if (end == std::string_view::npos)
      break;
    start = end + 1;
  }
  return parts == 3;
}

bool micro_identity_ok(const std::string& name, const std::string& version, std::string& why) {
  bool name_ok = !name.empty();
  for (char c : name)
    name_ok = name_ok && is_name_char(c);
  if (!name_ok) {
    why = "service name '" + name + "' does not match ^[A-Za-z0-9_-]+$";
    return false;
  }
  if (!is_semver(version)) {
    why = "version '" + version + "' is not SemVer";
    return false;
  }
  return true;
}

nlohmann::json micro_ping(const discovery_spec& spec) {
  return micro_base(spec, "io.nats.micro.v1.ping_response");
}

nlohmann::json micro_info(const discovery_spec& spec) {
  auto j = micro_base(spec, "io.nats.micro.v1.info_response");
  j["description"] = spec.description;
  j["endpoints"] = nlohmann::json::array({endpoint_info(spec)});
  return j;
}

nlohmann::json micro_stats(const discovery_spec& spec, const std::string& last_error) {
  auto j = micro_base(spec, "io.nats.micro.v1.stats_response");
  j["started"] = spec.started;
  auto& st = *spec.command_stats;
  auto requests = read(st.handled);
  auto total_ns = read(st.run_ns);
  auto ep = endpoint_info(spec);
  ep.erase("metadata");
  ep["num_requests"] = requests;
  ep["num_errors"] = read(st.exceptions);
  ep["last_error"] = last_error;
  ep["processing_time"] = total_ns;
  ep["average_processing_time"] = requests ? total_ns / requests : 0;
  j["endpoints"] = nlohmann::json::array({ep});
  return j;
}

std::string rfc3339_utc(std::int64_t unix_nanos) {
  return utc_time(unix_nanos, utc_format::rfc3339_nanos);
}

caf::actor spawn_discovery_actor(caf::actor_system& sys, discovery_spec spec) {
  return sys.spawn<caf::detached>(discovery_actor, std::move(spec));
}

}  // namespace kryten::detail
