#include "kryten/events.hpp"

#include <variant>

namespace kryten {

nlohmann::json event_envelope::payload() const {
  // A default-constructed envelope has no payload text: treat it as null
  // rather than throwing.
  if (payload_json.empty())
    return nullptr;
  return nlohmann::json::parse(payload_json);
}

nlohmann::json event_envelope::to_json() const {
  return {{"event_name", event_name},
          {"payload", payload()},
          {"channel", channel},
          {"domain", domain},
          {"timestamp", timestamp},
          {"correlation_id", correlation_id}};
}

const event_envelope& envelope_of(const event& e) {
  return e.envelope();
}

}  // namespace kryten
