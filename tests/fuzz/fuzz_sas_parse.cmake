# The hub's pure topic/ACL parser lives with the plugin (src/hub/acl.c); fuzz it here too.
target_sources(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src/hub/acl.c)
