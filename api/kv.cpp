#include "kryten/kv.hpp"

namespace kryten {

const char* to_string(kv_operation op) {
  switch (op) {
    case kv_operation::put: return "put";
    case kv_operation::erase: return "delete";
    case kv_operation::purge: return "purge";
  }
  return "unknown";
}

nlohmann::json kv_entry::json() const {
  return nlohmann::json::parse(value, nullptr, false);
}

namespace {

/// Python's json.dumps layout: ", " between items, ": " after keys, non-ASCII
/// escaped; the scalars are nlohmann's (the same text for the same values).
void dump_python_style(const nlohmann::json& v, std::string& out) {
  if (v.is_object()) {
    out += '{';
    const char* sep = "";
    for (const auto& [key, item] : v.items()) {
      out += sep;
      out += nlohmann::json(key).dump(-1, ' ', true);
      out += ": ";
      dump_python_style(item, out);
      sep = ", ";
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    const char* sep = "";
    for (const auto& item : v) {
      out += sep;
      dump_python_style(item, out);
      sep = ", ";
    }
    out += ']';
  } else {
    out += v.dump(-1, ' ', true);
  }
}

}  // namespace

std::string kv_json_value(const nlohmann::json& value) {
  std::string out;
  dump_python_style(value, out);
  return out;
}

}  // namespace kryten
