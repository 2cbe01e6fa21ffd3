// A folder of Dynamic Prompts wildcard files, found as the extension's library finds them: every
// NAME.txt below the folder (subfolders included, hidden ones skipped) is the wildcard
// "sub/NAME", its lines the values (stripped; blank ones and # comments left out); every entry
// of a .json or .yaml file in sub/ is "sub/ENTRY" (see text/structured_wildcards.h).
// __pattern__ takes the values of every wildcard whose name matches the pattern as Python's
// fnmatch matches it ('*' and '?' crossing '/', [set], [!set]), and a pattern that matches none
// is tried again under any subfolder ("**/pattern"), so __colors__ finds pack/colors.txt.
#pragma once

#include <filesystem>

#include "text/dynamic_prompt.h"

namespace zflow::text {

// The folder's wildcards, its files listed now (files added later are not seen; text files are
// read when asked for, structured ones now); an Error for a name nothing matches, or a structured
// file that is not well formed. Safe to call from several threads.
Wildcards wildcard_folder(const std::filesystem::path& folder);

}  // namespace zflow::text
