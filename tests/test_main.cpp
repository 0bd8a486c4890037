#define CATCH_CONFIG_MAIN
// Catch2's own std::regex use draws false -Wmaybe-uninitialized warnings from
// GCC 12 in sanitizer builds; they are not ours to fix.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <catch2/catch.hpp>
