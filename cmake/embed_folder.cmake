# embed_folder(FOLDER PATTERN NAMESPACE SYMBOL OUT_VAR): compiles the files FOLDER/PATTERN (under
# the calling folder, in sorted order) into a generated C++ file that defines
# `const std::vector<EmbeddedFile>& NAMESPACE::SYMBOL()` (common/embedded_file.h), and sets
# OUT_VAR to that file for add_library. The files are re-embedded whenever one changes.
set(ASIARCH_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_files.cmake)
function(embed_folder folder pattern namespace symbol out_var)
  file(GLOB files CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${folder}/${pattern})
  list(SORT files)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${symbol}.cpp)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DNAMESPACE=${namespace} -DSYMBOL=${symbol} "-DFILES=${files}"
            -P ${ASIARCH_EMBED_SCRIPT}
    DEPENDS ${files} ${ASIARCH_EMBED_SCRIPT}
    COMMENT "Embedding ${folder}/${pattern}"
    VERBATIM)
  set(${out_var} ${out} PARENT_SCOPE)
endfunction()
