// Random (version 4) UUIDs from the kernel's CSPRNG: instance ids and
// request ids. The one generator of the project.
#pragma once

#include <string>

namespace kryten::detail {

/// "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", 122 random bits from getrandom(2).
std::string uuid4();

/// The same text from 16 bytes the caller drew (the load generator's seeded,
/// reproducible ids); the version and variant bits are set here.
std::string uuid4_from(const unsigned char (&bytes)[16]);

}  // namespace kryten::detail
