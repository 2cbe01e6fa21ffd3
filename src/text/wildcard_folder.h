// A folder of Dynamic Prompts wildcard files, found as the extension's library finds them: every
// NAME.txt below the folder (subfolders included, hidden ones skipped) is the wildcard
// "sub/NAME"; __pattern__ takes the lines of every file whose name matches the pattern as
// Python's fnmatch matches it ('*' and '?' crossing '/', [set], [!set]), and a pattern that
// matches none is tried again under any subfolder ("**/pattern"), so __colors__ finds
// pack/colors.txt.
#pragma once

#include <filesystem>

#include "text/dynamic_prompt.h"

namespace zflow::text {

// The folder's wildcards, its files listed now (files added later are not seen; their lines are
// read when asked for); an Error for a name no file matches. Safe to call from several threads.
WildcardLines wildcard_folder(const std::filesystem::path& folder);

}  // namespace zflow::text
