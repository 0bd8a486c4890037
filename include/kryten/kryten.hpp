// Everything a kryten service needs.
#pragma once

#include "kryten/client.hpp"
#include "kryten/commands.hpp"
#include "kryten/config.hpp"
#include "kryten/errors.hpp"
#include "kryten/events.hpp"
#include "kryten/handler.hpp"
#include "kryten/health.hpp"
#include "kryten/kv.hpp"
#include "kryten/kv_bucket.hpp"
#include "kryten/logging.hpp"
#include "kryten/message_types.hpp"
#include "kryten/runtime_protocol.hpp"
#include "kryten/subjects.hpp"
