# `cpack -G DEB` in the build tree: one Debian package with the library, its
# headers and CMake package files, the programs (kryten-monitor, kryten-ctl,
# the examples) and the systemd unit template kryten@.service, installed
# under /usr.
install(FILES ${CMAKE_SOURCE_DIR}/packaging/kryten@.service DESTINATION lib/systemd/system)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kryten)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "kryten-cpp maintainers <kryten-cpp@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Kryten services runtime (C++), kryten-monitor and kryten-ctl")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# The shared libraries the programs link, as Debian bookworm names them
# (listed, so that building the package needs no dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libcaf-core0.17, libnats3.4, libspdlog1.10, libfmt9, libsimdjson14, libprometheus-cpp-core1.0, libcpp-httplib0.11, libssl3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nats-server")
include(CPack)
