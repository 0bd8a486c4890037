// A group restart callback's actor: runs one user callback for every restart
// notice, on a thread of its own, so that a slow or throwing callback delays
// neither the supervisor nor the other callbacks.
//
// Protocol:
//   restart_notice     calls the callback with the notice's body (defaults filled in)
#pragma once

#include <functional>
#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

namespace kryten::detail {

using restart_callback = std::function<void(const nlohmann::json&)>;

caf::actor spawn_restart_callback_actor(caf::actor_system& sys, restart_callback callback,
                                        std::shared_ptr<spdlog::logger> log);

}  // namespace kryten::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::detail::restart_callback)
