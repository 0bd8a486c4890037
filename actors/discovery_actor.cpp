#include "actors/discovery_actor.hpp"

#include <ctime>
#include <regex>

#include <caf/all.hpp>

#include "kryten/message_types.hpp"
#include "kryten/subjects.hpp"

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
  if (subject == subjects::discovery_poll) {
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

bool micro_identity_ok(const std::string& name, const std::string& version, std::string& why) {
  static const std::regex name_re{"^[A-Za-z0-9_-]+$"};
  // semver.org's regular expression
  static const std::regex semver_re{
    R"(^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*))"
    R"((?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?)"
    R"((?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$)"};
  if (!std::regex_match(name, name_re)) {
    why = "service name '" + name + "' does not match ^[A-Za-z0-9_-]+$";
    return false;
  }
  if (!std::regex_match(version, semver_re)) {
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
  std::time_t secs = static_cast<std::time_t>(unix_nanos / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%09lldZ",
                static_cast<long long>(unix_nanos % 1000000000));
  return buf;
}

caf::actor spawn_discovery_actor(caf::actor_system& sys, discovery_spec spec) {
  return sys.spawn(discovery_actor, std::move(spec));
}

}  // namespace kryten::detail
