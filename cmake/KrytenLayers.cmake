# One-way layers. Each layer's headers are linked (symlinks) into a directory
# of their own under build/layers/<layer>; a target's include path lists only
# the layers it may depend on, so an include that points up a layer fails to
# compile ("No such file"). The public headers all live in include/kryten/;
# the layers only say which of them a target may see.
#
#   api       include/kryten: the types a user writes against (config, events,
#             health, handlers, commands, errors, logging)
#   protocol  include/kryten: the typed actor protocol and the wire messages
#   messages  messages/*.hpp: private helpers of the protocol layer (clock, uuid)
#   actors    actors/*.hpp: the runtime's actors (private)
#   facade    include/kryten/client.hpp, kryten.hpp; runtime/*.hpp (private)
set(KRYTEN_LAYER_ROOT ${CMAKE_BINARY_DIR}/layers)
file(REMOVE_RECURSE ${KRYTEN_LAYER_ROOT})

# kryten_layer(LAYER file...) : files relative to the source root; a leading
# include/ is dropped, so include/kryten/x.hpp is seen as "kryten/x.hpp".
function(kryten_layer layer)
  foreach(f ${ARGN})
    string(REGEX REPLACE "^include/" "" rel "${f}")
    set(dst ${KRYTEN_LAYER_ROOT}/${layer}/${rel})
    get_filename_component(dir ${dst} DIRECTORY)
    file(MAKE_DIRECTORY ${dir})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/${f} ${dst} SYMBOLIC)
    set_property(GLOBAL APPEND PROPERTY KRYTEN_LAYER_${layer}_HEADERS ${rel})
  endforeach()
endfunction()

# kryten_layer_includes(TARGET SCOPE layer...)
function(kryten_layer_includes target scope)
  foreach(layer ${ARGN})
    target_include_directories(${target} ${scope} $<BUILD_INTERFACE:${KRYTEN_LAYER_ROOT}/${layer}>)
  endforeach()
endfunction()

# kryten_layer_check(LAYER visible-layer...) : every header of LAYER compiles
# on its own with only the visible layers on the include path.
function(kryten_layer_check layer)
  get_property(headers GLOBAL PROPERTY KRYTEN_LAYER_${layer}_HEADERS)
  set(sources)
  foreach(h ${headers})
    string(MAKE_C_IDENTIFIER "${h}" id)
    set(tu ${CMAKE_BINARY_DIR}/layer_check/${layer}/${id}.cpp)
    file(WRITE ${tu}.in "#include \"${h}\"\n")
    configure_file(${tu}.in ${tu} COPYONLY)
    list(APPEND sources ${tu})
  endforeach()
  add_library(kryten_layer_check_${layer} OBJECT ${sources})
  kryten_layer_includes(kryten_layer_check_${layer} PRIVATE ${ARGN})
  target_link_libraries(kryten_layer_check_${layer} PRIVATE CAF::core nlohmann_json::nlohmann_json
    spdlog::spdlog prometheus-cpp::core PkgConfig::NATS PkgConfig::HTTPLIB)
endfunction()
