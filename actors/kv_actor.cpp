#include "actors/kv_actor.hpp"

#include <algorithm>
#include <map>
#include <thread>

#include <caf/all.hpp>

#include "kryten/errors.hpp"
#include "kryten/kv.hpp"
#include "kryten/message_types.hpp"

namespace kryten::detail {

namespace {

/// The kryten error for a failed cnats call (read on the calling thread:
/// cnats keeps the last error per thread).
caf::error kv_failure(natsStatus st, const std::string& what) {
  const char* text = nats_GetLastError(nullptr);
  std::string context = what + ": " + (text != nullptr && *text ? text : natsStatus_GetText(st));
  switch (st) {
    case NATS_NO_RESPONDERS: return make_error(error_code::no_jetstream, context);
    case NATS_TIMEOUT: return make_error(error_code::timeout, context);
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED: return make_error(error_code::not_connected, context);
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT: return make_error(error_code::bad_input, context);
    default: return make_error(error_code::store_failed, context);
  }
}

kv_entry to_entry(kvEntry* e) {
  kv_entry out;
  out.bucket = kvEntry_Bucket(e);
  out.key = kvEntry_Key(e);
  if (const void* data = kvEntry_Value(e))
    out.value.assign(static_cast<const char*>(data), static_cast<std::size_t>(kvEntry_ValueLen(e)));
  out.revision = kvEntry_Revision(e);
  switch (kvEntry_Operation(e)) {
    case kvOp_Delete: out.operation = kv_operation::erase; break;
    case kvOp_Purge: out.operation = kv_operation::purge; break;
    default: out.operation = kv_operation::put; break;
  }
  return out;
}

/// One watch: a thread waiting in cnats for the next change. Stopping the
/// watcher wakes the thread, which then ends.
class kv_watch {
public:
  kv_watch(kvWatcher* w, caf::actor target) : watcher_(w), target_(std::move(target)) {
    thread_ = std::thread([this] { run(); });
  }
  ~kv_watch() {
    kvWatcher_Stop(watcher_);
    thread_.join();
    kvWatcher_Destroy(watcher_);
  }
  kv_watch(const kv_watch&) = delete;
  kv_watch& operator=(const kv_watch&) = delete;
  const caf::actor& target() const { return target_; }

private:
  void run() {
    constexpr std::int64_t wait_ms = 3'600'000;  // woken by changes and by Stop
    for (;;) {
      kvEntry* e = nullptr;
      auto st = kvWatcher_Next(&e, watcher_, wait_ms);
      if (st == NATS_TIMEOUT)
        continue;
      if (st != NATS_OK)
        return;
      if (e == nullptr)  // the current values have all been sent
        continue;
      caf::anon_send(target_, to_entry(e));
      kvEntry_Destroy(e);
    }
  }

