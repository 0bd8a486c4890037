// Fuzz target: kryten::detail::parse_command (actors/command_actor.cpp), the
// body of a request on kryten.{service}.command (PROTOCOL.md §2), sent by any
// peer on the bus.
//
// A body that parses gives a command_request whose args and meta are objects
// (handlers index them without checking); one that does not gives a failure
// reply of the §2 shape. Either way the command actor goes on to read and
// serialise the reply (finish() in command_actor.cpp): that is replayed here.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "actors/command_actor.hpp"
#include "actors/command_worker_actor.hpp"
#include "fuzz_check.hpp"

namespace {

volatile std::size_t sink;

// What finish() does with a reply before it is published.
void replay_finish(const nlohmann::json& reply) {
  try {
    if (!reply.value("success", false))
      sink = sink + reply.value("error", std::string{"error"}).size();
    sink = sink + reply.dump().size();
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "reply handling threw: %s\nreply: %s\n", e.what(),
                 reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string service = "fuzz-bot";
  const std::string body(reinterpret_cast<const char*>(data), size);
  nlohmann::json failure;
  const auto req = kryten::detail::parse_command(service, body, failure);
  if (!req) {
    KRYTEN_FUZZ_CHECK(failure.is_object());
    KRYTEN_FUZZ_CHECK(failure.value("success", true) == false);
    KRYTEN_FUZZ_CHECK(failure.value("service", std::string{}) == service);
    KRYTEN_FUZZ_CHECK(failure.at("error").is_string());
    replay_finish(failure);
    return 0;
  }
  KRYTEN_FUZZ_CHECK(req->args.is_object());
  KRYTEN_FUZZ_CHECK(req->meta.is_object());
  try {
    sink = sink + req->args.dump().size() + req->meta.dump().size();
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "args/meta dump threw: %s\n", e.what());
    std::abort();
  }
  // An unknown command, as the actor answers it.
  replay_finish(kryten::detail::command_failure(service, req->command,
                                                "Unknown command: " + req->command));
  return 0;
}
