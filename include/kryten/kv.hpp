// The JetStream key-value store (a NATS server started with JetStream on):
// what a bucket is made with, and what a read or a watch yields. Values are
// bytes; the JSON helpers encode as kryten-py's kv_put(..., as_json=True)
// and decode as its kv_get(..., parse_json=True), so that Python and C++
// services share buckets (Kryten-Robot's kryten_{channel}_playlist, ...).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <nlohmann/json.hpp>

namespace kryten {

/// A bucket to open, or to create when it does not exist (kryten-py's
/// get_or_create_kv_store); the limits apply only on creation.
struct kv_bucket_config {
  std::string bucket;
  std::string description;
  int history = 1;             // values kept per key, 1..64
  double ttl_seconds = 0;      // 0: values never expire
  std::int64_t max_bytes = -1; // -1: unbounded
  std::int32_t max_value_size = -1;
  bool memory_storage = false; // file storage otherwise
  int replicas = 1;
  bool create = true;          // false: only open an existing bucket
};

enum class kv_operation : std::uint8_t { put, erase, purge };

const char* to_string(kv_operation op);

/// A key's value as read, or one change seen by a watch.
struct kv_entry {
  std::string bucket;
  std::string key;
  std::string value;           // the bytes; empty for erase and purge
  std::uint64_t revision = 0;  // the stream sequence of this value
  kv_operation operation = kv_operation::put;
  bool found = true;           // false: a read of a key with no value

  /// The value as JSON (kv_get(..., parse_json=True)); discarded (is_discarded())
  /// when it is not JSON.
  nlohmann::json json() const;
};

/// kryten-py's encoding of a JSON value: json.dumps(value).encode().
std::string kv_json_value(const nlohmann::json& value);

}  // namespace kryten

// Local only, between the runtime's actors, the client and users' actors.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::kv_bucket_config)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::kv_entry)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<kryten::kv_entry>)
