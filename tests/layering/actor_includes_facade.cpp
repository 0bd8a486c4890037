// A back-edge on purpose: the actors layer may not see the client facade, so
// this file must fail to compile (tests/CMakeLists.txt checks that it does).
#include "actors/runtime_stats.hpp"
#include "kryten/client.hpp"
