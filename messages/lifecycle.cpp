#include "kryten/lifecycle.hpp"

#include "messages/clock.hpp"

namespace kryten {

nlohmann::json lifecycle_payload(const service_identity& id,
                                 std::optional<double> uptime_seconds,
                                 const nlohmann::json& extra) {
  nlohmann::json p{{"service", id.service},
                   {"version", id.version},
                   {"hostname", id.hostname},
                   {"timestamp", detail::iso8601_now()},
                   {"uptime_seconds", uptime_seconds ? nlohmann::json(*uptime_seconds) : nullptr},
                   {"instance_id", id.instance_id}};
  if (id.metadata.is_object() && !id.metadata.empty())
    p["metadata"] = id.metadata;
  if (extra.is_object())
    for (auto& [key, value] : extra.items())
      p[key] = value;
  return p;
}

namespace {

template <class Check, class Read>
bool read_field(const nlohmann::json& j, const char* key, Check check, Read read,
                std::string& error) {
  auto i = j.find(key);
  if (i == j.end() || i->is_null())
    return true;
  if (!check(*i)) {
    error = std::string{key} + " has the wrong type";
    return false;
  }
  read(*i);
  return true;
}

}  // namespace

std::optional<restart_notice> parse_restart_notice(std::string_view body, std::string& error) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    error = "not JSON";
    return std::nullopt;
  }
  if (!j.is_object()) {
    error = "not a JSON object";
    return std::nullopt;
  }
  restart_notice n;
  auto is_string = [](const nlohmann::json& v) { return v.is_string(); };
  auto is_number = [](const nlohmann::json& v) { return v.is_number(); };
  bool ok = read_field(j, "initiator", is_string,
                       [&](const nlohmann::json& v) { n.initiator = v.get<std::string>(); },
                       error)
            && read_field(j, "reason", is_string,
                          [&](const nlohmann::json& v) { n.reason = v.get<std::string>(); },
                          error)
            && read_field(j, "delay_seconds", is_number,
                          [&](const nlohmann::json& v) { n.delay_seconds = v.get<double>(); },
                          error)
            && read_field(j, "timestamp", is_string,
                          [&](const nlohmann::json& v) { n.timestamp = v.get<std::string>(); },
                          error);
  if (!ok)
    return std::nullopt;
  // Untrusted: clamped, so that a huge value cannot overflow a timer.
  if (!(n.delay_seconds >= 0) || n.delay_seconds > max_restart_delay_seconds) {
    auto clamped = n.delay_seconds > max_restart_delay_seconds ? max_restart_delay_seconds : 0.0;
    n.clamped_from = j.at("delay_seconds").dump();
    n.delay_seconds = clamped;
    j["delay_seconds"] = clamped;
  }
  n.body = j.dump();
  return n;
}

nlohmann::json make_restart_notice(const std::string& initiator, const std::string& reason,
                                   double delay_seconds) {
  return {{"initiator", initiator},
          {"reason", reason},
          {"delay_seconds", delay_seconds},
          {"timestamp", detail::iso8601_now()}};
}

}  // namespace kryten
