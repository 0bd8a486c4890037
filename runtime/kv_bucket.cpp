#include "kryten/kv_bucket.hpp"

#include <caf/all.hpp>

#include "runtime/ask.hpp"

namespace kryten {

namespace {

using namespace std::chrono_literals;

/// Past the runtime's own key-value deadline (10 s), so its error is the one seen.
constexpr auto kv_wait = 12s;

template <class T>
T value_or_throw(caf::expected<T> x, const std::string& what) {
  if (!x)
    throw kv_error(what + ": " + describe(x.error()),
                   code_of(x.error()).value_or(error_code::timeout));
  return std::move(*x);
}

/// Runs a watch's callback for each change; quits with the runtime.
caf::behavior watch_callback(caf::event_based_actor* self,
                             std::function<void(const kv_entry&)> callback,
                             const runtime_actor& runtime, std::shared_ptr<spdlog::logger> log) {
  self->monitor(runtime);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  return {
    [callback, log](const kv_entry& e) {
      try {
        callback(e);
      } catch (const std::exception& ex) {
        log->error("key-value watch callback for {}/{} threw: {}", e.bucket, e.key, ex.what());
      }
    },
  };
}

}  // namespace

kv_bucket::kv_bucket(caf::actor_system& system, runtime_actor runtime, std::string name,
                     std::shared_ptr<spdlog::logger> log)
  : system_(&system), runtime_(std::move(runtime)), name_(std::move(name)), log_(std::move(log)) {}

std::optional<std::string> kv_bucket::get(std::string_view key) const {
  auto e = value_or_throw(detail::ask<kv_entry>(*system_, runtime_, kv_wait, kv_get_atom::value,
                                                name_, std::string{key}),
                          "kv get " + name_ + "/" + std::string{key});
  if (!e.found)
    return std::nullopt;
  return std::move(e.value);
}

std::optional<nlohmann::json> kv_bucket::get_json(std::string_view key) const {
  auto bytes = get(key);
  if (!bytes)
    return std::nullopt;
  auto json = nlohmann::json::parse(*bytes, nullptr, false);
  if (json.is_discarded())
    throw kv_error("kv get " + name_ + "/" + std::string{key} + ": the value is not JSON",
                   error_code::bad_input);
  return json;
}

std::uint64_t kv_bucket::put(std::string_view key, std::string_view value) const {
  return value_or_throw(detail::ask<std::uint64_t>(*system_, runtime_, kv_wait,
                                                   kv_put_atom::value, name_, std::string{key},
                                                   std::string{value}),
                        "kv put " + name_ + "/" + std::string{key});
}

std::uint64_t kv_bucket::put_json(std::string_view key, const nlohmann::json& value) const {
  return put(key, kv_json_value(value));
}

void kv_bucket::erase(std::string_view key) const {
  value_or_throw(detail::ask<bool>(*system_, runtime_, kv_wait, kv_delete_atom::value, name_,
                                   std::string{key}),
                 "kv delete " + name_ + "/" + std::string{key});
}

std::vector<std::string> kv_bucket::keys() const {
  return value_or_throw(detail::ask<std::vector<std::string>>(*system_, runtime_, kv_wait,
                                                              kv_keys_atom::value, name_),
                        "kv keys " + name_);
}

std::map<std::string, std::string> kv_bucket::get_all() const {
  auto entries = value_or_throw(detail::ask<std::vector<kv_entry>>(
                                  *system_, runtime_, kv_wait, kv_get_atom::value, name_),
                                "kv get-all " + name_);
  std::map<std::string, std::string> out;
  for (auto& e : entries)
    out.emplace(std::move(e.key), std::move(e.value));
  return out;
}

std::map<std::string, nlohmann::json> kv_bucket::get_all_json() const {
  std::map<std::string, nlohmann::json> out;
  for (auto& [key, bytes] : get_all()) {
    auto json = nlohmann::json::parse(bytes, nullptr, false);
    if (json.is_discarded())
      log_->warn("kv get-all {}: the value of {} is not JSON (left out)", name_, key);
    else
      out.emplace(key, std::move(json));
  }
  return out;
}

std::string kv_bucket::watch(std::string_view key, caf::actor actor) const {
  return value_or_throw(detail::ask<std::string>(*system_, runtime_, kv_wait,
                                                 kv_watch_atom::value, name_, std::string{key},
                                                 std::move(actor)),
                        "kv watch " + name_ + "/" + std::string{key});
}

std::string kv_bucket::watch(std::string_view key,
                             std::function<void(const kv_entry&)> callback) const {
  auto actor = system_->spawn<caf::detached>(watch_callback, std::move(callback), runtime_, log_);
  try {
    return watch(key, actor);
  } catch (...) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    throw;
  }
}

void kv_bucket::unwatch(const std::string& label) const {
  value_or_throw(detail::ask<bool>(*system_, runtime_, kv_wait, unsubscribe_atom::value, label),
                 "kv unwatch " + label);
}

}  // namespace kryten
