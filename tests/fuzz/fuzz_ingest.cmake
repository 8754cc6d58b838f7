target_link_libraries(${name} PRIVATE lade_cloud)
