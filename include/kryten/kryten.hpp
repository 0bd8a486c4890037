// Everything a kryten service needs (the test kit, kryten/testing.hpp, apart).
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
#include "kryten/robot.hpp"
#include "kryten/robot_requests.hpp"
#include "kryten/runtime_protocol.hpp"
#include "kryten/subjects.hpp"
