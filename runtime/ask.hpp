// The blocking facade's one way to ask an actor: a request from the caller's
// thread that waits for the answer (or the deadline).
#pragma once

#include <utility>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/timespan.hpp>

namespace kryten::detail {

template <class T, class Handle, class... Ts>
caf::expected<T> ask(caf::actor_system& sys, const Handle& to, caf::timespan deadline,
                     Ts&&... xs) {
  caf::expected<T> out{caf::sec::request_timeout};
  caf::scoped_actor self{sys};
  self->request(to, deadline, std::forward<Ts>(xs)...)
    .receive([&](T& x) { out = std::move(x); }, [&](caf::error& e) { out = std::move(e); });
  return out;
}

}  // namespace kryten::detail