  kvWatcher* watcher_;
  caf::actor target_;
  std::thread thread_;
};

struct kv_state {
  // Destroyed in reverse: the watches first, then the stores, then JetStream.
  std::shared_ptr<jsCtx> js;
  std::map<std::string, std::unique_ptr<kvStore, void (*)(kvStore*)>> stores;
  std::map<std::string, std::unique_ptr<kv_watch>> watches;
  std::uint64_t next_watch = 0;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "kryten.kv";
};

using kv_self = caf::stateful_actor<kv_state>;

/// The open store of `bucket`, opened on first use.
caf::expected<kvStore*> store(kv_self* self, const std::string& bucket) {
  auto& s = self->state;
  if (bucket.empty())
    return make_error(error_code::bad_input, "a bucket needs a name");
  if (auto i = s.stores.find(bucket); i != s.stores.end())
    return i->second.get();
  kvStore* kv = nullptr;
  auto st = js_KeyValue(&kv, s.js.get(), bucket.c_str());
  if (st == NATS_NOT_FOUND)
    return make_error(error_code::no_such_bucket, "no key-value bucket " + bucket);
  if (st != NATS_OK)
    return kv_failure(st, "opening bucket " + bucket);
  s.stores.emplace(bucket, std::unique_ptr<kvStore, void (*)(kvStore*)>{kv, kvStore_Destroy});
  return kv;
}

caf::expected<bool> open(kv_self* self, const kv_bucket_config& cfg) {
  auto existing = store(self, cfg.bucket);
  if (existing)
    return false;
  if (code_of(existing.error()) != error_code::no_such_bucket || !cfg.create)
    return existing.error();
  kvConfig c;
  kvConfig_Init(&c);
  c.Bucket = cfg.bucket.c_str();
  c.Description = cfg.description.empty() ? nullptr : cfg.description.c_str();
  c.History = static_cast<std::uint8_t>(std::clamp(cfg.history, 1, 64));
  c.TTL = static_cast<std::int64_t>(std::max(0.0, cfg.ttl_seconds) * 1e9);
  c.MaxBytes = cfg.max_bytes;
  c.MaxValueSize = cfg.max_value_size;
  c.StorageType = cfg.memory_storage ? js_MemoryStorage : js_FileStorage;
  c.Replicas = std::max(1, cfg.replicas);
  kvStore* kv = nullptr;
  if (auto st = js_CreateKeyValue(&kv, self->state.js.get(), &c); st != NATS_OK)
    return kv_failure(st, "creating bucket " + cfg.bucket);
  self->state.stores.emplace(cfg.bucket,
                             std::unique_ptr<kvStore, void (*)(kvStore*)>{kv, kvStore_Destroy});
  self->state.log->info("created key-value bucket {}", cfg.bucket);
  return true;
}

caf::expected<kv_entry> get(kv_self* self, const std::string& bucket, const std::string& key) {
  auto kv = store(self, bucket);
  if (!kv)
    return kv.error();
  kvEntry* e = nullptr;
  auto st = kvStore_Get(&e, *kv, key.c_str());
  if (st == NATS_NOT_FOUND) {
    kv_entry none;
    none.bucket = bucket;
    none.key = key;
    none.found = false;
    return none;
  }
  if (st != NATS_OK)
    return kv_failure(st, "reading " + bucket + "/" + key);
  auto out = to_entry(e);
  kvEntry_Destroy(e);
  return out;
}

caf::expected<std::vector<std::string>> keys(kv_self* self, const std::string& bucket) {
  auto kv = store(self, bucket);
  if (!kv)
    return kv.error();
  kvKeysList list{};
  auto st = kvStore_Keys(&list, *kv, nullptr);
  if (st == NATS_NOT_FOUND)
    return std::vector<std::string>{};
  if (st != NATS_OK)
    return kv_failure(st, "listing the keys of " + bucket);
  std::vector<std::string> out(list.Keys, list.Keys + list.Count);
  kvKeysList_Destroy(&list);
  std::sort(out.begin(), out.end());  // the server lists in no stable order
  return out;
}

caf::expected<std::vector<kv_entry>> get_all(kv_self* self, const std::string& bucket) {
  auto names = keys(self, bucket);
  if (!names)
    return names.error();
  std::vector<kv_entry> out;
  for (auto& key : *names) {
    auto entry = get(self, bucket, key);
    if (!entry)
      return entry.error();
    if (entry->found)  // deleted between the listing and the read
      out.push_back(std::move(*entry));
  }
  return out;
}

caf::expected<std::uint64_t> put(kv_self* self, const std::string& bucket, const std::string& key,
                               const std::string& value) {
  auto kv = store(self, bucket);
  if (!kv)
    return kv.error();
  std::uint64_t rev = 0;
  auto st = kvStore_Put(&rev, *kv, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (st != NATS_OK)
    return kv_failure(st, "writing " + bucket + "/" + key);
  return rev;
}

caf::expected<bool> erase(kv_self* self, const std::string& bucket, const std::string& key) {
  auto kv = store(self, bucket);
  if (!kv)
    return kv.error();
  if (auto st = kvStore_Delete(*kv, key.c_str()); st != NATS_OK)
    return kv_failure(st, "deleting " + bucket + "/" + key);
  return true;
}

caf::expected<std::string> watch(kv_self* self, const std::string& bucket, const std::string& key,
                               const caf::actor& target) {
  if (!target)
    return make_error(error_code::bad_input, "a watch needs an actor");
  auto kv = store(self, bucket);
  if (!kv)
    return kv.error();
  kvWatcher* w = nullptr;
  auto pattern = key.empty() ? std::string{">"} : key;
  if (auto st = kvStore_Watch(&w, *kv, pattern.c_str(), nullptr); st != NATS_OK)
    return kv_failure(st, "watching " + bucket + "/" + pattern);
  auto label = kv_watch_label_prefix + std::to_string(++self->state.next_watch);
  self->monitor(target);
  self->state.watches.emplace(label, std::make_unique<kv_watch>(w, target));
  return label;
}

caf::behavior kv_actor(kv_self* self, std::shared_ptr<jsCtx> js,
                       std::shared_ptr<spdlog::logger> log) {
  self->state.js = std::move(js);
  self->state.log = std::move(log);
  // A watch ends with the actor it feeds.
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& w = self->state.watches;
    for (auto i = w.begin(); i != w.end();)
      i = i->second->target().address() == dm.source ? w.erase(i) : std::next(i);
  });
  return {
    [self](kv_open_atom, const kv_bucket_config& cfg) -> caf::result<bool> {
      return open(self, cfg);
    },
    [self](kv_get_atom, const std::string& bucket,
           const std::string& key) -> caf::result<kv_entry> { return get(self, bucket, key); },
    [self](kv_get_atom, const std::string& bucket) -> caf::result<std::vector<kv_entry>> {
      return get_all(self, bucket);
    },
    [self](kv_put_atom, const std::string& bucket, const std::string& key,
           const std::string& value) -> caf::result<std::uint64_t> {
      return put(self, bucket, key, value);
    },
    [self](kv_delete_atom, const std::string& bucket,
           const std::string& key) -> caf::result<bool> { return erase(self, bucket, key); },
    [self](kv_keys_atom, const std::string& bucket) -> caf::result<std::vector<std::string>> {
      return keys(self, bucket);
    },
    [self](kv_watch_atom, const std::string& bucket, const std::string& key,
           const caf::actor& target) -> caf::result<std::string> {
      return watch(self, bucket, key, target);
    },
    [self](unsubscribe_atom, const std::string& label) -> caf::expected<bool> {
      if (self->state.watches.erase(label) == 0)
        return make_error(error_code::unknown_handler, "no watch " + label);
      return true;
    },
  };
}

}  // namespace

caf::actor spawn_kv_actor(caf::actor_system& sys, const kv_spec& spec, std::string& error) {
  jsOptions opts;
  jsOptions_Init(&opts);
  opts.Wait = spec.timeout.count();
  jsCtx* js = nullptr;
  if (auto st = natsConnection_JetStream(&js, spec.connection, &opts); st != NATS_OK) {
    error = natsStatus_GetText(st);
    return {};
  }
  return sys.spawn<caf::detached>(kv_actor, std::shared_ptr<jsCtx>{js, jsCtx_Destroy}, spec.log);
}

}  // namespace kryten::detail
